"""The push worker: claim dirty listings, push them in batches, record what the channel said.

Level-triggered: a worker never replays individual stock events. It pushes what a listing should
show *now*; a listing that changed while its push was in flight simply stays dirty and goes
round again. A crash loses nothing: the dirty mark is in the database and the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.belief import Semantics, Span, level_read, needs_push, push_failed, push_landed
from nexus.domain.stock import StockChange, StockChangeResult, apply_stock_change, lock_item, refresh_desired
from nexus.domain.vocabulary import MovementReason
from nexus.drivers.contract import LevelReader
from nexus.drivers.dto import NexusInventoryUpdate, PushResult, PushStatus
from nexus.errors import ChannelError
from nexus.events import (
    AfterInventorySync,
    BeforeInventorySync,
    InventorySyncFailed,
)
from nexus.storage.models import (
    ChannelMapping,
    DeadLetter,
    SyncJob,
    utcnow,
)
from nexus.sync.audit import mask_secrets
from nexus.sync.backoff import backoff_delay
from nexus.sync.batches import finish_members
from nexus.sync.queue import ClaimedListing, ListingQueue

if TYPE_CHECKING:
    from nexus.engine import ChannelRuntime, Nexus

log = structlog.get_logger("nexus.worker")


@dataclass(slots=True)
class PushRound:
    """What one claim-push-record round did."""

    channel: str
    claimed: int = 0
    ok: int = 0
    stale: int = 0
    retried: int = 0
    failed: int = 0
    vetoed: int = 0
    lost_lease: int = 0
    duration: float = 0.0
    events: list[object] = field(default_factory=list)
    changes: list[StockChangeResult] = field(default_factory=list)


class PushWorker:
    def __init__(
        self, nexus: Nexus, channel: str, *, owner: str | None = None, rng: random.Random | None = None
    ):
        self.nexus = nexus
        self.channel = channel
        self.owner = owner or f"{nexus.instance_id}:{channel}:{uuid.uuid4().hex[:6]}"
        self.rng = rng or random.Random()
        self.config = nexus.settings.worker

    # -- claiming ---------------------------------------------------------------------------

    async def claim(self, limit: int, listing_ids: Sequence[int] | None = None) -> list[ClaimedListing]:
        return await self.nexus.queue.claim(self.channel, self.owner, limit, listing_ids)

    async def release(self, claimed: Sequence[ClaimedListing], *, sent: bool) -> None:
        """Give back listings this worker claimed (shutdown, cancellation)."""
        await self.nexus.queue.release(self.owner, [c.id for c in claimed], sent=sent)

    # -- one round --------------------------------------------------------------------------

    async def run_once(self, listing_ids: Sequence[int] | None = None) -> PushRound | None:
        runtime = self.nexus.channel(self.channel)
        claimed = await self.claim(runtime.batch_size, listing_ids)
        if not claimed:
            return None
        sent = False
        try:
            outcome = PushRound(channel=self.channel, claimed=len(claimed))
            claimed, settled = await self._settle_orphans(runtime, claimed)
            read = await self._read_back(runtime, [c for c in claimed if c.id not in settled])
            updates, vetoed = await self._prepare(runtime, [c for c in claimed if c.id not in read])
            started = time.perf_counter()
            sent_at = utcnow()
            to_send = [u for u in updates if u.listing_id not in settled]
            sent = bool(to_send)
            results = await self._push(runtime, to_send) if to_send else {}
            flight = Span.between(sent_at, utcnow())
            results.update(settled)
            outcome.duration = time.perf_counter() - started
            async with self.nexus.db.transaction() as session:
                await self._record(session, runtime, claimed, updates, results, vetoed, read, flight, outcome)
        except asyncio.CancelledError:
            # Shutdown ran past its grace: give the listings back rather than wait for the lease.
            await asyncio.shield(self.release(claimed, sent=sent))
            raise
        if any(r.status in (PushStatus.OK, PushStatus.STALE) for r in results.values()):
            await runtime.monitor.succeeded()
        await self.nexus.after_changes(outcome.changes)
        for event in outcome.events:
            await self.nexus.events.dispatch(event)
        if outcome.stale:
            self.nexus.notify([self.channel])
        return outcome

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
            or not isinstance(driver, LevelReader)
        ):
            return {}
        probes = [self._update(listing, listing.desired, compare_and_set=False) for listing in doubtful]
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
        if not orphans or not isinstance(driver, LevelReader):
            return claimed, {}
        probes = [self._update(listing, listing.desired, compare_and_set=False) for listing in orphans]
        try:
            levels = await driver.read_levels(probes)
        except Exception as exc:  # unknown stays unknown: push without the check, as before
            log.warning("reading orphaned listings failed", channel=self.channel, error=str(exc))
            return claimed, {}
        # The level just read becomes our belief, so a refused compare-and-set later books only
        # what changed after this read, never the orphaned push itself.
        await self.nexus.queue.adopt_levels(self.owner, levels)
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
        ask_listeners = self.nexus.events.has_listeners(BeforeInventorySync)
        updates: list[NexusInventoryUpdate] = []
        vetoed: dict[int, str] = {}
        for listing in claimed:
            quantity = listing.desired
            if ask_listeners:
                before = BeforeInventorySync(self.channel, listing.sku, quantity, listing.remote_qty)
                await self.nexus.events.dispatch(before)
                if before.vetoed:
                    vetoed[listing.id] = before.veto_reason or "vetoed"
                    continue
                quantity = max(0, before.quantity)
            updates.append(self._update(listing, quantity, compare_and_set=compare_and_set))
        return updates, vetoed

    @staticmethod
    def _update(listing: ClaimedListing, quantity: int, *, compare_and_set: bool) -> NexusInventoryUpdate:
        return NexusInventoryUpdate(
            listing_id=listing.id,
            sku=listing.sku,
            remote_id=listing.remote_id,
            quantity=quantity,
            change_from=listing.remote_qty if compare_and_set else None,
            inventory_id=listing.inventory_id,
            channel_meta=listing.channel_meta,
        )

    async def _push(
        self, runtime: ChannelRuntime, updates: Sequence[NexusInventoryUpdate]
    ) -> dict[int, PushResult]:
        try:
            results = await runtime.driver.push_inventory(updates)
        except ChannelError as exc:
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

    async def _record(
        self,
        session: AsyncSession,
        runtime: ChannelRuntime,
        claimed: Sequence[ClaimedListing],
        updates: Sequence[NexusInventoryUpdate],
        results: dict[int, PushResult],
        vetoed: dict[int, str],
        read: dict[int, int],
        flight: Span,
        outcome: PushRound,
    ) -> None:
        now = utcnow()
        semantics = runtime.semantics
        pushed = {u.listing_id: u for u in updates}
        rows = await ListingQueue.lock_held(session, self.owner, [c.id for c in claimed])
        finished: Counter[tuple[str, bool]] = Counter()
        for listing in claimed:
            row = rows.get(listing.id)
            if row is None:
                # Our lease expired and another worker took the listing: its answer wins.
                outcome.lost_lease += 1
                continue
            if listing.id in read:
                await self._read(session, row, listing, read[listing.id], outcome)
                continue
            if listing.id in vetoed:
                push_failed(row, semantics)
                self._vetoed(row, vetoed[listing.id], outcome, finished)
                continue
            result = results[listing.id]
            update_ = pushed[listing.id]
            if result.status is PushStatus.OK:
                self._succeeded(row, listing, update_, result, now, flight, semantics, outcome, finished)
            elif result.status is PushStatus.STALE:
                await self._stale(session, row, listing, result, update_.change_from, now, outcome)
            elif result.status is PushStatus.RETRY and (
                not result.counts_as_attempt or row.attempts + 1 < self.config.max_attempts
            ):
                push_failed(row, semantics)
                self._retry_later(row, result, now, outcome)
            else:
                push_failed(row, semantics)
                await self._dead_letter(session, row, update_, result, now, outcome, finished)
        session.add(self._audit_row(runtime, claimed, updates, results, vetoed, outcome))
        outcome.events.extend(await finish_members(session, finished))

    def _succeeded(
        self,
        row: ChannelMapping,
        listing: ClaimedListing,
        update_: NexusInventoryUpdate,
        result: PushResult,
        now: datetime,
        flight: Span,
        semantics: Semantics,
        outcome: PushRound,
        finished: Counter[tuple[str, bool]],
    ) -> None:
        acknowledged = result.quantity if result.quantity is not None else update_.quantity
        push_landed(
            row,
            listing.sent,
            acknowledged,
            flight,
            semantics,
            checked=update_.change_from is not None,
            stamp=result.remote_updated_at,
        )
        row.attempts = 0
        row.next_attempt_at = None
        row.last_error = None
        row.last_synced_at = now
        overridden = update_.quantity != listing.desired
        if not needs_push(row, row.desired_qty) or (
            overridden and row.desired_qty == listing.desired and not row.verify_pending
        ):
            row.dirty_since = None
        if row.batch_id is not None:
            finished[(row.batch_id, False)] += 1
            row.batch_id = None
        outcome.ok += 1
        outcome.events.append(AfterInventorySync(self.channel, row.sku, acknowledged, listing.batch_id))

    async def _stale(
        self,
        session: AsyncSession,
        row: ChannelMapping,
        listing: ClaimedListing,
        result: PushResult,
        sent_from: int | None,
        now: datetime,
        outcome: PushRound,
    ) -> None:
        """The channel refused our compare-and-set: it sold (or was edited) since we last knew it.

        Book the difference through the ledger, which recomputes every channel's desired
        quantity, and push again at once: the listing stays dirty.
        """
        current = result.quantity if result.quantity is not None else 0
        if current == sent_from:
            # The channel says stale yet shows what we sent as the expected level: not progress.
            push_failed(row, self.nexus.channel(self.channel).semantics)
            self._retry_later(
                row, PushResult.retry(row.id, "compare-and-set refused without a change"), now, outcome
            )
            return
        outcome.stale += 1
        row.next_attempt_at = None
        await self._book_level(
            session, row, level_read(row, listing.sent, current), "compare-and-set", outcome
        )

    async def _read(
        self,
        session: AsyncSession,
        row: ChannelMapping,
        listing: ClaimedListing,
        level: int,
        outcome: PushRound,
    ) -> None:
        """A listing in doubt was read back: book what it shows against what we believed."""
        row.next_attempt_at = None
        await self._book_level(session, row, level_read(row, listing.sent, level), "read-back", outcome)

    async def _book_level(
        self, session: AsyncSession, row: ChannelMapping, delta: int, source: str, outcome: PushRound
    ) -> None:
        if not delta:
            item = await lock_item(session, row.sku)
            refresh_desired([row], item, self.nexus.allocator)
            return
        change = StockChange(
            sku=row.sku,
            reason=MovementReason.CHANNEL_ADJUSTMENT,
            idempotency_key=f"{self.channel}:{source}:{row.id}:{uuid.uuid4().hex}",
            delta=delta,
            channel=self.channel,
            reference=f"{source}: the channel's level moved",
        )
        outcome.changes.append(await apply_stock_change(session, change, self.nexus.allocator))

    def _retry_later(
        self, row: ChannelMapping, result: PushResult, now: datetime, outcome: PushRound
    ) -> None:
        if not result.counts_as_attempt:
            # Never sent: wait exactly as long as our own bucket said, without using an attempt.
            row.next_attempt_at = now + timedelta(seconds=result.retry_after or self.config.poll_interval)
            row.last_error = result.error
            outcome.retried += 1
            return
        row.attempts += 1
        delay = backoff_delay(
            row.attempts,
            base=self.config.backoff_base,
            cap=self.config.backoff_max,
            retry_after=result.retry_after,
            rng=self.rng,
        )
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.last_error = result.error
        outcome.retried += 1

    async def _dead_letter(
        self,
        session: AsyncSession,
        row: ChannelMapping,
        update_: NexusInventoryUpdate,
        result: PushResult,
        now: datetime,
        outcome: PushRound,
        finished: Counter[tuple[str, bool]],
    ) -> None:
        row.attempts += 1
        row.failed_at = now
        row.last_error = result.error
        row.next_attempt_at = None
        letter = DeadLetter(
            channel=self.channel,
            job_kind="push_inventory",
            listing_id=row.id,
            payload=mask_secrets(
                {
                    "listing_id": row.id,
                    "sku": row.sku,
                    "remote_id": update_.remote_id,
                    "inventory_id": update_.inventory_id,
                    "quantity": update_.quantity,
                    "change_from": update_.change_from,
                    "status": result.status.value,
                    "detail": dict(result.detail),
                }
            ),
            last_exception=result.error or "unknown error",
            attempts=row.attempts,
            failed_at=now,
        )
        session.add(letter)
        await session.flush()
        if row.batch_id is not None:
            finished[(row.batch_id, True)] += 1
            row.batch_id = None
        outcome.failed += 1
        outcome.events.append(
            InventorySyncFailed(self.channel, row.sku, update_.quantity, letter.last_exception, letter.id)
        )

    def _vetoed(
        self, row: ChannelMapping, reason: str, outcome: PushRound, finished: Counter[tuple[str, bool]]
    ) -> None:
        """A listener vetoed the push: this change is not sent; the next stock change asks again."""
        row.dirty_since = None
        row.last_error = f"vetoed: {reason}"
        if row.batch_id is not None:
            finished[(row.batch_id, False)] += 1
            row.batch_id = None
        outcome.vetoed += 1

    def _audit_row(
        self,
        runtime: ChannelRuntime,
        claimed: Sequence[ClaimedListing],
        updates: Sequence[NexusInventoryUpdate],
        results: dict[int, PushResult],
        vetoed: dict[int, str],
        outcome: PushRound,
    ) -> SyncJob:
        if outcome.failed == len(updates) and updates:
            status = "failed"
        elif outcome.ok == len(updates):
            status = "ok"
        elif outcome.ok == 0 and outcome.failed == 0:
            status = "stale" if outcome.stale and not outcome.retried else "retry"
        else:
            status = "partial"
        errors = sorted({r.error for r in results.values() if r.error})
        batch_ids = {c.batch_id for c in claimed if c.batch_id}
        return SyncJob(
            channel=self.channel,
            batch_id=next(iter(batch_ids)) if len(batch_ids) == 1 else None,
            count=len(updates),
            succeeded=outcome.ok,
            status=status,
            duration_ms=round(outcome.duration * 1000, 3),
            error="; ".join(errors)[:2000] or None,
            payload=mask_secrets(
                {
                    "driver": runtime.config.driver,
                    "worker": self.owner,
                    "updates": [
                        {
                            "listing_id": u.listing_id,
                            "sku": u.sku,
                            "remote_id": u.remote_id,
                            "quantity": u.quantity,
                            "change_from": u.change_from,
                        }
                        for u in updates
                    ],
                    "results": {str(i): r.status.value for i, r in results.items()},
                    "vetoed": {str(i): reason for i, reason in vetoed.items()},
                }
            ),
        )

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.nexus.wakeup(self.channel)
        log.info("worker started", channel=self.channel, owner=self.owner)
        while not stop.is_set():
            wake.clear()
            try:
                if await self.run_once() is not None:
                    continue
            except Exception:
                log.exception("push round failed", channel=self.channel)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=await self._idle_wait())
        log.info("worker stopped", channel=self.channel)

    async def _idle_wait(self) -> float:
        """Sleep until the earliest retry is due, but never longer than the poll interval."""
        due = await self.nexus.queue.next_due(self.channel)
        poll = self.config.poll_interval
        if due is None:
            return poll
        return min(poll, max(0.005, (due - utcnow()).total_seconds()))
