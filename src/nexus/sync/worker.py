"""The push worker: claim dirty listings, push them in batches, record what the channel said.

Level-triggered: a worker never replays individual stock events. It pushes what a listing should
show *now*; a listing that changed while its push was in flight simply stays dirty and goes
round again. A crash loses nothing: the dirty mark is in the database and the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import structlog

from nexus.backoff import backoff_delay
from nexus.config import WorkerConfig
from nexus.domain.belief import Span
from nexus.domain.stock import StockChangeResult
from nexus.drivers.dto import NexusInventoryUpdate, PushResult, PushStatus
from nexus.errors import TerminalError, TransientError
from nexus.events import BeforeInventorySync, EventBus
from nexus.storage.database import describe, unavailable
from nexus.storage.models import utcnow
from nexus.sync.batches import BatchSettler
from nexus.sync.channel_state import ChannelStates
from nexus.sync.outcomes import OutcomeWriter, PushRound, RoundAnswers
from nexus.sync.queue import ClaimedListing, ListingQueue

if TYPE_CHECKING:
    from nexus.engine import ChannelRuntime

log = structlog.get_logger("nexus.worker")

# Backoff between attempts while the database is unreachable: doubling from 0.05 s to 1 s, so
# a round's answers are written within about a second of the database coming back, well
# inside any lease.
DATABASE_RETRY_BASE = 0.05
DATABASE_RETRY_MAX = 1.0

# A round sends only within this share of its lease. Once the lease expires another worker may
# take the listings over and read the channel; a push of ours landing after that read would be
# booked there as a channel movement (a refused compare-and-set, a phantom restock). Whatever
# delayed the round before sending (a database away, a slow read of orphans) leaves the rest of
# the lease for the request itself.
SEND_WITHIN_LEASE = 0.5


class Signals(Protocol):
    """What a worker tells the rest of the engine, and how it is woken (the engine is one)."""

    def wakeup(self, channel: str) -> asyncio.Event: ...

    def notify(self, channels: Iterable[str] | None = None) -> None: ...

    async def after_changes(self, results: Sequence[StockChangeResult]) -> None: ...


class PushWorker:
    """One channel's push loop. Build it with `Nexus.push_worker`; it holds no SQL: claims and
    leases go through the `ListingQueue`, answers through the `OutcomeWriter`."""

    def __init__(
        self,
        runtime: ChannelRuntime,
        *,
        queue: ListingQueue,
        outcomes: OutcomeWriter,
        events: EventBus,
        signals: Signals,
        config: WorkerConfig,
        settler: BatchSettler,
        states: ChannelStates | None = None,
    ) -> None:
        self.runtime = runtime
        self.settler = settler  # settles the batches a round progressed, without holding it up
        self.states = states  # paused or disconnected: claim nothing (nexus.sync.channel_state)
        self.channel = runtime.name
        self.queue = queue
        self.outcomes = outcomes
        self.owner = outcomes.owner
        self.events = events
        self.signals = signals
        self.config = config

    # -- claiming ---------------------------------------------------------------------------

    async def claim(self, limit: int, listing_ids: Sequence[int] | None = None) -> list[ClaimedListing]:
        return await self.queue.claim(self.channel, self.owner, limit, listing_ids)

    async def release(self, claimed: Sequence[ClaimedListing], *, sent: bool) -> None:
        """Give back listings this worker claimed (shutdown, cancellation)."""
        await self.queue.release(self.owner, [c.id for c in claimed], sent=sent)

    # -- one round --------------------------------------------------------------------------

    async def run_once(
        self, listing_ids: Sequence[int] | None = None, *, woken: bool = False
    ) -> PushRound | None:
        runtime = self.runtime
        if self.states is not None and not await self.states.may_claim(runtime, woken=woken):
            return None
        leased_at = time.monotonic()  # no later than the lease's own clock starts, in the claim
        claimed = await self.claim(runtime.batch_size, listing_ids)
        if not claimed:
            # An idle channel still looks for stranded batch work now and then (a sync whose
            # process died while queueing, progress a failed settle left): nobody else would.
            self.settler.request(())
            return None
        if listing_ids is None and len(claimed) >= runtime.batch_size:
            # A full round: more may be waiting. Wake the next idle loop of this channel (one
            # wake-up starts one loop, see `run`), so a backlog fills every round in flight.
            self.signals.wakeup(self.channel).set()
        sent = False
        try:
            outcome = PushRound(channel=self.channel, claimed=len(claimed))
            claimed, settled = await self._settle_orphans(runtime, claimed)
            read = await self._read_back(runtime, [c for c in claimed if c.id not in settled])
            updates, vetoed = await self._prepare(runtime, [c for c in claimed if c.id not in read])
            to_send = [u for u in updates if u.listing_id not in settled]
            if to_send and time.monotonic() - leased_at > self.queue.lease_seconds * SEND_WITHIN_LEASE:
                self._late(
                    "a push round was too slow to send; its listings go back unsent", leased_at, claimed
                )
                await self.release(claimed, sent=False)
                return None
            started = time.perf_counter()
            sent_at = utcnow()
            sent = bool(to_send)
            results = await self._push(runtime, to_send) if to_send else {}
            flight = Span.between(sent_at, utcnow())
            results.update(settled)
            outcome.duration = time.perf_counter() - started
            answers = RoundAnswers(claimed, updates, results, vetoed, read, flight)
            await self._record(answers, outcome)
        except asyncio.CancelledError:
            # Shutdown ran past its grace: give the listings back rather than wait for the lease.
            # With the database gone they keep the lease, which expires: the same as a crash.
            try:
                await asyncio.shield(self.release(claimed, sent=sent))
            except Exception as exc:
                log.warning("could not give back the listings", channel=self.channel, error=repr(exc))
            raise
        if time.monotonic() - leased_at > self.queue.lease_seconds:
            # Meanwhile another worker may have taken the listings over (their answers then go
            # unwritten: `lost_lease`), and the channel's levels for them waited all along
            # (`request_in_flight`: a push counts while its owner is set).
            self._late(
                "a push round outlived its lease; raise worker.lease_seconds if this recurs",
                leased_at,
                claimed,
                lost_lease=outcome.lost_lease,
            )
        runtime.metrics.push_round(outcome, sent=sent)
        if outcome.unauthorized and self.states is not None:
            await self.states.disconnect(self.channel, outcome.auth_error or "credentials refused")
        if any(r.status in (PushStatus.OK, PushStatus.STALE) for r in results.values()):
            await runtime.monitor.succeeded()
        await self.signals.after_changes(outcome.changes)
        for event in outcome.events:
            await self.events.dispatch(event)
        self.settler.request(outcome.unsettled)
        if outcome.stale:
            self.signals.notify([self.channel])
        return outcome

    def _late(
        self, message: str, leased_at: float, claimed: Sequence[ClaimedListing], **context: object
    ) -> None:
        """A round ran late against its lease: a warning a person must act on (the lease)."""
        log.warning(
            message,
            channel=self.channel,
            seconds=round(time.monotonic() - leased_at, 2),
            lease_seconds=self.queue.lease_seconds,
            listings=len(claimed),
            first_listings=[c.id for c in claimed[:10]],  # a round may hold thousands
            **context,
        )

    async def _read_back(self, runtime: ChannelRuntime, claimed: Sequence[ClaimedListing]) -> dict[int, int]:
        """Listings in doubt on a channel whose levels are its evidence of sales and which has
        no compare-and-set: read them back instead of pushing (a push would write over the very
        thing in doubt). Where nothing is believed, a push settles it instead."""
        driver = runtime.driver
        semantics = runtime.semantics
        doubtful = [c for c in claimed if c.verify and c.remote_qty is not None]
        if (
            not doubtful
            or semantics.compare_and_set
            or not semantics.levels_book_sales
            or not driver.capabilities.reads_levels
        ):
            return {}
        probes = [listing.update(listing.desired, compare_and_set=False) for listing in doubtful]
        try:
            return await driver.read_levels(probes)
        except Exception as exc:  # the listings are pushed instead; the doubt stays until then
            log.warning("reading listings in doubt failed", channel=self.channel, error=str(exc))
            return {}

    async def _settle_orphans(
        self, runtime: ChannelRuntime, claimed: list[ClaimedListing]
    ) -> tuple[list[ClaimedListing], dict[int, PushResult]]:
        """Read the channel for listings whose previous holder died mid-push.

        A listing that already shows its desired quantity is settled without a push (the dead
        worker's push landed, or the level is right anyway); the others are pushed with a
        compare-and-set from the level just read.
        """
        orphans = [c for c in claimed if c.reclaimed]
        driver = runtime.driver
        if not orphans or not driver.capabilities.reads_levels:
            return claimed, {}
        probes = [listing.update(listing.desired, compare_and_set=False) for listing in orphans]
        try:
            levels = await driver.read_levels(probes)
        except Exception as exc:  # unknown stays unknown: push without the check, as before
            log.warning("reading orphaned listings failed", channel=self.channel, error=str(exc))
            return claimed, {}
        # The level just read becomes our belief, so a refused compare-and-set later books only
        # what changed after this read, never the orphaned push itself.
        await self.queue.adopt_levels(self.owner, levels)
        settled: dict[int, PushResult] = {}
        refreshed: list[ClaimedListing] = []
        for listing in claimed:
            current = levels.get(listing.id) if listing.reclaimed else None
            if current is None:
                refreshed.append(listing)
                continue
            refreshed.append(dataclasses.replace(listing, remote_qty=current))
            if current == listing.desired:
                settled[listing.id] = PushResult.ok(listing.id, current)
        if settled:
            log.info("orphaned pushes already on the channel", channel=self.channel, listings=len(settled))
        return refreshed, settled

    async def _prepare(
        self, runtime: ChannelRuntime, claimed: Sequence[ClaimedListing]
    ) -> tuple[list[NexusInventoryUpdate], dict[int, str]]:
        compare_and_set = runtime.driver.capabilities.compare_and_set
        ask_listeners = self.events.has_listeners(BeforeInventorySync)
        updates: list[NexusInventoryUpdate] = []
        vetoed: dict[int, str] = {}
        for listing in claimed:
            quantity = listing.desired
            if ask_listeners:
                before = BeforeInventorySync(self.channel, listing.sku, quantity, listing.remote_qty)
                await self.events.dispatch(before)
                if before.vetoed:
                    vetoed[listing.id] = before.veto_reason or "vetoed"
                    continue
                quantity = max(0, before.quantity)
            updates.append(listing.update(quantity, compare_and_set=compare_and_set))
        return updates, vetoed

    async def _push(
        self, runtime: ChannelRuntime, updates: Sequence[NexusInventoryUpdate]
    ) -> dict[int, PushResult]:
        try:
            results = await runtime.driver.push_inventory(updates)
        except (TransientError, TerminalError) as exc:
            results = [PushResult.from_error(u.listing_id, exc) for u in updates]
        except Exception as exc:  # a driver bug must not kill the worker; retries are bounded
            log.exception("driver raised", channel=self.channel)
            results = [PushResult.retry(u.listing_id, f"{type(exc).__name__}: {exc}") for u in updates]
        by_id = {result.listing_id: result for result in results}
        for update_ in updates:
            by_id.setdefault(
                update_.listing_id, PushResult.retry(update_.listing_id, "driver returned no result")
            )
        return by_id

    # -- recording --------------------------------------------------------------------------

    async def _record(self, answers: RoundAnswers, outcome: PushRound) -> None:
        """Write the round's answers, however long the database takes to come back.

        What the channel answered is known only here: a push the channel applied must be
        recorded as applied, or the next compare-and-set from the old belief is refused and
        the refusal booked as a channel movement (docs/faults.md, bug 3). So while the database
        is unreachable the same answers are written again after a backoff; the lease stays
        meanwhile, so if this process dies the next holder reads the channel (`reclaimed`).
        Any other error is raised and leaves the lease in place, for the same reason.
        """
        failures = 0
        while True:
            try:
                await self.outcomes.record(answers, outcome)
                return
            except Exception as exc:
                if not unavailable(exc):
                    raise
                failures += 1
                delay = self._database_failed("recording a push round", exc, failures)
            await asyncio.sleep(delay)

    def _database_failed(self, doing: str, exc: BaseException, failures: int) -> float:
        """Log and count a database error; returns how long to wait before trying again."""
        self.runtime.metrics.database_error("push_worker")
        delay = backoff_delay(failures, base=DATABASE_RETRY_BASE, cap=DATABASE_RETRY_MAX)
        log.warning(
            "database unavailable; trying again",
            channel=self.channel,
            doing=doing,
            error=describe(exc),
            failures=failures,
            retry_in=round(delay, 2),
        )
        return delay

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Push rounds until `stop` is set. A round that fails (the database unreachable while
        claiming, a bug) is logged and counted and the loop carries on after a backoff; a push
        already sent is never given up (`_record`)."""
        wake = self.signals.wakeup(self.channel)
        log.info("worker started", channel=self.channel, owner=self.owner)
        failures = 0
        while not stop.is_set():
            # One wake-up starts one loop: the channel's loops in this process share the event,
            # and the first to run takes it. The others, woken for nothing, keep waiting: eight
            # empty claims (each a write transaction) for every stock change were most of the
            # embedded engine's CPU at 100 sales/s (docs/benchmarks.md, section 4).
            woken = wake.is_set()
            wake.clear()
            try:
                if await self.run_once(woken=woken) is not None:
                    failures = 0
                    continue
                wait = await self._idle_wait()
                failures = 0
            except Exception as exc:
                failures += 1
                if unavailable(exc):
                    delay = self._database_failed("starting a push round", exc, failures)
                else:
                    log.exception("push round failed", channel=self.channel)
                    delay = backoff_delay(failures, base=DATABASE_RETRY_BASE, cap=self.config.poll_interval)
                # Wake-ups do not cut a backoff short: only stopping does.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                continue
            await self._wait_for_work(wake, stop, wait)
        log.info("worker stopped", channel=self.channel)

    @staticmethod
    async def _wait_for_work(wake: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
        """Until a wake-up this loop takes (another loop may take it first), `stop`, or the poll."""
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=left)
            # Give the loops woken before this one their turn to take the wake-up.
            await asyncio.sleep(0)
            if wake.is_set():
                return

    async def _idle_wait(self) -> float:
        """Sleep until the earliest retry is due, but never longer than the poll interval."""
        due = await self.queue.next_due(self.channel)
        poll = self.config.poll_interval
        if due is None:
            return poll
        return min(poll, max(0.005, (due - utcnow()).total_seconds()))
