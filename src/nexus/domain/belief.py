"""What a channel's evidence proves about a listing's level: the rules of docs/consistency.md.

Pure functions over a listing's belief (the attributes named by `Belief`). They decide what each
piece of evidence moves and which quantity, if any, the ledger books; callers persist the belief
and book through the one write path. The randomized tests drive these same functions.

The channel's timeline is cut into segments by our pushes. Within a segment only the channel's
sales move its level, so the level never rises there: a lower reading is news, a higher one is
older than what we know. A reading is compared only with the segment it surely falls in; one
that meets the flight of our push waits for the push's own report, is covered by a push that
verified the level, or puts the listing in doubt and has it verified. Never booked blindly,
never dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Span:
    """When something happened on a channel: at or after `earliest`, strictly before `latest`."""

    earliest: datetime
    latest: datetime

    @classmethod
    def stamped(cls, at: datetime, precision: timedelta) -> Span:
        """A channel stamp of the given precision: whole seconds cover the whole second."""
        return cls(at, at + precision)

    @classmethod
    def between(cls, sent: datetime, answered: datetime) -> Span:
        """What the channel did not stamp happened while our request was in flight."""
        return cls(sent, answered)

    def before(self, instant: datetime | None) -> bool:
        return instant is not None and self.latest <= instant

    def after(self, instant: datetime | None) -> bool:
        """Surely after `instant` (everything is after an instant never set)."""
        return instant is None or self.earliest >= instant

    def meets(self, other: Span) -> bool:
        return self.earliest < other.latest and self.latest > other.earliest


@dataclass(frozen=True, slots=True)
class Semantics:
    """What a channel's evidence can prove.

    compare_and_set: a push names the level it expects and is refused when the channel shows
        anything else (Shopify); otherwise a push overwrites whatever the channel shows when it
        lands, sales included.
    orders: the channel reports every sale as an order, and the ledger books them.
        Otherwise its level reports are the only evidence of its sales and orders are not booked.
    levels: whether level reports book sales (see `levels_book_sales`).
    stamp_precision: the resolution of the channel's own timestamps (whole seconds on Shopify).
    echo_wait: how long a level reported during our absolute push's flight waits for the push's
        own report, which tells on which side of the push it falls.
    """

    compare_and_set: bool
    orders: bool = True
    stamp_precision: timedelta = timedelta(seconds=1)
    echo_wait: timedelta = timedelta(seconds=10)
    levels: bool | None = None

    @property
    def levels_book_sales(self) -> bool:
        """Whether a level difference is booked (`levels`, when set, decides). By default: with
        compare-and-set, yes (a verified push closes every question and an order absorbs the
        drop it explains); without it, only where levels are the sole evidence of sales (where
        orders report every sale, the order books it anyway). Both, without compare-and-set:
        levels book sales in the segment they fall in and orders absorb them there, or book the
        sale the levels could not tell from our own push's report."""
        if self.levels is not None:
            return self.levels
        return self.compare_and_set or not self.orders

    def span(self, stamp: datetime | None) -> Span | None:
        return None if stamp is None else Span.stamped(stamp, self.stamp_precision)


HISTORY = 64  # segments our absolute pushes closed, kept for late readings


class Belief(Protocol):
    """The attributes of a listing these rules read and write: what we believe the channel
    shows (`remote_qty`), the units booked from its levels that no order explained yet
    (`drift_qty`), our last acknowledged push, and the rest of the timeline as JSON."""

    remote_qty: int | None
    drift_qty: int
    pushed_qty: int | None
    timeline: dict[str, Any]
    inflight_delta: int
    verify_pending: bool
    lease_owner: str | None
    lease_until: datetime | None
    sending_qty: int | None


