"""Processing stored webhook deliveries: always from the stored row, never from the request.

    processor = WebhookProcessor(nexus)
    processor.schedule(receipt)          # the route: WebhookReceived, then one attempt, after the answer
    await processor.process(log_id)      # one attempt at one delivery
    await processor.process_pending()    # every due "received" row: crash recovery, deferred deliveries
    await processor.run(stop)            # process_pending in a loop until `stop` is set
    await processor.drain()              # wait for the scheduled tasks (tests); aclose() bounds it

One attempt runs in one transaction: lock the row (only while its status is "received"), run
driver.parse_webhook on the stored body, apply_inbound through the one write path, mark the row
"processed". Stock events fire after the commit (`nexus.after_changes`).

    ListingBusy           a push to the listing is in flight: roll back, retry in 0.2 s (attempts + 1)
    WebhookPayloadError   the stored bytes will never parse: "failed" at once
    anything else         retry with the workers' backoff; "failed" after worker.max_attempts

Duplicates never reach this module twice: the receiver stores one row per delivery id and event
id, and an attempt only works on a row it has locked while it is still "received" (PostgreSQL:
FOR UPDATE SKIP LOCKED; SQLite: one writer at a time).

`WebhookReceived` is dispatched once per stored delivery by the scheduled task, before its first
attempt. A delivery stored by a process that then crashed is processed by `process_pending`
without that event (at most once, like every in-process event).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.drivers.contract import WebhookRequest
from nexus.errors import WebhookError
from nexus.events import WebhookReceived
from nexus.storage.models import WebhookLog, utcnow
from nexus.sync.backoff import backoff_delay
from nexus.webhooks.inbound import InboundOutcome, ListingBusy, apply_inbound
from nexus.webhooks.receiver import ERROR_MAX_LENGTH, FAILED, PROCESSED, RECEIVED, Receipt

if TYPE_CHECKING:
    from nexus.engine import Nexus

log = structlog.get_logger("nexus.webhooks")

DEFER_SECONDS = 0.2  # a listing's push in flight usually answers well within this
WAKEUP_KEY = "nexus:webhooks"  # Nexus.wakeup key (':' never appears in a channel name)


class Attempt(enum.Enum):
    PROCESSED = "processed"
    FAILED = "failed"  # final: the row will not be tried again
    DEFERRED = "deferred"  # ListingBusy: due again in DEFER_SECONDS
    RETRY = "retry"  # an error: due again after a backoff
    SKIPPED = "skipped"  # not "received" any more, or another processor holds it


class WebhookProcessor:
    def __init__(self, nexus: Nexus, *, batch_size: int = 100) -> None:
        self.nexus = nexus
        self.batch_size = batch_size
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the route's background task --------------------------------------------------------

    def schedule(self, receipt: Receipt) -> asyncio.Task[None] | None:
        """Process a just-stored delivery in a task of its own, so the answer never waits for it."""
        if not receipt.stored or receipt.log_id is None:
            return None
        task = asyncio.create_task(self._after_receipt(receipt), name=f"nexus-webhook-{receipt.log_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _after_receipt(self, receipt: Receipt) -> None:
        assert receipt.log_id is not None
        meta = receipt.meta
        await self.nexus.events.dispatch(
            WebhookReceived(
                channel=receipt.channel,
                topic=meta.topic if meta else None,
                delivery_id=meta.delivery_id if meta else None,
                event_id=meta.event_id if meta else None,
                webhook_log_id=receipt.log_id,
            )
        )
        try:
            await self.process(receipt.log_id)
        except Exception:
            # The row is still "received": process_pending picks it up.
            log.exception("webhook processing failed", webhook_log_id=receipt.log_id)

    async def drain(self) -> None:
        """Wait until every scheduled task has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, timeout: float = 5.0) -> None:
        """At shutdown: give scheduled tasks `timeout` seconds, then cancel them. A cancelled
        attempt rolls back; its row stays "received" for the next process_pending."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- one attempt ------------------------------------------------------------------------

    async def process(self, log_id: int) -> Attempt:
        """One attempt at one stored delivery."""
        try:
            attempt, outcome = await self._attempt(log_id)
        except ListingBusy as busy:
            return await self._defer(log_id, f"listing {busy} has a push in flight; deferred")
        except Exception as exc:
            log.warning("webhook attempt failed", webhook_log_id=log_id, error=f"{type(exc).__name__}: {exc}")
            return await self._retry_or_fail(log_id, f"{type(exc).__name__}: {exc}")
        if outcome is not None:
            await self.nexus.after_changes(outcome.changes)
        return attempt

    async def _attempt(self, log_id: int) -> tuple[Attempt, InboundOutcome | None]:
        async with self.nexus.db.transaction() as session:
            row = await self._lock(session, log_id)
            if row is None:
                return Attempt.SKIPPED, None
            started = time.perf_counter()
            driver = self.nexus.channel(row.channel).driver
            request = WebhookRequest(
                channel=row.channel,
                headers=dict(row.headers or {}),
                body=row.body,
                received_at=row.received_at,
            )
            try:
                events = driver.parse_webhook(request)
            except WebhookError as exc:
                # Verified, parsed at ingest, refused now (the driver's settings changed?): the same
                # bytes will never parse, so retrying cannot help.
                self._finish(row, FAILED, started, f"payload refused: {exc}")
                log.warning("stored webhook refused by the driver", webhook_log_id=log_id, error=str(exc))
                return Attempt.FAILED, None
            outcome = await apply_inbound(
                session, row.channel, events, self.nexus.allocator, delivery_key=f"{row.channel}:{row.id}"
            )
            note = f"matched no listing: {'; '.join(outcome.unmatched)}" if outcome.unmatched else None
            self._finish(row, PROCESSED, started, note)
            return Attempt.PROCESSED, outcome

    async def _lock(self, session: AsyncSession, log_id: int) -> WebhookLog | None:
        statement = select(WebhookLog).where(WebhookLog.id == log_id, WebhookLog.status == RECEIVED)
        if not self.nexus.db.is_sqlite:
            statement = statement.with_for_update(skip_locked=True)
        return (await session.execute(statement)).scalar_one_or_none()

    @staticmethod
    def _finish(row: WebhookLog, status: str, started: float, error: str | None) -> None:
        row.status = status
        row.attempts += 1
        row.next_attempt_at = None
        row.processed_at = utcnow()
        row.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        row.error = error[:ERROR_MAX_LENGTH] if error else None

    async def _defer(self, log_id: int, reason: str) -> Attempt:
        async with self.nexus.db.transaction() as session:
            result = await session.execute(
                update(WebhookLog)
                .where(WebhookLog.id == log_id, WebhookLog.status == RECEIVED)
                .values(
                    attempts=WebhookLog.attempts + 1,
                    next_attempt_at=utcnow() + timedelta(seconds=DEFER_SECONDS),
                    error=reason,
                )
                .returning(WebhookLog.id)
            )
            deferred = result.scalar_one_or_none() is not None
        if not deferred:
            return Attempt.SKIPPED
        self.nexus.wakeup(WAKEUP_KEY).set()
        return Attempt.DEFERRED

    async def _retry_or_fail(self, log_id: int, error: str) -> Attempt:
        config = self.nexus.settings.worker
        async with self.nexus.db.transaction() as session:
            row = await self._lock(session, log_id)
            if row is None:
                return Attempt.SKIPPED
            if row.attempts + 1 >= config.max_attempts:
                self._finish(row, FAILED, time.perf_counter(), error)
                log.error(
                    "webhook delivery failed", webhook_log_id=log_id, attempts=row.attempts, error=error
                )
                return Attempt.FAILED
            row.attempts += 1
            row.error = error[:ERROR_MAX_LENGTH]
            delay = backoff_delay(row.attempts, base=config.backoff_base, cap=config.backoff_max)
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        self.nexus.wakeup(WAKEUP_KEY).set()
        return Attempt.RETRY

    # -- the pending loop -------------------------------------------------------------------

    async def process_pending(self, limit: int = 100) -> int:
        """Attempt every "received" row that is due (oldest first, at most `limit`).

        Returns how many reached a final state (processed or failed) in this call."""
        _, finished = await self._round(limit)
        return finished

    async def _round(self, limit: int) -> tuple[int, int]:
        now = utcnow()
        async with self.nexus.db.read() as session:
            ids = list(
                (
                    await session.execute(
                        select(WebhookLog.id)
                        .where(
                            WebhookLog.status == RECEIVED,
                            or_(WebhookLog.next_attempt_at.is_(None), WebhookLog.next_attempt_at <= now),
                        )
                        .order_by(WebhookLog.id)
                        .limit(limit)
                    )
                ).scalars()
            )
        finished = 0
        for log_id in ids:
            if await self.process(log_id) in (Attempt.PROCESSED, Attempt.FAILED):
                finished += 1
        return len(ids), finished

    async def _next_due(self) -> datetime | None:
        async with self.nexus.db.read() as session:
            return (
                await session.execute(
                    select(func.min(WebhookLog.next_attempt_at)).where(
                        WebhookLog.status == RECEIVED, WebhookLog.next_attempt_at.is_not(None)
                    )
                )
            ).scalar_one_or_none()

    async def run(self, stop: asyncio.Event) -> None:
        """Process due deliveries until `stop` is set: rows stored before a crash, deferred ones,
        retries. Sleeps until the next one is due (at most worker.poll_interval), or until an
        attempt in this process defers a row."""
        wake = self.nexus.wakeup(WAKEUP_KEY)
        interval = self.nexus.settings.worker.poll_interval
        while not stop.is_set():
            wake.clear()
            try:
                fetched, _ = await self._round(self.batch_size)
                if fetched >= self.batch_size:
                    continue  # more may be waiting
                wait = interval
                due = await self._next_due()
                if due is not None:
                    wait = min(interval, max(0.0, (due - utcnow()).total_seconds()))
            except Exception:
                log.exception("webhook processing round failed")
                wait = interval
            await _wait_any(stop, wake, wait)


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
