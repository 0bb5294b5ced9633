"""A seeded, synchronous simulation of Nexus and in-memory channels, driving the real belief rules
(`nexus.domain.belief`) with random interleavings of channel sales, local restocks and sales,
pushes and their answers, and deliveries that are delayed, duplicated and reordered, stamped at
each channel's precision.

Nexus's side here is the same orchestration the engine does with the database (book what the
rules say, recompute what every listing should show, push what needs a push, defer a delivery
for a listing with a push in flight); the rules themselves are the engine's own functions.
After quiescence the invariants of docs/consistency.md must hold.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nexus.domain.belief import (
    Placement,
    Semantics,
    Sent,
    Span,
    WaitForEcho,
    level_read,
    needs_push,
    place_reading,
    place_sale,
    push_landed,
)

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def at(ms: int) -> datetime:
    return BASE + timedelta(milliseconds=ms)


@dataclass(frozen=True)
class ChannelKind:
    """How a simulated channel behaves, after a real one."""

    name: str
    compare_and_set: bool
    precision_ms: int  # its stamps: 1000 = whole seconds
    orders: bool  # reports each sale as an order
    levels: bool  # reports each level change (its own sales, our pushes) as a level
    stamps_pushes: bool  # its push answer carries the time the level was set
    reader: bool  # can read levels back
    levels_book: bool | None = None  # Semantics.levels: None for the default

    @property
    def semantics(self) -> Semantics:
        return Semantics(
            self.compare_and_set,
            self.orders,
            timedelta(milliseconds=self.precision_ms),
            levels=self.levels_book,
        )


KINDS = (
    ChannelKind("shopify", True, 1000, orders=True, levels=True, stamps_pushes=True, reader=True),
    ChannelKind("woocommerce", False, 1000, orders=True, levels=True, stamps_pushes=True, reader=True),
    ChannelKind("amazon", False, 1, orders=False, levels=True, stamps_pushes=False, reader=True),
    ChannelKind("amazon-orders", False, 1, orders=True, levels=True, stamps_pushes=False, reader=False),
    ChannelKind(
        "amazon-both", False, 1, orders=True, levels=True, stamps_pushes=False, reader=True, levels_book=True
    ),
    ChannelKind("etsy", False, 1000, orders=True, levels=False, stamps_pushes=False, reader=True),
)


@dataclass
class Listing:
    """The belief columns (the `Belief` protocol) and what the listing should show."""

    remote_qty: int | None
    desired: int
    pushed_qty: int | None = None
    timeline: dict[str, Any] = field(default_factory=dict)
    drift_qty: int = 0
    inflight_delta: int = 0
    verify_pending: bool = False
    lease_owner: str | None = None


@dataclass
class Channel:
    kind: ChannelKind
    level: int
    listing: Listing
    sold: int = 0
    pushes: int = 0
    next_order: int = 0
    sales: list[tuple[datetime, int, int]] = field(default_factory=list)  # stamp, level left, units
    flights: list[tuple[datetime, datetime, int]] = field(default_factory=list)  # sent, answered, quantity
    applied: set[datetime] = field(default_factory=set)  # stamps of our pushes' landings


@dataclass(order=True)
class _Scheduled:
    time: int
    seq: int
    action: Callable[[], None] = field(compare=False)


@dataclass
class Outcome:
    seed: int
    kinds: tuple[str, ...]
    on_hand: int
    expected_on_hand: int
    channels: dict[str, tuple[int, int, int | None, int, bool]]  # level, desired, belief, drift, doubt
    problems: list[str]
    trace: list[str]
    indistinguishable: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


class Simulation:
    def __init__(self, seed: int, *, kinds: tuple[ChannelKind, ...] | None = None, steps: int = 60) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        rng = self.rng
        if kinds is None:
            kinds = tuple(rng.sample(KINDS, rng.randint(1, 3)))
        start = rng.randint(0, 6)
        self.start = start
        self.on_hand = start
        self.local = 0
        self.channels = {k.name: Channel(k, start, Listing(start, start)) for k in kinds}
        self.steps = steps
        self.now = 0
        self._queue: list[_Scheduled] = []
        self._seq = 0
        self._keys: set[str] = set()
        self.trace: list[str] = []
        self.latency = rng.choice((5, 40, 300))
        self.late = rng.choice((0.0, 0.2, 0.5))
        self.duplicates = rng.choice((0.0, 0.2))

    # -- scheduling -------------------------------------------------------------------------

    def _at(self, time: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Scheduled(time, self._seq, action))

    def _log(self, text: str) -> None:
        self.trace.append(f"{self.now:>7} {text}")

    def _stamp(self, channel: Channel, ms: int) -> datetime:
        p = channel.kind.precision_ms
        return at(ms - ms % p)

    def _deliver(self, channel: Channel, handle: Callable[[], None], label: str, *, level: bool) -> None:
        """The channel sends a notification: delivered later, maybe late, maybe twice."""
        copies = 2 if self.rng.random() < self.duplicates else 1
        for _ in range(copies):
            delay = self.rng.randint(0, 300)
            if self.rng.random() < self.late:
                delay = self.rng.randint(300, 5000)
            self._at(self.now + delay, lambda: self._receive(channel, handle, label, level))

    def _receive(self, channel: Channel, handle: Callable[[], None], label: str, level: bool) -> None:
        hybrid = not channel.kind.compare_and_set and channel.kind.semantics.levels_book_sales
        if (level or hybrid) and channel.listing.lease_owner is not None:
            # The processor defers a level for a listing with a push in flight (orders are
            # applied: the rules account for them when the push is answered).
            self._at(self.now + 50, lambda: self._receive(channel, handle, label, level))
            return
        self._log(f"{channel.kind.name} receives {label}")
        handle()
        self._changed()

    # -- Nexus's side -----------------------------------------------------------------------

    def _book(self, delta: int, why: str) -> None:
        if delta:
            self.on_hand += delta
            self._log(f"  book {delta:+d} ({why}) -> on_hand {self.on_hand}")

    def _changed(self) -> None:
        for channel in self.channels.values():
            channel.listing.desired = max(0, self.on_hand)
            self._wake(channel)

    def _wake(self, channel: Channel) -> None:
        listing = channel.listing
        if listing.lease_owner is None and needs_push(listing, listing.desired):
            listing.lease_owner = "worker"  # claimed now; sent right away
            self._at(self.now + 1, lambda: self._push(channel))

    def _push(self, channel: Channel) -> None:
        listing, kind = channel.listing, channel.kind
        sent = Sent(listing.remote_qty)
        sent_at = self.now
        apply_at = sent_at + self.rng.randint(1, self.latency)
        answer_at = apply_at + self.rng.randint(1, self.latency)
        if (
            listing.verify_pending
            and listing.remote_qty is not None
            and kind.semantics.levels_book_sales
            and not kind.compare_and_set
            and kind.reader
        ):
            self._log(f"{kind.name} read-back sent (belief {listing.remote_qty})")

            def read() -> None:
                current = channel.level
                self._at(answer_at, lambda: self._read_answer(channel, sent, current, sent_at))

            self._at(apply_at, read)
            return
        quantity = listing.desired
        change_from = listing.remote_qty if kind.compare_and_set else None
        channel.pushes += 1
        self._log(f"{kind.name} push {quantity} from {change_from} sent (belief {listing.remote_qty})")

        def apply() -> None:
            if change_from is not None and channel.level != change_from:
                current = channel.level
                self._log(f"{kind.name} refuses push: shows {current}")
                self._at(answer_at, lambda: self._refused(channel, sent, current, sent_at))
                return
            changed = channel.level != quantity
            channel.level = quantity
            stamp = self._stamp(channel, self.now)
            channel.applied.add(stamp)
            self._log(f"{kind.name} applies push {quantity}")
            if changed and kind.levels:
                self._deliver(
                    channel,
                    lambda: self._level(channel, quantity, stamp),
                    f"level {quantity}@{stamp:%S.%f}",
                    level=True,
                )
            landed = stamp if kind.stamps_pushes else None
            self._at(answer_at, lambda: self._landed(channel, sent, quantity, change_from, sent_at, landed))

        self._at(apply_at, apply)

    def _release(self, channel: Channel) -> None:
        channel.listing.lease_owner = None
        self._changed()

    def _landed(
        self,
        channel: Channel,
        sent: Sent,
        quantity: int,
        change_from: int | None,
        sent_at: int,
        landed: datetime | None,
    ) -> None:
        listing, kind = channel.listing, channel.kind
        flight = Span.between(at(sent_at), at(self.now))
        channel.flights.append((at(sent_at), at(self.now), quantity))
        push_landed(
            listing, sent, quantity, flight, kind.semantics, checked=change_from is not None, stamp=landed
        )
        self._log(f"{channel.kind.name} push {quantity} acknowledged -> belief {listing.remote_qty}")
        self._release(channel)

    def _refused(self, channel: Channel, sent: Sent, current: int, sent_at: int) -> None:
        delta = level_read(channel.listing, sent, current)
        self._log(f"{channel.kind.name} refusal answered {current} -> belief {channel.listing.remote_qty}")
        self._book(delta, f"{channel.kind.name} refused compare-and-set")
        self._release(channel)

    def _read_answer(self, channel: Channel, sent: Sent, current: int, sent_at: int) -> None:
        delta = level_read(channel.listing, sent, current)
        self._log(f"{channel.kind.name} read-back answers {current} -> belief {channel.listing.remote_qty}")
        self._book(delta, f"{channel.kind.name} read-back {current}")
        self._release(channel)

    def _order(self, channel: Channel, key: str, quantity: int, stamp: datetime) -> None:
        if key in self._keys:
            return
        listing = channel.listing
        semantics = channel.kind.semantics
        try:
            absorbed = place_sale(listing, quantity, semantics.span(stamp), semantics, at(self.now))
        except WaitForEcho:
            # The processor defers the delivery: it is tried again later.
            again = lambda: self._order(channel, key, quantity, stamp)  # noqa: E731
            self._at(self.now + 200, lambda: self._receive(channel, again, "order (again)", False))
            return
        self._keys.add(key)
        self._book(-quantity, f"order {key}")
        self._book(absorbed, "absorbs drift")

    def _level(self, channel: Channel, level: int, stamp: datetime) -> None:
        semantics = channel.kind.semantics
        verdict = place_reading(channel.listing, level, semantics.span(stamp), semantics, at(self.now))
        self._log(f"  {verdict.placement.value}")
        if verdict.placement is Placement.WAIT:
            # The processor defers the delivery, as for a listing with a push in flight.
            self._at(
                self.now + 200,
                lambda: self._receive(
                    channel, lambda: self._level(channel, level, stamp), "level (again)", True
                ),
            )
        self._book(verdict.delta, f"level {level}")

    # -- the world --------------------------------------------------------------------------

    def _channel_sale(self, channel: Channel) -> None:
        quantity = self.rng.choice((1, 1, 1, 2))
        if channel.level < quantity:
            return
        channel.level -= quantity
        channel.sold += quantity
        channel.sales.append((self._stamp(channel, self.now), channel.level, quantity))
        stamp = self._stamp(channel, self.now)
        level = channel.level
        channel.next_order += 1
        key = f"{channel.kind.name}:{channel.next_order}"
        self._log(f"{channel.kind.name} sells {quantity} -> {level}")
        if channel.kind.orders:
            self._deliver(
                channel,
                lambda: self._order(channel, key, quantity, stamp),
                f"order {key} x{quantity}",
                level=False,
            )
        if channel.kind.levels:
            self._deliver(
                channel,
                lambda: self._level(channel, level, stamp),
                f"level {level}@{stamp:%S.%f}",
                level=True,
            )

    def _local(self) -> None:
        delta = self.rng.choice((-1, 1, 2, 3))
        if self.on_hand + delta < 0:
            return
        self.on_hand += delta
        self.local += delta
        self._log(f"local change {delta:+d} -> on_hand {self.on_hand}")
        self._changed()

    def run(self) -> Outcome:
        rng = self.rng
        time = 0
        for _ in range(self.steps):
            time += rng.choice((1, 5, 20, 100, 400, 1000))
            if rng.random() < 0.3:
                self._at(time, self._local)
            else:
                channel = rng.choice(list(self.channels.values()))
                self._at(time, lambda c=channel: self._channel_sale(c))  # type: ignore[misc]
        guard = 0
        while self._queue:
            guard += 1
            if guard > 200_000:
                break
            item = heapq.heappop(self._queue)
            self.now = item.time
            item.action()
        return self._outcome(guard > 200_000)

    def _indistinguishable(self) -> int:
        """Units sold on a channel that reports sales only as levels whose report cannot be told
        from, or ordered against, the report of one of our absolute pushes: sold in the push's
        flight leaving exactly the quantity it set, or stamped the same instant as it landed
        (docs/consistency.md, "What cannot be decided")."""
        units = 0
        for channel in self.channels.values():
            if channel.kind.compare_and_set or not channel.kind.semantics.levels_book_sales:
                continue
            if channel.kind.orders:
                continue  # its orders tell the sale from our push's report
            precision = timedelta(milliseconds=channel.kind.precision_ms)
            for stamp, level, quantity in channel.sales:
                if stamp in channel.applied or any(
                    level == pushed and stamp < answered and stamp + precision > sent
                    for sent, answered, pushed in channel.flights
                ):
                    units += quantity
        return units

    def _outcome(self, runaway: bool) -> Outcome:
        expected = self.start + self.local - sum(c.sold for c in self.channels.values())
        problems: list[str] = []
        undecidable = self._indistinguishable()
        if runaway:
            problems.append("did not quiesce")
        if abs(self.on_hand - expected) > undecidable:
            problems.append(f"on_hand {self.on_hand} != start + local - channel sales = {expected}")
        for name, channel in self.channels.items():
            listing = channel.listing
            want = max(0, self.on_hand)
            if channel.level != want:
                problems.append(f"{name} shows {channel.level}, Nexus wants {want}")
            if listing.remote_qty != channel.level:
                problems.append(f"{name} believed {listing.remote_qty}, shows {channel.level}")
            if listing.verify_pending:
                problems.append(f"{name} still in doubt")
            closed = listing.timeline.get("closed", ())
            drift = listing.drift_qty + sum(segment.get("drift", 0) for segment in closed)
            if channel.kind.orders and drift != 0 and channel.kind.compare_and_set:
                problems.append(f"{name} stray drift {drift}")
        return Outcome(
            seed=self.seed,
            kinds=tuple(self.channels),
            on_hand=self.on_hand,
            expected_on_hand=expected,
            channels={
                n: (
                    c.level,
                    c.listing.desired,
                    c.listing.remote_qty,
                    c.listing.drift_qty,
                    c.listing.verify_pending,
                )
                for n, c in self.channels.items()
            },
            problems=problems,
            trace=self.trace,
            indistinguishable=undecidable,
        )


def simulate(seed: int, **kwargs: object) -> Outcome:
    return Simulation(seed, **kwargs).run()  # type: ignore[arg-type]
