"""Processing stored webhook deliveries: always from the stored row, never from the request.

    processor = WebhookProcessor(nexus)
    processor.schedule(receipt)          # the route: WebhookReceived, then an attempt, after the answer,
                                         # batched with whatever else arrived meanwhile
    await processor.process(log_id)      # one attempt at one delivery
    await processor.process_many(ids)    # one attempt at each, in one transaction
    await processor.process_pending()    # every due "received" row: crash recovery, deferred deliveries
    await processor.run(stop)            # process_pending in a loop until `stop` is set
    await processor.drain()              # wait for the scheduled tasks (tests); aclose() bounds it

Each stored body is resolved first (driver.resolve_webhook), outside any transaction: a driver
may call its channel there (Etsy's `order.paid` names a receipt to fetch; an SNS subscription is
confirmed by a fetch), and such a call can wait on the channel's rate limit for a minute. Held
inside a write transaction, that wait stopped every other writer: on SQLite the whole process,
webhook ingestion included (docs/benchmarks.md, finding 18). Then attempts run in one
transaction per batch: lock the rows (only while their status is "received"), lock every listing
and item the batch will touch and look up the ledger keys it may book, all at once and in one
order (`nexus.domain.inbound.InboundScope`), then apply_inbound each delivery through the one
write path and mark its row "processed". Stock events fire after the commit
(`nexus.after_changes`). Two processes may resolve the same delivery (a read, done twice); only
the one holding its row applies it.

A batch is applied without savepoints and flushed once, which is what makes processing cheap
(a few statements per batch, not ten per delivery). If any delivery of it raises, the batch is
rolled back and run again carefully, one savepoint per delivery, so each outcome below touches
only its own delivery. A level for a listing whose push is in flight is deferred before the batch
is applied, on either path. SQLite processes one batch at a time (one writer); PostgreSQL runs
`worker.webhook_concurrency` batches side by side per process: their locks are taken in one
order, so they never deadlock each other.

    ListingBusy           a push to the listing is in flight, or a level waits for our push's own
                          report (docs/consistency.md): roll back, retry in 0.2 s (attempts + 1)
    a lock conflict       PostgreSQL chose the delivery's savepoint as a deadlock's victim: the
                          same as ListingBusy (it never counts towards "failed"), and the batch
                          stops there and commits, releasing its locks; the deliveries after it
                          stay "received" and are due at once
    the database gone     (`nexus.storage.database.unavailable`) the whole batch rolls back: its
                          rows stay "received", no attempt counted, for the next round
    WebhookPayloadError   the stored bytes will never parse: "failed" at once
    anything else         retry with the workers' backoff; "failed" after worker.max_attempts

Duplicates never reach this module twice: the receiver stores one row per delivery id and event
id, and an attempt only works on a row it has locked while it is still "received" (PostgreSQL:
FOR UPDATE SKIP LOCKED; SQLite: one writer at a time).

`WebhookReceived` is dispatched once per stored delivery by the scheduled batch, before its first
attempt. A delivery stored by a process that then crashed is processed by `process_pending`
without that event (at most once, like every in-process event).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.backoff import backoff_delay
from nexus.domain.inbound import InboundOutcome, InboundScope, ListingBusy, apply_inbound
from nexus.domain.vocabulary import WebhookStatus
from nexus.drivers.contract import InboundEvent, WebhookRequest
from nexus.errors import WebhookError
from nexus.events import WebhookReceived
from nexus.storage.database import describe, lock_conflict, unavailable
from nexus.storage.models import WebhookLog, utcnow
from nexus.webhooks.receiver import ERROR_MAX_LENGTH, Receipt

if TYPE_CHECKING:
    from nexus.engine import Nexus

log = structlog.get_logger("nexus.webhooks")

DEFER_SECONDS = 0.2  # a listing's push in flight usually answers well within this
# A delivery the receiving process scheduled is its batcher's to process; the pending loop takes
# such a row only when it is older than this (its process died, or fell this far behind).
STRAY_AFTER = timedelta(seconds=5)
# How long the route's processing waits for a delivery's resolution (Etsy fetches its receipt,
# behind Etsy's rate limit). SQLite takes the route's chunks one after another, so one receipt
# waiting a minute held back every channel's deliveries behind it; past this, the delivery is
# left "received" to the pending loop, which waits for it (docs/benchmarks.md, finding 18).
RESOLVE_PATIENCE = 1.0
WAKEUP_KEY = "nexus:webhooks"  # Nexus.wakeup key (':' never appears in a channel name)

# A stored delivery's events, or what refused them (raised again in its attempt).
Resolved = list[InboundEvent] | Exception


class Attempt(enum.Enum):
    PROCESSED = "processed"
    FAILED = "failed"  # final: the row will not be tried again
    DEFERRED = "deferred"  # ListingBusy: due again in DEFER_SECONDS
    RETRY = "retry"  # an error: due again after a backoff
    SKIPPED = "skipped"  # not "received" any more, or another processor holds it


class WebhookProcessor:
    def __init__(
        self,
        nexus: Nexus,
        *,
        batch_size: int = 100,
        chunk_size: int = 16,
        yield_to: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.nexus = nexus
        self.batch_size = batch_size
        self.chunk_size = chunk_size  # deliveries per write transaction of the route's processing
        # Awaited before each of those transactions: the web app passes the receiver's `turn`,
        # so a group commit that senders are waiting on goes before the next processing chunk.
        # Only SQLite's one writer needs it: on PostgreSQL the two never wait for each other,
        # and under steady load the writer is always busy, so processing would wait in vain.
        self._yield_to = yield_to if nexus.db.is_sqlite else None
        self._tasks: set[asyncio.Task[None]] = set()
        # SQLite has one writer, so batches take turns; PostgreSQL runs a few side by side
        # (their rows are locked in one order: see process_many).
        self.parallel = 1 if nexus.db.is_sqlite else nexus.settings.worker.webhook_concurrency
        self._batches = asyncio.Semaphore(self.parallel)
        self._scheduled: list[Receipt] = []
        self._arrived = asyncio.Event()  # set by `schedule`: a delivery was queued
        self._batcher: asyncio.Task[None] | None = None
        self._closed = False  # after `aclose`: the database is about to go, start nothing

    # -- the route's background work --------------------------------------------------------

    def schedule(self, receipt: Receipt) -> asyncio.Task[None] | None:
        """Process a just-stored delivery after the answer, batched with the others that arrive
        meanwhile: one transaction for many deliveries keeps the single SQLite writer free for
        the receiver's own commits, which the senders are waiting on. After `aclose` nothing
        is started: the row stays "received" for the next `process_pending` (a delivery can still
        be stored while a host app shuts down, before Nexus releases the database)."""
        if self._closed or not receipt.stored or receipt.log_id is None:
            return None
        self._scheduled.append(receipt)
        self._arrived.set()
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._process_scheduled(), name="nexus-webhook-processor")
            self._tasks.add(self._batcher)
            self._batcher.add_done_callback(self._tasks.discard)
        return self._batcher

    async def _process_scheduled(self) -> None:
        """Take the scheduled deliveries a chunk at a time. SQLite: one chunk after the other,
        short transactions, each after the group commit the senders are waiting on (the write
        lock is FIFO, and `yield_to` lets a waiting group commit go first). PostgreSQL: up to
        `parallel` chunks in flight at once, a new one started as soon as one ends, so deliveries
        that trickle in are not held back by a slow chunk."""
        in_flight: set[asyncio.Task[None]] = set()
        while self._scheduled:
            # SQLite: a backlog is taken in larger transactions (up to batch_size). Per delivery
            # they cost less, and with one writer that is what keeps a sustained rate's backlog
            # from growing (docs/benchmarks.md, section 4, finding 13). PostgreSQL runs chunks
            # side by side instead.
            backlog = self.parallel == 1 and len(self._scheduled) > 2 * self.chunk_size
            size = self.batch_size if backlog else self.chunk_size
            chunk = self._scheduled[:size]
            del self._scheduled[: len(chunk)]
            for receipt in chunk:
                meta = receipt.meta
                await self.nexus.events.dispatch(
                    WebhookReceived(
                        channel=receipt.channel,
                        topic=meta.topic if meta else None,
                        delivery_id=meta.delivery_id if meta else None,
                        event_id=meta.event_id if meta else None,
                        webhook_log_id=receipt.log_id or 0,
                    )
                )
            ids = [r.log_id for r in chunk if r.log_id is not None]
            if self.parallel == 1:
                await self._process_chunk(ids)
                continue
            task = asyncio.create_task(self._process_chunk(ids), name="nexus-webhook-chunk")
            in_flight.add(task)
            self._tasks.add(task)
            task.add_done_callback(in_flight.discard)
            task.add_done_callback(self._tasks.discard)
            await self._next_slot(in_flight)

    async def _next_slot(self, in_flight: set[asyncio.Task[None]]) -> None:
        """Return when another chunk may start: a slot is free and deliveries are queued, or
        nothing is in flight any more."""
        while in_flight and not (len(in_flight) < self.parallel and self._scheduled):
            waiters: set[asyncio.Future[Any]] = set(in_flight)
            arrival = None
            if len(in_flight) < self.parallel:
                self._arrived.clear()  # no await since `_scheduled` was read empty
                arrival = asyncio.ensure_future(self._arrived.wait())
                waiters.add(arrival)
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if arrival is not None:
                arrival.cancel()

    async def _process_chunk(self, chunk: list[int]) -> None:
        if self._yield_to is not None:
            await self._yield_to()
        try:
            await self.process_many(chunk, patience=RESOLVE_PATIENCE)
        except Exception as exc:
            # The rows are still "received": process_pending picks them up.
            self._failed("webhook processing failed", exc, webhook_log_ids=chunk)

    async def drain(self) -> None:
        """Wait until every scheduled delivery has been attempted."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def reopen(self) -> None:
        """Undo `aclose`: a server starting the same app again (its lifespan runs once per
        start) schedules the deliveries it stores again."""
        self._closed = False

    async def aclose(self, timeout: float = 5.0) -> None:
        """At shutdown: give scheduled work `timeout` seconds, then cancel it. A cancelled
        attempt rolls back; its rows stay "received" for the next process_pending. Chunks the
        batcher starts meanwhile (PostgreSQL) are waited for, and cancelled, with the rest:
        whoever closes the database next must find nothing still using it."""
        self._closed = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks and (left := deadline - loop.time()) > 0:
            await asyncio.wait(list(self._tasks), timeout=left)
        while self._tasks:
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # -- attempts ---------------------------------------------------------------------------

    async def process(self, log_id: int) -> Attempt:
        """One attempt at one stored delivery."""
        return (await self.process_many([log_id]))[log_id]

    async def process_many(
        self, log_ids: Sequence[int], *, patience: float | None = None
    ) -> dict[int, Attempt]:
        """One attempt at each delivery, all in one transaction. With `patience`, a delivery
        whose resolution (a fetch from its channel) takes longer than that many seconds is
        skipped and stays "received": the pending loop, which waits, takes it later.

        The deliveries are resolved before the transaction (the module's docstring says why).
        In it, the rows every delivery will touch are locked first, in one order
        (`InboundScope`), so batches that run side by side on PostgreSQL do not deadlock each
        other; a deadlock with another writer runs the batch again (`Database.run`). A level for
        a listing whose push is in flight is deferred before anything is applied. The rest are
        applied one after the other with one flush at the commit; if any of them raises, the
        batch is rolled back and run again carefully, each delivery in a savepoint of its own,
        so that one that is deferred or fails rolls back alone."""
        # Outside the semaphore too: it bounds the transactions, and a delivery waiting on its
        # channel's rate limit must not take a slot from other channels' deliveries.
        resolved = await self._resolve_all(log_ids, patience)
        async with self._batches:
            try:
                tried = await self.nexus.db.run(
                    lambda session: self._attempt_all(session, resolved, careful=False)
                )
            except _NeedsCare:
                tried = await self.nexus.db.run(
                    lambda session: self._attempt_all(session, resolved, careful=True)
                )
        attempts = dict.fromkeys(log_ids, Attempt.SKIPPED)
        wake = False
        for row, attempt, outcome in tried:
            attempts[row.id] = attempt
            self._observe(row, attempt, outcome)
            wake = wake or attempt in (Attempt.DEFERRED, Attempt.RETRY)
        for _, _, outcome in tried:
            if outcome is not None:
                await self.nexus.after_changes(outcome.changes)
        if wake:
            self.nexus.notify([WAKEUP_KEY])
        return attempts

    async def _attempt_all(
        self, session: AsyncSession, events_of: dict[int, Resolved], *, careful: bool
    ) -> list[tuple[WebhookLog, Attempt, InboundOutcome | None]]:
        rows = await self._lock(session, list(events_of))
        # A row that was not "received" when it was resolved is never "received" again.
        resolved = [(row, events_of[row.id]) for row in rows if row.id in events_of]
        deliveries = [(row.channel, _delivery_key(row), ev) for row, ev in resolved if isinstance(ev, list)]
        scope: InboundScope | None = await InboundScope.lock(session, deliveries)
        now = utcnow()
        tried: list[tuple[WebhookLog, Attempt, InboundOutcome | None]] = []
        for row, events in resolved:
            busy = (
                scope.level_in_flight(row.channel, events, now)
                if scope and isinstance(events, list)
                else None
            )
            if busy is not None:
                self._defer(row, busy)
                tried.append((row, Attempt.DEFERRED, None))
                continue
            if not careful:
                tried.append((row, Attempt.PROCESSED, await self._apply(session, row, events, scope)))
                continue
            if scope is not None:
                scope.stock.mark()
            attempt, outcome, conflict = await self._attempt(session, row, events, scope)
            tried.append((row, attempt, outcome))
            if attempt is not Attempt.PROCESSED and scope is not None and not scope.stock.rolled_back():
                scope = None  # the rollback expired rows it holds: look them up from here on
            if conflict:
                # The other side of the deadlock waits for rows this transaction holds:
                # commit now rather than meet it again at the next delivery.
                break
        return tried

    async def _resolve_all(self, log_ids: Sequence[int], patience: float | None) -> dict[int, Resolved]:
        """Each delivery of `log_ids` still "received", resolved before any transaction opens
        (the module's docstring says why), side by side: their calls wait on the channel's rate
        limit, not on each other. With `patience`, a delivery not resolved by then is left out
        (and stays "received")."""
        async with self.nexus.db.read() as session:
            rows = (
                await session.execute(
                    select(
                        WebhookLog.id,
                        WebhookLog.channel,
                        WebhookLog.headers,
                        WebhookLog.body,
                        WebhookLog.received_at,
                    ).where(WebhookLog.id.in_(log_ids), WebhookLog.status == WebhookStatus.RECEIVED)
                )
            ).all()
        tasks = {
            row.id: asyncio.ensure_future(
                self._resolve(
                    WebhookRequest(
                        channel=row.channel,
                        headers=dict(row.headers or {}),
                        body=row.body,
                        received_at=row.received_at,
                    )
                )
            )
            for row in rows
        }
        try:
            if tasks:
                await asyncio.wait(tasks.values(), timeout=patience)
        finally:
            # Past the patience, or this attempt was cancelled: a resolution is a read, so the
            # delivery just stays "received" for the pending loop.
            slow = [task for task in tasks.values() if not task.done()]
            for task in slow:
                task.cancel()
            await asyncio.gather(*slow, return_exceptions=True)
        return {log_id: task.result() for log_id, task in tasks.items() if not task.cancelled()}

    async def _resolve(self, request: WebhookRequest) -> Resolved:
        try:
            return await self.nexus.channel(request.channel).driver.resolve_webhook(request)
        except Exception as exc:
            return exc

    async def _apply(
        self,
        session: AsyncSession,
        row: WebhookLog,
        events: list[InboundEvent] | Exception,
        scope: InboundScope | None,
    ) -> InboundOutcome:
        """Apply one delivery with no savepoint of its own: whatever it raises sends the batch
        to the careful path (a deadlock too: there it defers only its delivery), except a
        database that went away, which no path can answer to."""
        started = time.perf_counter()
        try:
            outcome = await self._apply_inbound(session, row, events, scope)
        except Exception as exc:
            if unavailable(exc):
                raise
            raise _NeedsCare from exc
        self._processed(row, outcome, started)
        return outcome

    async def _apply_inbound(
        self,
        session: AsyncSession,
        row: WebhookLog,
        events: list[InboundEvent] | Exception,
        scope: InboundScope | None,
    ) -> InboundOutcome:
        if isinstance(events, Exception):
            raise events
        return await apply_inbound(
            session,
            row.channel,
            events,
            self.nexus.allocator,
            delivery_key=_delivery_key(row),
            semantics=self.nexus.channel(row.channel).semantics,
            scope=scope,
        )

    def _processed(self, row: WebhookLog, outcome: InboundOutcome, started: float) -> None:
        note = f"matched no listing: {'; '.join(outcome.unmatched)}" if outcome.unmatched else None
        self._finish(row, WebhookStatus.PROCESSED, started, note)

    @staticmethod
    def _defer(row: WebhookLog, listing_id: int) -> None:
        row.attempts += 1
        row.next_attempt_at = utcnow() + timedelta(seconds=DEFER_SECONDS)
        row.error = (
            f"listing {listing_id} cannot be judged yet (a push in flight or its report due); deferred"
        )

    async def _attempt(
        self,
        session: AsyncSession,
        row: WebhookLog,
        events: list[InboundEvent] | Exception,
        scope: InboundScope | None,
    ) -> tuple[Attempt, InboundOutcome | None, bool]:
        """One delivery in its own savepoint: what became of it, what it booked, and whether it
        was a lock conflict's victim."""
        started = time.perf_counter()
        try:
            async with session.begin_nested():
                outcome = await self._apply_inbound(session, row, events, scope)
        except WebhookError as exc:
            # Verified, parsed at ingest, refused now (the driver's settings changed?): the same
            # bytes will never parse, so retrying cannot help.
            await session.refresh(row)
            self._finish(row, WebhookStatus.FAILED, started, f"payload refused: {exc}")
            log.warning("stored webhook refused by the driver", webhook_log_id=row.id, error=str(exc))
            return Attempt.FAILED, None, False
        except ListingBusy as busy:
            await session.refresh(row)
            self._defer(row, busy.listing_id)
            return Attempt.DEFERRED, None, False
        except Exception as exc:
            if unavailable(exc):
                # Not this delivery's fault, and the transaction cannot go on: every row of the
                # batch stays "received", with no attempt counted.
                raise
            await session.refresh(row)
            error = f"{type(exc).__name__}: {exc}"
            if lock_conflict(exc):
                # Another transaction (a push round, a stock change) holds the same rows in the
                # other order; only this delivery's savepoint was rolled back. Like ListingBusy.
                row.attempts += 1
                row.next_attempt_at = utcnow() + timedelta(seconds=DEFER_SECONDS)
                row.error = f"lock conflict, deferred: {describe(exc)}"[:ERROR_MAX_LENGTH]
                log.info("webhook attempt deferred by a lock conflict", webhook_log_id=row.id)
                return Attempt.DEFERRED, None, True
            log.warning("webhook attempt failed", webhook_log_id=row.id, error=error)
            return self._retry_or_fail(row, error), None, False
        self._processed(row, outcome, started)
        return Attempt.PROCESSED, outcome, False

    def _observe(self, row: WebhookLog, attempt: Attempt, outcome: InboundOutcome | None) -> None:
        """Count a delivery that reached a final state (`nexus.metrics`), and warn of the listings
        it names that match none, once an hour per listing."""
        if attempt not in (Attempt.PROCESSED, Attempt.FAILED):
            return
        unmatched = outcome.unmatched if outcome is not None else []
        metrics = self.nexus.metrics
        metrics.webhook_finished(
            row.channel, row.topic, attempt.value, row.received_at, unmatched=len(unmatched)
        )
        for listing in unmatched:
            if metrics.unmatched_warnings.first((row.channel, listing)):
                log.warning(
                    "webhook matched no listing (import the channel, or link the SKU); warned once an hour",
                    channel=row.channel,
                    topic=row.topic,
                    listing=listing,
                    webhook_log_id=row.id,
                )

    async def _lock(self, session: AsyncSession, log_ids: Sequence[int]) -> list[WebhookLog]:
        statement = (
            select(WebhookLog)
            .where(WebhookLog.id.in_(log_ids), WebhookLog.status == WebhookStatus.RECEIVED)
            .order_by(WebhookLog.id)
        )
        if not self.nexus.db.is_sqlite:
            statement = statement.with_for_update(skip_locked=True)
        return list((await session.execute(statement)).scalars())

    @staticmethod
    def _finish(row: WebhookLog, status: str, started: float, error: str | None) -> None:
        row.status = status
        row.attempts += 1
        row.next_attempt_at = None
        row.processed_at = utcnow()
        row.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        row.error = error[:ERROR_MAX_LENGTH] if error else None

    def _retry_or_fail(self, row: WebhookLog, error: str) -> Attempt:
        config = self.nexus.settings.worker
        if row.attempts + 1 >= config.max_attempts:
            self._finish(row, WebhookStatus.FAILED, time.perf_counter(), error)
            log.error("webhook delivery failed", webhook_log_id=row.id, attempts=row.attempts, error=error)
            return Attempt.FAILED
        row.attempts += 1
        row.error = error[:ERROR_MAX_LENGTH]
        delay = backoff_delay(row.attempts, base=config.backoff_base, cap=config.backoff_max)
        row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        return Attempt.RETRY

    # -- the pending loop -------------------------------------------------------------------

    async def process_pending(self, limit: int = 100) -> int:
        """Attempt every "received" row that is due (oldest first, at most `limit`).

        Returns how many reached a final state (processed or failed) in this call."""
        _, finished = await self._round(limit)
        return finished

    async def _round(self, limit: int, *, strays_only: bool = False) -> tuple[int, int]:
        """Attempt due "received" rows. `strays_only`: of the rows never attempted, only those
        older than STRAY_AFTER; younger ones are their receiving process's batcher's, and taking
        them too doubled the attempts and held SQLite's writer for a whole round of them
        (docs/benchmarks.md, section 4, finding 13)."""
        now = utcnow()
        never_tried: Any = WebhookLog.next_attempt_at.is_(None)
        if strays_only:
            never_tried = and_(never_tried, WebhookLog.received_at <= now - STRAY_AFTER)
        async with self.nexus.db.read() as session:
            ids = list(
                (
                    await session.execute(
                        select(WebhookLog.id)
                        .where(
                            WebhookLog.status == WebhookStatus.RECEIVED,
                            or_(never_tried, WebhookLog.next_attempt_at <= now),
                        )
                        .order_by(WebhookLog.id)
                        .limit(limit)
                    )
                ).scalars()
            )
        if not ids:
            return 0, 0
        attempts = await self.process_many(ids)
        return len(ids), sum(1 for a in attempts.values() if a in (Attempt.PROCESSED, Attempt.FAILED))

    async def _next_due(self) -> datetime | None:
        async with self.nexus.db.read() as session:
            return (
                await session.execute(
                    select(func.min(WebhookLog.next_attempt_at)).where(
                        WebhookLog.status == WebhookStatus.RECEIVED, WebhookLog.next_attempt_at.is_not(None)
                    )
                )
            ).scalar_one_or_none()

    async def run(self, stop: asyncio.Event) -> None:
        """Process due deliveries until `stop` is set: deferred ones, retries, and rows their
        receiving process did not process (stored before a crash: `STRAY_AFTER`). Sleeps until
        the next one is due (at most worker.poll_interval), or until an attempt defers a row."""
        wake = self.nexus.wakeup(WAKEUP_KEY)
        interval = self.nexus.settings.worker.poll_interval
        while not stop.is_set():
            wake.clear()
            try:
                fetched, _ = await self._round(self.batch_size, strays_only=True)
                if fetched >= self.batch_size:
                    continue  # more may be waiting
                wait = interval
                due = await self._next_due()
                if due is not None:
                    wait = min(interval, max(0.0, (due - utcnow()).total_seconds()))
            except Exception as exc:
                self._failed("webhook processing round failed", exc)
                wait = interval
            await _wait_any(stop, wake, wait)

    def _failed(self, message: str, exc: Exception, **context: object) -> None:
        """A batch or a round failed as a whole: a database that went away is a warning (the
        rows wait, "received", for the next round), anything else a traceback."""
        if unavailable(exc):
            self.nexus.metrics.database_error("webhooks")
            log.warning(message, error=describe(exc), database="unavailable", **context)
        else:
            log.exception(message, **context)


class _NeedsCare(Exception):
    """A delivery of a batch applied without savepoints raised: run the batch with them."""


def _delivery_key(row: WebhookLog) -> str:
    return f"{row.channel}:{row.id}"


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)


__all__ = ["DEFER_SECONDS", "Attempt", "WebhookProcessor"]
