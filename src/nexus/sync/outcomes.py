"""Writing a push round's answers to the listing rows: ok, stale, read back, retry, dead letter,
vetoed, unauthorized (the listing waits; the worker disconnects the channel). The push worker
decides nothing here; it hands over what the channel said.

Every outcome is written under the lease the round holds (`ListingQueue.lock_held`): a listing
whose lease another worker took over is left to that worker, whose answer is newer.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.backoff import backoff_delay
from nexus.config import WorkerConfig
from nexus.domain.allocation import Allocator
from nexus.domain.belief import Semantics, Span, level_read, needs_push, push_failed, push_landed
from nexus.domain.stock import StockChange, StockChangeResult, apply_stock_change, lock_item, refresh_desired
from nexus.domain.vocabulary import MovementReason
from nexus.drivers.dto import NexusInventoryUpdate, PushResult, PushStatus
from nexus.events import AfterInventorySync, InventorySyncFailed
from nexus.masking import mask_secrets
from nexus.storage.database import Database
from nexus.storage.models import ChannelMapping, utcnow
from nexus.sync.audit import audit_row
from nexus.sync.batches import count_in_round, opened_at, record_progress
from nexus.sync.dead_letters import record_dead_letter, resolve_pushed
from nexus.sync.queue import ClaimedListing, HeldListing, ListingQueue

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
    # Listings the channel refused for its credentials: they stay queued, the channel disconnects.
    unauthorized: int = 0
    auth_error: str | None = None
    duration: float = 0.0
    events: list[object] = field(default_factory=list)
    changes: list[StockChangeResult] = field(default_factory=list)
    # Batches whose progress the round recorded but did not settle (`nexus.sync.batches`).
    unsettled: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class RoundAnswers:
    """What a round sent and what came back. `read`: listings read back instead of pushed;
    `flight`: when the push was in flight, which places its landing on the channel's timeline."""

    claimed: Sequence[ClaimedListing]
    updates: Sequence[NexusInventoryUpdate]
    results: dict[int, PushResult]
    vetoed: dict[int, str]
    read: dict[int, int]
    flight: Span


