"""A seeded, synchronous simulation of Nexus and in-memory channels, driving the real belief rules
(`nexus.domain.belief`) and reconciliation rules (`nexus.domain.reconcile`) with random
interleavings of channel sales, merchant edits in a channel's admin, local restocks and sales,
pushes and their answers, and deliveries that are delayed, duplicated, reordered and dropped,
stamped at each channel's precision.

Nexus's side here is the same orchestration the engine does with the database (book what the
rules say, recompute what every listing should show, push what needs a push, defer a delivery
for a listing with a push in flight; after quiescence, read every listing of a channel that can
read its levels back under a lease and book what `reconcile_reading` returns, as
`nexus.sync.readings` does); the rules themselves are the engine's own functions. After
quiescence, reconciliation and quiescence again, the invariants of docs/consistency.md must hold;
which ones each conflict policy promises is written in tests/consistency/test_randomized.py.
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
from nexus.domain.reconcile import Finding, reconcile_reading
from nexus.domain.vocabulary import ConflictPolicy

BASE = datetime(2026, 1, 1, tzinfo=UTC)
ORDER_GRACE_MS = 300_000  # reconcile.order_grace's default
POLICIES = tuple(ConflictPolicy)
# Many drops and edits, so that reconciliation has something to find: the randomized test's
# heavy case and `soak.py --heavy`, each policy in turn.
HEAVY_FAULTS = {"drop_orders": 0.3, "drop_levels": 0.3, "edits": 0.1}


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
    lease_until: datetime | None = None
    sending_qty: int | None = None


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
    overwrites: list[int] = field(default_factory=list)  # when our absolute pushes landed (ms)
    unreported: list[tuple[int, int]] = field(default_factory=list)  # sales whose reports all dropped
    edits: list[tuple[int, int]] = field(default_factory=list)  # merchant edits: when (ms), how much
    changes: dict[int, int] = field(default_factory=dict)  # our absolute pushes: sent (ms) -> moved
    answered: list[tuple[int, int]] = field(default_factory=list)  # those pushes' flights (ms)
    reads: list[int] = field(default_factory=list)  # when reconciliation read the listing (ms)
    conflict: tuple[int | None, int] | None = None  # open review conflict: believed, observed
    dropped_orders: int = 0
    unordered: int = 0  # units whose level was reported but whose order was dropped


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
    policy: ConflictPolicy = ConflictPolicy.NEXUS_WINS
    lost: int = 0  # units sold whose every report was dropped and no read can recover
    stolen: int = 0  # of the ledger's excess, units only the allowance for absorbed drift covers
    scrambled: int = 0  # of the ledger's shortfall, units only the allowance for raises in flight covers
    edited: int = 0  # merchant edits made
    dropped: int = 0  # deliveries dropped
    findings: dict[str, int] = field(default_factory=dict)  # reconciliation findings, by value
    conflicts: int = 0  # open review conflicts at the end

    @property
    def ok(self) -> bool:
        return not self.problems


class Simulation:
    """One run. Faults and policy are drawn from the seed unless given: `drop_orders` and
    `drop_levels` (the chance that a channel's order or level webhook for a sale or an edit never
    arrives), `edits` (the share of the world's steps that are merchant edits) and `policy` (every
    channel's conflict policy). Drops and edits touch only channels that can read their levels
    back: on the others nothing could ever recover them."""

    def __init__(
        self,
        seed: int,
        *,
        kinds: tuple[ChannelKind, ...] | None = None,
        steps: int = 60,
        policy: ConflictPolicy | None = None,
        drop_orders: float | None = None,
        drop_levels: float | None = None,
        edits: float | None = None,
    ) -> None:
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
        faults = random.Random(seed ^ 0x5EED)  # the seeds' other draws stay as they were
        self.policy = policy if policy is not None else faults.choice(POLICIES)
        self.drop_orders = drop_orders if drop_orders is not None else faults.choice((0.0, 0.0, 0.1, 0.3))
        self.drop_levels = drop_levels if drop_levels is not None else faults.choice((0.0, 0.0, 0.1, 0.3))
        self.edits = edits if edits is not None else faults.choice((0.0, 0.0, 0.1))
        self.dropped = 0
        self.tail = faults.random() < 0.5  # drops only among the last steps: fewer pushes after
        self._drops_from = 0
        self.runaway = False
        self._guard = 0
        self.findings: list[tuple[str, Finding, int | None, int, int]] = []  # channel, finding, ...
        self.problems: list[str] = []

    # -- scheduling -------------------------------------------------------------------------

    def _at(self, time: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Scheduled(time, self._seq, action))

    def _log(self, text: str) -> None:
        self.trace.append(f"{self.now:>7} {text}")

    def _stamp(self, channel: Channel, ms: int) -> datetime:
        p = channel.kind.precision_ms
        return at(ms - ms % p)

    def _deliver(
        self, channel: Channel, handle: Callable[[], None], label: str, *, level: bool, drop: float = 0.0
    ) -> bool:
        """The channel sends a notification: delivered later, maybe late, maybe twice, or, with
        probability `drop` (a sale's or an edit's report on a channel that reads its levels
        back), never. Returns whether it is delivered."""
        if drop and channel.kind.reader and self.now >= self._drops_from and self.rng.random() < drop:
            self.dropped += 1
            channel.dropped_orders += not level
            self._log(f"{channel.kind.name} drops {label}")
            return False
        copies = 2 if self.rng.random() < self.duplicates else 1
        for _ in range(copies):
            delay = self.rng.randint(0, 300)
            if self.rng.random() < self.late:
                delay = self.rng.randint(300, 5000)
            self._at(self.now + delay, lambda: self._receive(channel, handle, label, level))
        return True

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
            if change_from is None:
                channel.overwrites.append(self.now)
                channel.changes[sent_at] = abs(quantity - channel.level)
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
        if change_from is None:
            channel.answered.append((sent_at, self.now))
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
        kind = channel.kind
        reported = orders_arrive = False  # some delivery that books the sale arrives
        if kind.orders:
            reported = orders_arrive = self._deliver(
                channel,
                lambda: self._order(channel, key, quantity, stamp),
                f"order {key} x{quantity}",
                level=False,
                drop=self.drop_orders,
            )
        if kind.levels:
            reported |= (
                self._deliver(
                    channel,
                    lambda: self._level(channel, level, stamp),
                    f"level {level}@{stamp:%S.%f}",
                    level=True,
                    drop=self.drop_levels,
                )
                and kind.semantics.levels_book_sales
            )
        if not reported:
            channel.unreported.append((self.now, quantity))
        elif kind.orders and kind.levels and not kind.compare_and_set and not orders_arrive:
            channel.unordered += quantity

    def _merchant_edit(self, channel: Channel) -> None:
        """Someone sets the level in the channel's admin: no order; a level report where the
        channel sends them (which may be dropped too)."""
        level = max(0, channel.level + self.rng.choice((-2, -1, 1, 2, 3)))
        if level == channel.level:
            return
        channel.edits.append((self.now, level - channel.level))
        channel.level = level
        stamp = self._stamp(channel, self.now)
        self._log(f"{channel.kind.name} merchant sets {level}")
        if channel.kind.levels:
            self._deliver(
                channel,
                lambda: self._level(channel, level, stamp),
                f"level {level}@{stamp:%S.%f} (edit)",
                level=True,
                drop=self.drop_levels,
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
        editable = [c for c in self.channels.values() if c.kind.reader]
        for step in range(self.steps):
            time += rng.choice((1, 5, 20, 100, 400, 1000))
            if self.tail and step == self.steps - 8:
                self._drops_from = time
            if self.edits and editable and rng.random() < self.edits:
                channel = rng.choice(editable)
                self._at(time, lambda c=channel: self._merchant_edit(c))  # type: ignore[misc]
            elif rng.random() < 0.3:
                self._at(time, self._local)
            else:
                channel = rng.choice(list(self.channels.values()))
                self._at(time, lambda c=channel: self._channel_sale(c))  # type: ignore[misc]
        self._quiesce()
        if self._reconcile() and not self.runaway:
            # A lower level on a channel whose orders book its sales waits for its order: the
            # next cycle, after the grace, settles it by the policy.
            self.now += ORDER_GRACE_MS + 1
            self._reconcile()
        return self._outcome()

    def _quiesce(self) -> None:
        while self._queue and not self.runaway:
            self._guard += 1
            if self._guard > 200_000:
                self.runaway = True
                break
            item = heapq.heappop(self._queue)
            self.now = item.time
            item.action()

    # -- reconciliation ---------------------------------------------------------------------

    def _reconcile(self) -> bool:
        """One cycle: every channel that reads its levels back, in turn, reads its listing under
        a lease (nothing of ours in flight) once everything before has settled; what the reading
        books goes through the ledger, desired is recomputed and what needs a push is pushed.
        Returns whether some reading waits for its order."""
        waiting = False
        for channel in self.channels.values():
            if not channel.kind.reader:
                continue
            self._quiesce()
            waiting |= self._read_back(channel) is Finding.AWAITS_ORDER
        self._quiesce()
        return waiting

    def _read_back(self, channel: Channel) -> Finding:
        listing, kind = channel.listing, channel.kind
        assert listing.lease_owner is None, "quiet: no push in flight"
        listing.lease_owner = "reconciler"
        sent = Sent(listing.remote_qty)
        observed = channel.level
        on_hand = self.on_hand
        reading = reconcile_reading(
            listing,
            sent,
            observed,
            kind.semantics,
            self.policy,
            now=at(self.now),
            order_grace=timedelta(milliseconds=ORDER_GRACE_MS),
        )
        channel.reads.append(self.now)
        finding = reading.finding
        self.findings.append((kind.name, finding, reading.believed, observed, reading.delta))
        self._log(
            f"{kind.name} reconcile reads {observed} (belief {reading.believed}): {finding.value}"
            f" -> belief {listing.remote_qty}"
        )
        self._check_reading(channel, reading.believed, observed, finding, reading.delta)
        if finding is Finding.REVIEW:
            channel.conflict = (reading.believed, observed)  # opened, or updated: never two
        self._book(reading.delta, f"{kind.name} reconcile {finding.value}")
        if self.on_hand - on_hand != reading.delta:
            self.problems.append(f"{kind.name} reconciliation booked {self.on_hand - on_hand}")
        self._release(channel)  # desired recomputed; what differs is pushed
        return finding

    def _check_reading(
        self, channel: Channel, believed: int | None, observed: int, finding: Finding, delta: int
    ) -> None:
        """What the policy allows a reading to do (docs/consistency.md, "Reconciliation")."""
        name, policy, listing = channel.kind.name, self.policy, channel.listing
        lower = believed is not None and observed < believed
        allowed = {
            Finding.AGREES: observed == believed,
            Finding.UNKNOWN: believed is None,
            Finding.BOOKED: lower and channel.kind.semantics.levels_book_sales,
            Finding.AWAITS_ORDER: lower and not channel.kind.semantics.levels_book_sales,
            Finding.ADOPTED: policy is ConflictPolicy.CHANNEL_WINS
            or (policy is ConflictPolicy.CONSERVATIVE and lower),
            Finding.PUSHED: policy is ConflictPolicy.NEXUS_WINS
            or (policy is ConflictPolicy.CONSERVATIVE and not lower),
            Finding.REVIEW: policy is ConflictPolicy.REVIEW,
        }[finding]
        if not allowed:
            self.problems.append(f"{name}: {finding.value} under {policy.value} ({believed} -> {observed})")
        books = finding in (Finding.BOOKED, Finding.ADOPTED)
        expected = observed - believed if books and believed is not None else 0
        if delta != expected:
            self.problems.append(f"{name}: {finding.value} booked {delta}, not {expected}")
        if finding is Finding.PUSHED and listing.remote_qty != observed:
            self.problems.append(f"{name}: pushed over {observed} but believes {listing.remote_qty}")
        if finding in (Finding.REVIEW, Finding.AWAITS_ORDER) and listing.remote_qty != believed:
            self.problems.append(f"{name}: {finding.value} moved the belief to {listing.remote_qty}")

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

    def _lost(self) -> int:
        """Units sold whose every report was dropped and that no reading can recover: written
        over by one of our absolute pushes before the listing's last read (the channel's level
        then agrees with Nexus: nothing is left to find), or, under nexus_wins and review, left
        on a channel whose orders book its sales (the lower level is pushed over, or waits for a
        person)."""
        units = 0
        keeps = self.policy in (ConflictPolicy.CONSERVATIVE, ConflictPolicy.CHANNEL_WINS)
        for channel in self.channels.values():
            last_read = max(channel.reads, default=self.now)
            for sold_at, quantity in channel.unreported:
                written_over = any(sold_at <= landed <= last_read for landed in channel.overwrites)
                if written_over or not (keeps or channel.kind.semantics.levels_book_sales):
                    units += quantity
        return units

    def _scrambled(self) -> int:
        """Where levels book sales and pushes overwrite, a merchant's raise inside our push's
        flight breaks what placing a reading there rests on: inside a segment the level only
        falls. The raise can leave the pushed quantity again after the push landed (a later
        report taken for the push's echo), or before it with its report dropped (the push then
        changes nothing and sends no echo), and readings are then placed on the wrong side of
        the push: the ledger may fall by the push's own change and the raises in its flight
        (docs/consistency.md, "What cannot be decided")."""
        units = 0
        for channel in self.channels.values():
            if channel.kind.compare_and_set or not channel.kind.semantics.levels_book_sales:
                continue
            for sent, answered in channel.answered:
                raised = [d for t, d in channel.edits if sent <= t <= answered and d > 0]
                if raised:
                    units += sum(raised) + channel.changes[sent]
        return units

    def _stolen(self) -> int:
        """Where levels and orders both book sales and pushes overwrite (Amazon's default), a
        level books a sale as drift that its order absorbs. When that order was dropped the drift
        stays, and another order placed in the same segment (or meeting one of our push's
        landings) absorbs it and leaves its own sale unbooked: at most the units of the dropped
        orders whose levels were booked."""
        return sum(channel.unordered for channel in self.channels.values())

    def _outcome(self) -> Outcome:
        expected = self.start + self.local - sum(c.sold for c in self.channels.values())
        problems = list(self.problems)
        undecidable = self._indistinguishable()
        stolen = self._stolen()
        lost = self._lost() + stolen
        if self.runaway:
            problems.append("did not quiesce")
        # Edits move the ledger by at most what they moved the channels (each one is booked or
        # pushed over, depending on what reaches Nexus first); sales whose reports were all
        # dropped and that no read could recover leave it high by at most their units; a raise
        # inside our push's flight may misplace readings around the push (`_scrambled`).
        edits = [d for c in self.channels.values() for _, d in c.edits]
        scrambled = self._scrambled()
        low = expected - undecidable - scrambled + sum(d for d in edits if d < 0)
        high = expected + undecidable + lost + sum(d for d in edits if d > 0)
        if not low <= self.on_hand <= high:
            problems.append(
                f"on_hand {self.on_hand} outside [{low}, {high}] (start + local - channel sales "
                f"= {expected}, undecidable {undecidable}, lost {lost}, edits {edits}, "
                f"raises in a push's flight allow {scrambled})"
            )
        conflicts = 0
        for name, channel in self.channels.items():
            listing = channel.listing
            want = max(0, self.on_hand)
            waits = channel.conflict is not None and channel.conflict == (listing.remote_qty, channel.level)
            conflicts += channel.conflict is not None
            if waits and channel.level != want:
                pass  # review: the difference waits for a person, and nothing moved it
            else:
                if channel.level != want:
                    problems.append(f"{name} shows {channel.level}, Nexus wants {want}")
                if listing.remote_qty != channel.level:
                    problems.append(f"{name} believed {listing.remote_qty}, shows {channel.level}")
            if listing.verify_pending:
                problems.append(f"{name} still in doubt")
            closed = listing.timeline.get("closed", ())
            drift = listing.drift_qty + sum(segment.get("drift", 0) for segment in closed)
            explained = not channel.dropped_orders and not channel.edits  # else drift may stay
            if channel.kind.orders and drift != 0 and channel.kind.compare_and_set and explained:
                problems.append(f"{name} stray drift {drift}")
        findings: dict[str, int] = {}
        for _, finding, *_rest in self.findings:
            findings[finding.value] = findings.get(finding.value, 0) + 1
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
            policy=self.policy,
            lost=lost,
            stolen=max(0, min(stolen, self.on_hand - (high - stolen))),
            scrambled=max(0, min(scrambled, low + scrambled - self.on_hand)),
            edited=len(edits),
            dropped=self.dropped,
            findings=findings,
            conflicts=conflicts,
        )


def simulate(seed: int, **kwargs: object) -> Outcome:
    return Simulation(seed, **kwargs).run()  # type: ignore[arg-type]