def request_in_flight(belief: Belief, now: datetime) -> bool:
    """A request to the listing may be on the wire, so a reading cannot be judged until its
    answer is recorded.

    A push (`sending_qty` set by the claim) counts until its owner records it or another worker
    takes the listing over and reads the channel: an expired lease says only that the round is
    late (a saturated machine, a database away), not that its answer will never be written, and
    orders already move `inflight_delta` for it while its owner is set. A reading judged in that
    window books, as drift, sales the round's answer books again. A read-back (the reconciler's
    lease, no `sending_qty`) changes nothing on the channel: it counts only while its lease is
    live, so a reconciler that died does not hold readings back."""
    if belief.lease_owner is None:
        return False
    if belief.sending_qty is not None:
        return True
    return belief.lease_until is not None and belief.lease_until > now


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _instant(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _span(data: Mapping[str, Any], key: str) -> Span | None:
    value = data.get(key)
    if not value:
        return None
    earliest, latest = _instant(value[0]), _instant(value[1])
    assert earliest is not None and latest is not None
    return Span(earliest, latest)


def _span_json(span: Span | None) -> list[str | None] | None:
    return None if span is None else [_iso(span.earliest), _iso(span.latest)]


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the channel's timeline that one of our pushes began.

    `flight`: from sending that push to its answer. `landed`: when it landed: the channel's
    stamp on its answer, or what its own level report (the echo) told, or the flight itself.
    `pinned`: "stamp" or "echo" when `landed` is known that way.
    """

    level: int | None  # what the channel shows here, lowest reading so far; None: unknown
    drift: int = 0
    pushed_qty: int | None = None  # None: the listing's first segment, begun by no push
    flight: Span | None = None
    landed: Span | None = None
    pinned: str | None = None
    # Where levels and orders both book sales (without compare-and-set): the orders that moved
    # `level`, as (the start of the sale's span, units). A level shows only the sales before
    # it, so it is compared with the level before the orders surely after it (`level_at`).
    sold_at: tuple[tuple[datetime, int], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "drift": self.drift,
            "pushed_qty": self.pushed_qty,
            "flight": _span_json(self.flight),
            "landed": _span_json(self.landed),
            "pinned": self.pinned,
            "sold_at": [[at.isoformat(), units] for at, units in self.sold_at],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], **override: Any) -> Segment:
        values: dict[str, Any] = {
            "level": data.get("level"),
            "drift": int(data.get("drift") or 0),
            "pushed_qty": data.get("pushed_qty"),
            "flight": _span(data, "flight"),
            "landed": _span(data, "landed"),
            "pinned": data.get("pinned"),
            "sold_at": _timed(data.get("sold_at")),
        }
        values.update(override)
        return cls(**values)

    def landing(self, semantics: Semantics, now: datetime) -> Span | None:
        """When the push landed, as far as we can tell by `now`. A push whose echo never came
        changed nothing (the channel already showed its quantity), so no sale fell between its
        sending and its landing (the push would have raised the level back and reported it):
        it is placed where its flight began, or after the last level known to be taken before
        it (`before_landing`)."""
        if self.pinned or self.flight is None or self.landed is None:
            return self.landed
        if now < self.flight.latest + semantics.echo_wait:
            return self.landed
        # `landed` starts as the flight; a level taken before the landing moves its start on.
        return Span.stamped(self.landed.earliest, semantics.stamp_precision)

    def level_at(self, reading: Span) -> int | None:
        """What this segment's evidence says the channel showed when `reading` was taken: the
        level, plus the units of orders that moved it for sales surely after the reading. A
        level reading lower than that is news; one no lower is not (the later orders explain
        it). Drift booked from later readings is not added back: it may hold sales before this
        reading too, and booking them again would count them twice."""
        if self.level is None:
            return None
        return self.level + sum(units for at, units in self.sold_at if at >= reading.latest)

    def before_landing(self, level: int, span: Span) -> bool:
        """A reading above this push's quantity, stamped before the push was answered, was taken
        before the push landed: from the landing until the next push (sent after this answer)
        the level is at most the quantity, since only sales move it inside a segment. This
        holds whatever `landing` assumes: a push whose echo never came is placed where its
        flight began, which is wrong when sales in the flight left exactly the pushed quantity
        and the last one's report was dropped (the push then changed nothing and sent no echo;
        the earlier sales' reports would be taken for news after the push and ignored)."""
        return (
            self.pinned is None
            and self.flight is not None
            and self.pushed_qty is not None
            and level > self.pushed_qty
            and span.latest <= self.flight.latest
        )

    def may_echo(self, span: Span, semantics: Semantics, now: datetime) -> bool:
        """A report stamped within this push's flight may be the push's own (its echo)."""
        return (
            self.pinned != "stamp"
            and self.flight is not None
            and self.flight.meets(span)
            and now < self.flight.latest + semantics.echo_wait
        )

    def settling(self, span: Span, semantics: Semantics, now: datetime) -> bool:
        """The span meets this push's flight, and its echo may still come to tell the side."""
        return (
            self.may_echo(span, semantics, now)
            and self.flight is not None
            and self.flight.latest - self.flight.earliest > semantics.stamp_precision
        )


@dataclass(slots=True)
class _Timeline:
    """The listing's segments, oldest first, the current one last; `save` writes them back."""

    segments: list[Segment] = field(default_factory=list)

    @classmethod
    def of(cls, belief: Belief) -> _Timeline:
        data = belief.timeline or {}
        closed = [Segment.from_json(d) for d in data.get("closed", ())]
        current = Segment.from_json(
            data.get("current", {}),
            level=belief.remote_qty,
            drift=belief.drift_qty,
            pushed_qty=belief.pushed_qty,
        )
        return cls([*closed, current])

    def save(self, belief: Belief) -> None:
        *closed, current = self.segments
        if len(closed) > HISTORY:
            # The oldest are forgotten; their unexplained units stay to be explained.
            dropped, closed = closed[:-HISTORY], closed[-HISTORY:]
            closed[0] = replace(closed[0], drift=closed[0].drift + sum(s.drift for s in dropped))
        belief.remote_qty, belief.drift_qty, belief.pushed_qty = (
            current.level,
            current.drift,
            current.pushed_qty,
        )
        belief.timeline = {
            "current": current.as_json(),
            "closed": [segment.as_json() for segment in closed],
        }


class Placement(enum.Enum):
    CONFIRMED = "confirmed"  # nothing new: equal to, or older than, what we know
    ECHO = "echo"  # our own absolute push reported back: it tells when the push landed
    BOOKED = "booked"  # a drop nothing explained yet: booked (an order may absorb it later)
    BOOKED_BEFORE_PUSH = "booked_before_push"  # a sale one of our absolute pushes wrote over
    COVERED = "covered"  # older than a verified push, which proved the level at that point
    AWAITS_ORDER = "awaits_order"  # a drop where orders book sales: left to its order
    WAIT = "wait"  # inside our absolute push's flight: tried again once its echo may have come
    IN_DOUBT = "in_doubt"  # cannot be placed and disagrees: the listing is verified


@dataclass(frozen=True, slots=True)
class Verdict:
    placement: Placement
    delta: int = 0  # what the ledger books (a channel adjustment); 0 for nothing


def place_reading(
    belief: Belief, level: int, span: Span | None, semantics: Semantics, now: datetime
) -> Verdict:
    """A level the channel reported. The caller refuses readings for a listing with a request
    in flight: they cannot be placed until its answer is recorded."""
    if not semantics.levels_book_sales:
        if belief.remote_qty is not None and level < belief.remote_qty:
            # A drop on a channel whose orders book its sales: its order is on the way. Pushing
            # our level now would write over the sale and offer the sold unit again meanwhile.
            return Verdict(Placement.AWAITS_ORDER)
        return _doubt_unless_equal(belief, level)
    if span is None:
        return _doubt_unless_equal(belief, level)
    timeline = _Timeline.of(belief)
    segments = timeline.segments
    overwrites = not semantics.compare_and_set
    if overwrites:
        for index, segment in enumerate(segments):
            if level == segment.pushed_qty and segment.may_echo(span, semantics, now):
                segments[index] = _echo(segment, span)
                timeline.save(belief)
                return Verdict(Placement.ECHO)
        if any(segment.settling(span, semantics, now) for segment in segments):
            return Verdict(Placement.WAIT)
    for index in range(len(segments) - 1, -1, -1):
        # Here the reading is surely before the push that ended this segment, if any.
        segment = segments[index]
        if overwrites and index > 0 and segment.before_landing(level, span):
            _landed_after(segments, index, span, semantics.stamp_precision)
            timeline.save(belief)
            continue
        landing = segment.landing(semantics, now)
        if landing is None or span.after(landing.latest):
            expected = segment.level_at(span)
            if segment.level is None or expected is None:
                break  # orders we could not place left it unknown; a push settles it
            drop = min(0, level - expected)
            segments[index] = replace(segment, level=segment.level + drop, drift=segment.drift + drop)
            timeline.save(belief)
            if level > expected and index == len(segments) - 1:
                # Older than what we know, or the merchant raised the level: verified.
                belief.verify_pending = True
                return Verdict(Placement.IN_DOUBT)
            if drop == 0:
                return Verdict(Placement.CONFIRMED)
            closed = index < len(segments) - 1
            return Verdict(Placement.BOOKED_BEFORE_PUSH if closed else Placement.BOOKED, drop)
        if not span.before(landing.earliest):
            break  # the same instant as our push landed, to the channel's precision
        if not overwrites:
            return Verdict(Placement.COVERED)  # the push verified the level it replaced
    return _doubt_unless_equal(belief, level)


def _landed_after(segments: list[Segment], index: int, reading: Span, precision: timedelta) -> None:
    """The push that began segment `index` landed after `reading` (`before_landing`): its
    landing starts no earlier, and orders placed after it for sales surely before that move to
    the segment before, as if they had come after this reading (whose comparison with the
    belief there then counts them: `level_at`)."""
    segment = segments[index]
    assert segment.landed is not None
    start = max(segment.landed.earliest, reading.latest)
    moved = tuple((at, units) for at, units in segment.sold_at if at + precision <= start)
    level = segment.level
    segments[index] = replace(
        segment,
        landed=Span(start, max(start, segment.landed.latest)),
        level=None if level is None else level + sum(units for _, units in moved),
        sold_at=tuple(entry for entry in segment.sold_at if entry not in moved),
    )
    if moved:
        before = segments[index - 1]
        level = before.level
        segments[index - 1] = replace(
            before,
            level=None if level is None else level - sum(units for _, units in moved),
            sold_at=_kept(tuple(sorted((*before.sold_at, *moved)))),
        )


def _doubt_unless_equal(belief: Belief, level: int) -> Verdict:
    if level == belief.remote_qty:
        return Verdict(Placement.CONFIRMED)
    belief.verify_pending = True
    return Verdict(Placement.IN_DOUBT)


def _echo(segment: Segment, span: Span) -> Segment:
    """Our absolute push reported back. Among several reports of its quantity during its flight
    the latest is the push's own: a sale that left that quantity earlier was followed by
    whatever the push then raised back."""
    assert segment.flight is not None
    landed = Span(max(segment.flight.earliest, span.earliest), min(segment.flight.latest, span.latest))
    if segment.pinned and segment.landed is not None and landed.earliest < segment.landed.earliest:
        return segment
    return replace(segment, landed=landed, pinned="echo")


class WaitForEcho(Exception):
    """The evidence was stamped during our absolute push's flight, whose own report may still
    come to tell on which side it falls: deliver it again later."""


def place_sale(belief: Belief, quantity: int, span: Span | None, semantics: Semantics, now: datetime) -> int:
    """An order took `quantity` units off the channel's own level (for channels whose orders
    are booked). Returns how many of them a level difference already booked as drift: the
    ledger reverses that booking, so the order and the drop count as one sale. Raises
    WaitForEcho when it cannot be placed yet."""
    if not semantics.compare_and_set and semantics.levels_book_sales:
        return _place_sale_in_segments(belief, quantity, span, semantics, now)
    absorbed = min(quantity, max(0, -belief.drift_qty))
    belief.drift_qty += absorbed
    rest = quantity - absorbed
    if not rest:
        return absorbed
    if not semantics.compare_and_set:
        landed = _Timeline.of(belief).segments[-1].landed
        if landed is not None and not (span is not None and span.after(landed.latest)):
            if span is not None and span.before(landed.earliest):
                return absorbed  # our absolute push landed after the sale and wrote over it
            # Before or after our last absolute push? Unknown, and so is the channel's level
            # until a push lands; a request in flight learns it from the quantity it crossed.
            belief.remote_qty = None
            belief.verify_pending = True
    _sold_in_current(belief, rest)
    return absorbed


def _sold_in_current(belief: Belief, quantity: int) -> None:
    if belief.lease_owner is not None:
        # A request is in flight: where the sale falls against it is settled by its answer.
        # (With compare-and-set an unabsorbed sale cannot predate a verified push: that push
        # would have been refused.)
        belief.inflight_delta -= quantity
    elif belief.remote_qty is not None:
        belief.remote_qty -= quantity


def _place_sale_in_segments(
    belief: Belief, quantity: int, span: Span | None, semantics: Semantics, now: datetime
) -> int:
    """Levels and orders both report sales, pushes overwrite: the order is placed in the
    segment(s) it may fall in, absorbs the drift levels booked there, and moves what is left."""
    timeline = _Timeline.of(belief)
    segments = timeline.segments
    if span is not None and any(segment.settling(span, semantics, now) for segment in segments):
        raise WaitForEcho
    landings = [segment.landing(semantics, now) for segment in segments]
    first, last = _locate(landings, span)
    if first < 0:
        return 0  # older than anything kept: the ledger books it, no belief moves
    absorbed = 0
    for index in range(first, last + 1):
        take = min(quantity - absorbed, max(0, -segments[index].drift))
        segments[index] = replace(segments[index], drift=segments[index].drift + take)
        absorbed += take
    rest = quantity - absorbed
    current = len(segments) - 1
    moves = first < current or (belief.lease_owner is None and belief.remote_qty is not None)
    if rest and first == last and span is not None and segments[first].level is not None and moves:
        # What a reading stamped before this sale is compared with (`level_at`).
        segment = segments[first]
        segments[first] = replace(segment, sold_at=_kept((*segment.sold_at, (span.earliest, rest))))
    if rest and first == last and first < current:
        level = segments[first].level
        segments[first] = replace(segments[first], level=None if level is None else level - rest)
    elif first < last and (rest or last == current):
        # Before or after one of our pushes? Unknown, and so are both sides until a push lands:
        # also when the order absorbed drift after our last push and has nothing left to move,
        # for if its sale came first the push wrote over it, the drift is a later sale's, and
        # that sale's order would move a known belief one unit below the channel. (Unknown,
        # not merely in doubt: a listing in doubt with a known level is read back, and the read
        # would book that unit again.)
        segments[first] = replace(segments[first], level=None)
        segments[last] = replace(segments[last], level=None)
    timeline.save(belief)
    if first < last == current:
        belief.verify_pending = True
        if rest and belief.lease_owner is not None:
            belief.inflight_delta -= rest
    elif rest and last == current:
        _sold_in_current(belief, rest)
    return absorbed


TIMED = 64  # timed entries kept per segment; older ones are forgotten (see _kept)


def _timed(value: Any) -> tuple[tuple[datetime, int], ...]:
    return tuple((datetime.fromisoformat(at), int(units)) for at, units in value or ())


def _kept(entries: tuple[tuple[datetime, int], ...]) -> tuple[tuple[datetime, int], ...]:
    """The latest TIMED `sold_at` entries: a forgotten one only makes readings compared with
    less (`level_at`), so it never books a sale twice."""
    return entries[-TIMED:]


def _locate(landings: list[Span | None], span: Span | None) -> tuple[int, int]:
    """The segments a span may fall in, given when each one's push landed, as (first, last):
    one when it is surely placed, two neighbours when it meets a push's landing, (-1, -1)
    when older than everything kept."""
    for index in range(len(landings) - 1, -1, -1):
        landed = landings[index]
        if landed is None or (span is not None and span.after(landed.latest)):
            return index, index
        if span is None or not span.before(landed.earliest):
            return max(index - 1, 0), index
    return -1, -1


@dataclass(frozen=True, slots=True)
class Sent:
    """The belief a request was sent from, captured when the listing was claimed."""

    remote_qty: int | None


def push_landed(
    belief: Belief,
    sent: Sent,
    quantity: int,
    flight: Span,
    semantics: Semantics,
    *,
    checked: bool,
    stamp: datetime | None = None,
) -> None:
    """The channel acknowledged `quantity`, sent and answered within `flight` (or stamped).
    `checked`: a compare-and-set from `sent.remote_qty`, which was therefore exactly right."""
    inflight = belief.inflight_delta
    belief.inflight_delta = 0
    stamped = semantics.span(stamp)
    landed = stamped if stamped is not None else flight
    pinned = "stamp" if stamped is not None else None
    timeline = _Timeline.of(belief)
    closed = timeline.segments[-1]
    if checked or not semantics.levels_book_sales:
        # Checked: everything before the push is proven, and an unabsorbed sale reported
        # meanwhile came after it (else the push was refused); drift waits for its orders
        # across pushes. Unchecked, where orders are booked: a sale that crossed the push
        # leaves the level unknown until another push lands.
        known = checked or not inflight
        level = quantity + inflight if known else None
        timeline.segments = [Segment(level, closed.drift, quantity, flight, landed, pinned)]
        timeline.save(belief)
        belief.verify_pending = not known
        return
    # The segment our push closed, as believed when it was sent; a sale that crossed the push
    # leaves both sides unknown until another push lands.
    believed = sent.remote_qty if not inflight and closed.level is not None else None
    timeline.segments[-1] = replace(closed, level=believed)
    level = None if inflight else quantity
    timeline.segments.append(Segment(level, 0, quantity, flight, landed, pinned))
    timeline.save(belief)
    belief.verify_pending = bool(inflight)


def level_read(belief: Belief, sent: Sent, current: int) -> int:
    """A fresh level: a refused compare-and-set, or a read-back while we held the listing.
    Returns what the ledger books: the difference from the belief the request was sent from,
    which includes only what happened before it was sent.

    A sale reported while the request was in flight may be in `current` or not; it is applied
    on top (counted twice if it was in) and the listing is verified again, which books back
    any excess: a transient under-count, never a unit offered that is not there."""
    inflight = belief.inflight_delta
    belief.inflight_delta = 0
    if belief.remote_qty is None or sent.remote_qty is None:
        # Nothing to compare with: nothing is booked, and the level is not learnt (an order
        # still to come for a sale before this read would be counted twice). A push settles it.
        belief.remote_qty = None
        belief.verify_pending = True
        return 0
    belief.verify_pending = inflight != 0
    belief.remote_qty = current + inflight
    delta = current - sent.remote_qty
    belief.drift_qty += delta
    return delta


def push_failed(belief: Belief, semantics: Semantics) -> None:
    """No usable answer (retry later, terminal, never sent). Sales reported meanwhile move the
    belief as if nothing had been in flight, except over an absolute push that may have landed."""
    inflight = belief.inflight_delta
    belief.inflight_delta = 0
    if not inflight:
        return
    if semantics.compare_and_set and belief.remote_qty is not None:
        belief.remote_qty += inflight
        return
    belief.remote_qty = None
    belief.verify_pending = True


def needs_push(belief: Belief, desired: int) -> bool:
    return belief.remote_qty is None or belief.verify_pending or desired != belief.remote_qty
