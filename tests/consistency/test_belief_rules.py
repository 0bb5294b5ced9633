"""The belief rules on their own, for cases the randomized simulation found (docs/consistency.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simulator import Listing

from nexus.domain.belief import Placement, Semantics, Sent, Span, place_reading, push_landed

T = datetime(2030, 1, 1, 12, tzinfo=UTC)
MS = timedelta(milliseconds=1)
AMAZON_LEVELS = Semantics(False, orders=False, stamp_precision=MS)  # sales_from = "levels"


def test_sales_in_a_push_flight_whose_echo_never_came_are_booked_before_the_push() -> None:
    # Amazon, levels only (simulation seed 10599): believed 8, we push 5. In its flight the
    # channel sells 8 -> 7 -> 6 -> 5; the report of 5 is dropped, so the push lands on 5,
    # changes nothing and sends no echo. The reports of 7 and 6 are sales before the landing
    # (after it the level is at most 5 until our next push): they must be booked, not taken
    # for older news after a push placed where its flight began.
    listing = Listing(remote_qty=8, desired=5)
    flight = Span.between(T, T + 300 * MS)
    push_landed(listing, Sent(8), 5, flight, AMAZON_LEVELS, checked=False)
    assert listing.remote_qty == 5

    waiting = place_reading(listing, 7, AMAZON_LEVELS.span(T + 50 * MS), AMAZON_LEVELS, T + 400 * MS)
    assert waiting.placement is Placement.WAIT  # its echo may still come

    later = flight.latest + AMAZON_LEVELS.echo_wait + MS  # no echo: the push changed nothing
    booked = [
        place_reading(listing, level, AMAZON_LEVELS.span(T + at * MS), AMAZON_LEVELS, later)
        for level, at in ((7, 50), (6, 150))
    ]
    assert booked[0].placement is booked[1].placement is Placement.BOOKED_BEFORE_PUSH
    assert [b.delta for b in booked] == [-1, -1]
    assert (listing.remote_qty, listing.verify_pending) == (5, False)  # the channel shows 5


def test_a_level_below_the_pushed_quantity_after_a_silent_push_is_a_sale_after_it() -> None:
    # The same push changed nothing (no echo): a lower level stamped in its flight came after
    # the landing, in the current segment.
    listing = Listing(remote_qty=8, desired=5)
    flight = Span.between(T, T + 300 * MS)
    push_landed(listing, Sent(8), 5, flight, AMAZON_LEVELS, checked=False)
    later = flight.latest + AMAZON_LEVELS.echo_wait + MS
    verdict = place_reading(listing, 4, AMAZON_LEVELS.span(T + 200 * MS), AMAZON_LEVELS, later)
    assert (verdict.placement, verdict.delta, listing.remote_qty) == (Placement.BOOKED, -1, 4)