class OutcomeWriter:
    """Records one channel's push rounds for one worker (`owner`, the lease holder)."""

    def __init__(
        self,
        db: Database,
        allocator: Allocator,
        config: WorkerConfig,
        *,
        channel: str,
        driver: str,
        semantics: Semantics,
        owner: str,
        rng: random.Random,
    ) -> None:
        self.db = db
        self.allocator = allocator
        self.config = config
        self.channel = channel
        self.driver = driver
        self.semantics = semantics
        self.owner = owner
        self.rng = rng

    async def record(self, answers: RoundAnswers, outcome: PushRound) -> None:
        """Write every claimed listing's outcome, its dead letters, the batch progress and the
        round's audit row, in one transaction. On PostgreSQL the batches it progressed are left
        in `outcome.unsettled`, for the process's `BatchSettler` (`nexus.sync.batches`): no
        round waits on a batch's row.

        A transaction PostgreSQL aborts as a deadlock's victim (webhook processing locks the
        same listings and items) is run again from the start; what it counted is only copied
        into `outcome` once it committed. Any other error is the caller's (`PushWorker`)."""

        async def write(session: AsyncSession) -> PushRound:
            written = dataclasses.replace(outcome, events=[], changes=[], unsettled=set())
            finished = await self._record(session, answers, written)
            if self.db.is_sqlite:
                written.events.extend(await count_in_round(session, finished))
            else:
                written.unsettled = await record_progress(session, finished)
            return written

        written = await self.db.run(write)
        for column in dataclasses.fields(PushRound):
            setattr(outcome, column.name, getattr(written, column.name))

    async def _record(
        self, session: AsyncSession, answers: RoundAnswers, outcome: PushRound
    ) -> Counter[tuple[str, bool]]:
        """Most answers (landed, retry, dead letter, veto) change only the listing's own row:
        those rows are read and written back as plain records, in one statement each way. A
        level to book (a refused compare-and-set, a read-back) goes through the ledger, which
        recomputes every listing of the SKU; those few go through the ORM afterwards, so the
        ledger sees the rows already written. Returns the batch members it finished, per
        (batch id, failed)."""
        now = utcnow()
        semantics = self.semantics
        claimed, results, vetoed, read = answers.claimed, answers.results, answers.vetoed, answers.read
        pushed = {u.listing_id: u for u in answers.updates}
        rows = await ListingQueue.lock_held_state(session, self.owner, [c.id for c in claimed])
        # Batches that took listings while this round was in flight (a catalog sync queueing):
        # when each opened decides whether this round's push counts for it.
        in_flight_joined = [
            row.batch_id
            for c in claimed
            if (row := rows.get(c.id)) is not None and row.batch_id is not None and row.batch_id != c.batch_id
        ]
        joined = await opened_at(session, in_flight_joined)
        finished: Counter[tuple[str, bool]] = Counter()
        resolvable: list[int] = []  # landed, and may have an open dead letter
        booked: list[ClaimedListing] = []
        for listing in claimed:
            row = rows.get(listing.id)
            if row is None:
                # Our lease expired and another worker took the listing: its answer wins.
                outcome.lost_lease += 1
                continue
            if listing.id in read or (
                listing.id not in vetoed
                and results[listing.id].status is PushStatus.STALE
                and _progress(results[listing.id], pushed[listing.id].change_from)
            ):
                booked.append(listing)
                continue
            if listing.id in vetoed:
                push_failed(row, semantics)
                self._vetoed(row, vetoed[listing.id], outcome, finished)
                continue
            result = results[listing.id]
            update_ = pushed[listing.id]
            if result.status is PushStatus.OK:
                if row.last_error is not None:
                    # Only a listing whose last push failed can have an open dead letter: one is
                    # opened with `last_error` set, and a push that lands clears both (below).
                    resolvable.append(row.id)
                self._succeeded(
                    row, listing, update_, result, answers.flight, semantics, outcome, finished, joined
                )
            elif result.status is PushStatus.STALE:
                # The channel says stale yet shows what we sent as the expected level: not progress.
                push_failed(row, semantics)
                self._retry_later(
                    row, PushResult.retry(row.id, "compare-and-set refused without a change"), now, outcome
                )
            elif result.status is PushStatus.UNAUTHORIZED:
                push_failed(row, semantics)
                self._unauthorized(row, result, outcome)
            elif result.status is PushStatus.RETRY and (
                not result.counts_as_attempt or row.attempts + 1 < self.config.max_attempts
            ):
                push_failed(row, semantics)
                self._retry_later(row, result, now, outcome)
            else:
                push_failed(row, semantics)
                await self._dead_letter(session, row, update_, result, now, outcome, finished)
        through_ledger = {listing.id for listing in booked}
        await ListingQueue.write_held(session, [r for i, r in rows.items() if i not in through_ledger])
        if booked:
            orm_rows = await ListingQueue.lock_held(session, self.owner, [c.id for c in booked])
            for listing in booked:
                orm_row = orm_rows[listing.id]  # locked above: still ours
                if listing.id in read:
                    await self._read(session, orm_row, listing, read[listing.id], outcome)
                else:
                    result = results[listing.id]
                    await self._stale(session, orm_row, listing, result, outcome)
        # A push that landed resolves the listing's open dead letter (replayed or not).
        await resolve_pushed(session, resolvable, actor=f"worker {self.owner}")
        session.add(audit_row(self.channel, self.driver, self.owner, answers, outcome))
        return finished

    def _succeeded(
        self,
        row: HeldListing,
        listing: ClaimedListing,
        update_: NexusInventoryUpdate,
        result: PushResult,
        flight: Span,
        semantics: Semantics,
        outcome: PushRound,
        finished: Counter[tuple[str, bool]],
        joined: Mapping[str, datetime],
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
        # When the push that landed was sent: a catalog sync opened before it need not push the
        # listing again (`ListingQueue.mark_for_batch`).
        row.last_synced_at = flight.earliest
        overridden = update_.quantity != listing.desired
        # Queued in a batch while this push was in flight (claimed outside it): a push sent
        # before the batch was asked for does not count for it, and the batch gets its own.
        opened = joined.get(row.batch_id) if row.batch_id != listing.batch_id and row.batch_id else None
        early = opened is not None and flight.earliest < opened
        if not early and (
            not needs_push(row, row.desired_qty)
            or (overridden and row.desired_qty == listing.desired and not row.verify_pending)
        ):
            row.dirty_since = None
        if row.batch_id is not None and not early:
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
        outcome: PushRound,
    ) -> None:
        """The channel refused our compare-and-set: it sold (or was edited) since we last knew it
        (`_progress`). Book the difference through the ledger, which recomputes every channel's
        desired quantity, and push again at once: the listing stays dirty.
        """
        current = result.quantity if result.quantity is not None else 0
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
        change = await book_level(
            session, row, delta, channel=self.channel, source=source, allocator=self.allocator
        )
        if change is not None:
            outcome.changes.append(change)

    def _retry_later(self, row: HeldListing, result: PushResult, now: datetime, outcome: PushRound) -> None:
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

    def _unauthorized(self, row: HeldListing, result: PushResult, outcome: PushRound) -> None:
        """The channel refused the credentials: not this listing's fault. It stays queued, due at
        once, with no attempt used and no dead letter; pushes wait for the channel to reconnect."""
        row.next_attempt_at = None
        row.last_error = result.error
        outcome.unauthorized += 1
        outcome.auth_error = outcome.auth_error or result.error

    async def _dead_letter(
        self,
        session: AsyncSession,
        row: HeldListing,
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
        letter = await record_dead_letter(
            session,
            channel=self.channel,
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
                    "batch_id": row.batch_id,  # `nexus batches retry-failed` finds the batch's letters
                }
            ),
            error=result.error or "unknown error",
            attempts=row.attempts,
            now=now,
            actor=f"worker {self.owner}",
        )
        log.warning(
            "listing dead-lettered: no more pushes until its stock changes or `nexus dlq replay`",
            channel=self.channel,
            sku=row.sku,
            error=letter.last_exception,
            attempts=row.attempts,
            dead_letter_id=letter.id,
        )
        if row.batch_id is not None:
            finished[(row.batch_id, True)] += 1
            row.batch_id = None
        outcome.failed += 1
        outcome.events.append(
            InventorySyncFailed(self.channel, row.sku, update_.quantity, letter.last_exception, letter.id)
        )

    def _vetoed(
        self, row: HeldListing, reason: str, outcome: PushRound, finished: Counter[tuple[str, bool]]
    ) -> None:
        """A listener vetoed the push: this change is not sent; the next stock change asks again."""
        row.dirty_since = None
        row.last_error = f"vetoed: {reason}"
        if row.batch_id is not None:
            finished[(row.batch_id, False)] += 1
            row.batch_id = None
        outcome.vetoed += 1


def _progress(result: PushResult, sent_from: int | None) -> bool:
    """A refused compare-and-set that shows a level other than the one we expected: the channel
    moved, and the difference is booked. Showing the expected level itself is no progress (the
    listing is retried later instead)."""
    current = result.quantity if result.quantity is not None else 0
    return current != sent_from


async def book_level(
    session: AsyncSession,
    row: ChannelMapping,
    delta: int,
    *,
    channel: str,
    source: str,
    allocator: Allocator,
    reason: MovementReason = MovementReason.CHANNEL_ADJUSTMENT,
) -> StockChangeResult | None:
    """Book a difference the channel's own level proved (a refused compare-and-set, a read),
    or, when there is none, bring the listing's desired quantity and dirty mark up to date."""
    if not delta:
        item = await lock_item(session, row.sku)
        refresh_desired([row], item, allocator)
        return None
    change = StockChange(
        sku=row.sku,
        reason=reason,
        idempotency_key=f"{channel}:{source}:{row.id}:{uuid.uuid4().hex}",
        delta=delta,
        channel=channel,
        reference=f"{source}: the channel's level moved",
    )
    return await apply_stock_change(session, change, allocator)
