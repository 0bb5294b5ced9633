"""Retention (issue 11 point 7): old webhook logs, push audit rows and resolved dead letters
(with their history) are pruned in small batches; open dead letters, pending deliveries and the
ledger are kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from nexus.config import NexusSettings, RetentionConfig
from nexus.domain.vocabulary import DeadLetterStatus, WebhookStatus
from nexus.runtime import running
from nexus.storage.models import (
    DeadLetter,
    DeadLetterHistory,
    RateLimitLog,
    StockMovement,
    SyncJob,
    WebhookLog,
    utcnow,
)
from nexus.sync.rate_log import count_throttled
from nexus.sync.retention import prune
from tests.sync.sync_kit import Engine


async def count(engine: Engine, model: Any) -> int:
    async with engine.nexus.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def backdated(engine: Engine, days: float, n: int = 3) -> None:
    """`n` of each kind of row, `days` old: webhook logs (processed, plus one still received),
    push audit rows, resolved dead letters with history, open dead letters, ledger movements."""
    at = utcnow() - timedelta(days=days)
    async with engine.nexus.db.transaction() as session:
        for i in range(n):
            session.add(
                WebhookLog(
                    channel="m", status=WebhookStatus.PROCESSED, http_status=200, body=b"{}", received_at=at
                )
            )
            session.add(SyncJob(channel="m", count=1, status="ok", duration_ms=1.0, created_at=at))
            for status in (DeadLetterStatus.RESOLVED, DeadLetterStatus.FAILED):
                letter = DeadLetter(
                    channel="m",
                    job_kind="push_inventory",
                    last_exception="404",
                    attempts=1,
                    status=status,
                    failed_at=at,
                    resolved_at=at if status == DeadLetterStatus.RESOLVED else None,
                )
                session.add(letter)
                await session.flush()
                session.add(DeadLetterHistory(dead_letter_id=letter.id, status=status, actor="t", at=at))
            session.add(
                StockMovement(
                    sku="S",
                    delta=-1,
                    on_hand_after=0,
                    reason="sale",
                    idempotency_key=f"k-{days}-{i}",
                    created_at=at,
                )
            )
        session.add(
            WebhookLog(
                channel="m", status=WebhookStatus.RECEIVED, http_status=200, body=b"{}", received_at=at
            )
        )


async def test_old_rows_are_pruned_in_batches_and_the_ledger_is_kept(make_engine: Callable[..., Any]) -> None:
    engine: Engine = await make_engine()
    await backdated(engine, days=45)
    await backdated(engine, days=5)
    old_minute = utcnow() - timedelta(days=45)
    await count_throttled(engine.nexus.db, "m", now=old_minute)
    await count_throttled(engine.nexus.db, "m")
    config = RetentionConfig(batch_size=2)
    pruned = await prune(engine.nexus.db, config)
    assert (pruned.webhook_logs, pruned.push_audit, pruned.dead_letters) == (3, 3, 3)
    assert pruned.rate_limit_logs == 1 and await count(engine, RateLimitLog) == 1  # the recent minute
    assert await count(engine, WebhookLog) == 3 + 2  # the recent ones and both still `received`
    assert await count(engine, SyncJob) == 3
    async with engine.nexus.db.read() as session:
        statuses = (await session.execute(select(DeadLetter.status, DeadLetter.failed_at))).all()
        orphans = await session.scalar(
            select(func.count())
            .select_from(DeadLetterHistory)
            .where(DeadLetterHistory.dead_letter_id.not_in(select(DeadLetter.id)))
        )
    assert sorted(status for status, _ in statuses).count(DeadLetterStatus.RESOLVED) == 3  # the recent
    assert sum(1 for status, _ in statuses if status == DeadLetterStatus.FAILED) == 6  # open: kept
    assert orphans == 0 and await count(engine, DeadLetterHistory) == 9
    assert await count(engine, StockMovement) == 6  # never pruned
    assert (await prune(engine.nexus.db, config)).total == 0

    # Ages are configurable; 0 keeps for ever.
    pruned = await prune(
        engine.nexus.db, RetentionConfig(webhook_logs_days=1, push_audit_days=0, dead_letters_days=2)
    )
    assert (pruned.webhook_logs, pruned.push_audit, pruned.dead_letters) == (3, 0, 3)
    assert await count(engine, StockMovement) == 6


def test_retention_is_configured_in_its_own_table() -> None:
    settings = NexusSettings(retention={"webhook_logs_days": 7, "interval": 60})
    assert settings.retention.webhook_logs_days == 7 and settings.retention.push_audit_days == 30
    assert settings.retention.dead_letters_days == 30


async def test_the_running_service_prunes(make_engine: Callable[..., Any]) -> None:
    engine: Engine = await make_engine(retention={"interval": 0.05})
    await backdated(engine, days=45)
    async with running(engine.nexus, web=False):
        for _ in range(100):
            if await count(engine, SyncJob) == 0:
                break
            await asyncio.sleep(0.05)
    assert await count(engine, SyncJob) == 0
    assert await count(engine, StockMovement) == 3
