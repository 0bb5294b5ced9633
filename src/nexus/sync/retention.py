"""Retention: the running service prunes operational history older than `[retention]` says.

    stored webhook deliveries     by received_at; never one still `received` (waiting to be processed)
    push audit rows (SyncJob)     by created_at
    per-minute 429 counts         by minute, with the push audit's age (`push_audit_days`)
    resolved dead letters         by resolved_at, with their status history; open ones are kept

The stock ledger (`nexus_stock_movements`) is never pruned: it is the record of every unit.
Rows go in small batches (`retention.batch_size` per statement, each its own short transaction)
so a prune never holds the SQLite writer, or PostgreSQL row locks, for long. `Retention.run` is
started next to the workers by `nexus.runtime.running`; a round every `retention.interval`
seconds. Several processes may prune at once: deleting a row twice deletes it once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import ColumnElement, delete, select

from nexus.config import RetentionConfig
from nexus.domain.vocabulary import DeadLetterStatus, WebhookStatus
from nexus.storage.database import Database
from nexus.storage.models import DeadLetter, DeadLetterHistory, RateLimitLog, SyncJob, WebhookLog, utcnow

if TYPE_CHECKING:
    from nexus.engine import Nexus

log = structlog.get_logger("nexus.retention")


@dataclass(frozen=True, slots=True)
class Pruned:
    webhook_logs: int = 0
    push_audit: int = 0
    dead_letters: int = 0
    rate_limit_logs: int = 0

    @property
    def total(self) -> int:
        return self.webhook_logs + self.push_audit + self.dead_letters + self.rate_limit_logs


async def prune(db: Database, config: RetentionConfig, *, now: datetime | None = None) -> Pruned:
    """One pruning round: every row past its age, in batches of `config.batch_size`."""
    now = now or utcnow()
    webhooks = jobs = letters = minutes = 0
    if config.webhook_logs_days > 0:
        webhooks = await _prune(
            db,
            WebhookLog,
            [
                WebhookLog.received_at < now - timedelta(days=config.webhook_logs_days),
                WebhookLog.status != WebhookStatus.RECEIVED,
            ],
            config.batch_size,
        )
    if config.push_audit_days > 0:
        jobs = await _prune(
            db,
            SyncJob,
            [SyncJob.created_at < now - timedelta(days=config.push_audit_days)],
            config.batch_size,
        )
        minutes = await _prune(
            db,
            RateLimitLog,
            [RateLimitLog.minute < now - timedelta(days=config.push_audit_days)],
            config.batch_size,
        )
    if config.dead_letters_days > 0:
        letters = await _prune(
            db,
            DeadLetter,
            [
                DeadLetter.status == DeadLetterStatus.RESOLVED,
                DeadLetter.resolved_at < now - timedelta(days=config.dead_letters_days),
            ],
            config.batch_size,
            history=True,
        )
    return Pruned(webhooks, jobs, letters, minutes)


async def _prune(
    db: Database,
    model: type[WebhookLog] | type[SyncJob] | type[DeadLetter] | type[RateLimitLog],
    conditions: list[ColumnElement[bool]],
    batch_size: int,
    *,
    history: bool = False,
) -> int:
    deleted = 0
    while True:
        # Looked up outside a write transaction: a round with nothing to prune never takes the writer.
        async with db.read() as session:
            statement: Any = select(model.id).where(*conditions).order_by(model.id).limit(batch_size)
            ids = list((await session.execute(statement)).scalars())
        if not ids:
            return deleted
        async with db.transaction() as session:
            if history:  # the foreign key cascades too; said here so no backend setting matters
                await session.execute(
                    delete(DeadLetterHistory).where(DeadLetterHistory.dead_letter_id.in_(ids))
                )
            await session.execute(
                delete(model)
                .where(model.id.in_(ids), *conditions)
                .execution_options(synchronize_session=False)
            )
        deleted += len(ids)
        if len(ids) < batch_size:
            return deleted
        await asyncio.sleep(0)  # let other writers in between batches


class Retention:
    """The pruning loop of a running service."""

    def __init__(self, nexus: Nexus) -> None:
        self.nexus = nexus

    async def run(self, stop: asyncio.Event) -> None:
        config = self.nexus.settings.retention
        while not stop.is_set():
            try:
                pruned = await prune(self.nexus.db, config)
                if pruned.total:
                    log.info(
                        "pruned old rows",
                        webhook_logs=pruned.webhook_logs,
                        push_audit=pruned.push_audit,
                        dead_letters=pruned.dead_letters,
                        rate_limit_logs=pruned.rate_limit_logs,
                    )
            except Exception as exc:
                log.warning(
                    "pruning old rows failed; trying again next round", error=f"{type(exc).__name__}: {exc}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=config.interval)
