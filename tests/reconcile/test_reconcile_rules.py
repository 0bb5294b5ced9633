"""What a level read back by the reconciler means, channel kind by channel kind and policy by
policy (nexus.domain.reconcile; docs/consistency.md, "Reconciliation")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nexus.domain.belief import Semantics, Sent
from nexus.domain.reconcile import UNEXPLAINED, Finding, judge, reconcile_reading
from nexus.domain.vocabulary import ConflictPolicy

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
GRACE = timedelta(minutes=5)
SHOPIFY = Semantics(compare_and_set=True)  # levels book sales
WOOCOMMERCE = Semantics(compare_and_set=False)  # orders book sales, levels do not
AMAZON_LEVELS = Semantics(compare_and_set=False, orders=False)


@dataclass
class Listing:
    remote_qty: int | None = 10
    drift_qty: int = 0
    pushed_qty: int | None = 10
    timeline: dict[str, Any] = field(default_factory=dict)
    inflight_delta: int = 0
    verify_pending: bool = False
    lease_owner: str | None = "reconciler"
    lease_until: datetime | None = None
    sending_qty: int | None = None


def read(
    listing: Listing, observed: int, semantics: Semantics, policy: ConflictPolicy, now: datetime = NOW
) -> Any:
    return reconcile_reading(
        listing, Sent(listing.remote_qty), observed, semantics, policy, now=now, order_grace=GRACE
    )


@pytest.mark.parametrize("policy", list(ConflictPolicy))
@pytest.mark.parametrize("semantics", [SHOPIFY, AMAZON_LEVELS])
def test_a_lower_level_where_levels_book_sales_is_booked_whatever_the_policy(
    semantics: Semantics, policy: ConflictPolicy
) -> None:
    listing = Listing()
    reading = read(listing, 7, semantics, policy)
    assert (reading.finding, reading.delta) == (Finding.BOOKED, -3)
    # Booked as drift: the order that explains it, if it ever comes, absorbs it (counted once).
    assert (listing.remote_qty, listing.drift_qty) == (7, -3)


def test_a_lower_level_where_orders_book_sales_waits_for_its_order_then_follows_the_policy() -> None:
    listing = Listing()
    first = read(listing, 8, WOOCOMMERCE, ConflictPolicy.CONSERVATIVE)
    assert (first.finding, first.delta, listing.remote_qty) == (Finding.AWAITS_ORDER, 0, 10)
    still = read(listing, 8, WOOCOMMERCE, ConflictPolicy.CONSERVATIVE, NOW + GRACE / 2)
    assert still.finding is Finding.AWAITS_ORDER
    late = read(listing, 8, WOOCOMMERCE, ConflictPolicy.CONSERVATIVE, NOW + GRACE)
    assert (late.finding, late.delta) == (Finding.ADOPTED, -2)
    assert (listing.remote_qty, listing.drift_qty) == (8, -2)
    assert UNEXPLAINED not in listing.timeline


def test_the_order_arriving_within_the_grace_ends_the_wait() -> None:
    listing = Listing()
    read(listing, 8, WOOCOMMERCE, ConflictPolicy.CHANNEL_WINS)
    listing.remote_qty = 8  # the order came: its sale moved the belief
    reading = read(listing, 8, WOOCOMMERCE, ConflictPolicy.CHANNEL_WINS, NOW + GRACE * 2)
    assert (reading.finding, reading.delta) == (Finding.AGREES, 0)
    assert UNEXPLAINED not in listing.timeline


def test_a_different_lower_level_restarts_the_wait() -> None:
    listing = Listing()
    read(listing, 8, WOOCOMMERCE, ConflictPolicy.CHANNEL_WINS)
    assert (
        read(listing, 7, WOOCOMMERCE, ConflictPolicy.CHANNEL_WINS, NOW + GRACE).finding
        is Finding.AWAITS_ORDER
    )
    assert (
        read(listing, 7, WOOCOMMERCE, ConflictPolicy.CHANNEL_WINS, NOW + GRACE * 2).finding is Finding.ADOPTED
    )


@pytest.mark.parametrize(
    ("policy", "finding", "delta", "believed_after"),
    [
        (ConflictPolicy.NEXUS_WINS, Finding.PUSHED, 0, 13),  # learnt, not booked; the push overwrites it
        (ConflictPolicy.CHANNEL_WINS, Finding.ADOPTED, 3, 13),
        (ConflictPolicy.CONSERVATIVE, Finding.PUSHED, 0, 13),  # the lower of the two is ours
        (ConflictPolicy.REVIEW, Finding.REVIEW, 0, 10),
    ],
)
@pytest.mark.parametrize("semantics", [SHOPIFY, WOOCOMMERCE, AMAZON_LEVELS])
def test_a_higher_level_is_a_conflict_settled_by_the_policy(
    semantics: Semantics, policy: ConflictPolicy, finding: Finding, delta: int, believed_after: int
) -> None:
    listing = Listing()
    reading = read(listing, 13, semantics, policy)
    assert (reading.finding, reading.delta, listing.remote_qty) == (finding, delta, believed_after)


def test_sales_reported_during_the_read_still_move_the_belief() -> None:
    listing = Listing(inflight_delta=-1)  # an order came in while the read was on the wire
    reading = read(listing, 9, WOOCOMMERCE, ConflictPolicy.REVIEW)
    # The read may or may not include that sale: either way the belief ends at 9 (10 - 1)...
    assert listing.remote_qty == 9 and listing.inflight_delta == 0
    # ...and what the read showed against the belief it started from is what was judged.
    assert reading.finding is Finding.AWAITS_ORDER


def test_a_level_never_read_is_not_learnt() -> None:
    listing = Listing(remote_qty=None)
    reading = read(listing, 4, SHOPIFY, ConflictPolicy.CHANNEL_WINS)
    assert (reading.finding, reading.delta, listing.remote_qty, listing.verify_pending) == (
        Finding.UNKNOWN,
        0,
        None,
        True,
    )


def test_judge_books_nothing() -> None:
    assert judge(10, 10, SHOPIFY, ConflictPolicy.REVIEW) is Finding.AGREES
    assert judge(10, 8, WOOCOMMERCE, ConflictPolicy.CHANNEL_WINS) is Finding.AWAITS_ORDER
    assert judge(None, 8, SHOPIFY, ConflictPolicy.CHANNEL_WINS) is Finding.UNKNOWN
