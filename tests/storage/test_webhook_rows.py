"""The webhook group writer's rows read back through the model exactly as given, on SQLite (a
plain prepared INSERT per row in the writer thread) and PostgreSQL (SQLAlchemy's insertmanyvalues),
including the model's defaults for keys a row leaves out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from nexus.domain.vocabulary import WebhookStatus
from nexus.storage.database import Database
from nexus.storage.models import WebhookLog
from nexus.webhooks.receiver import GroupWriter


async def test_rows_read_back_as_written_and_duplicates_get_no_row(db: Database) -> None:
    received = datetime(2026, 12, 4, 11, 30, 5, 123456, tzinfo=UTC)
    full = {
        "channel": "shop",
        "topic": "inventory_levels/update",
        "delivery_id": "D-1",
        "event_id": "E-1",
        "verified": True,
        "status": WebhookStatus.RECEIVED,
        "http_status": 200,
        "headers": {"x-shopify-topic": "inventory_levels/update", "x-shopify-hmac-sha256": "***"},
        "body": b'{"available": 3}',
        "attempts": 0,
        "next_attempt_at": None,
        # an aware time in another zone is stored as UTC
        "received_at": received.astimezone(timezone(timedelta(hours=2))),
        "error": None,
    }
    sparse = {"channel": "shop", "delivery_id": "D-2", "status": "rejected", "http_status": 401, "body": b"x"}
    writer = GroupWriter(db)
    ids = await asyncio.gather(
        writer.insert(full), writer.insert(sparse), writer.insert({**full, "event_id": "E-other"})
    )
    assert ids[0] is not None and ids[1] is not None and ids[2] is None  # the same delivery id

    async with db.read() as session:
        rows = {row.delivery_id: row for row in await session.scalars(select(WebhookLog))}
    assert set(rows) == {"D-1", "D-2"}
    first, second = rows["D-1"], rows["D-2"]
    assert (first.id, first.topic, first.event_id, first.verified, first.status) == (
        ids[0],
        "inventory_levels/update",
        "E-1",
        True,
        "received",
    )
    assert first.headers == full["headers"] and first.body == full["body"]
    assert first.received_at == received and first.received_at.tzinfo is not None
    assert (first.attempts, first.next_attempt_at, first.error) == (0, None, None)
    # the model's defaults for what the sparse row left out
    assert second.id == ids[1]
    assert (second.verified, second.attempts, second.headers, second.topic) == (False, 0, {}, None)
    assert abs(second.received_at - datetime.now(UTC)) < timedelta(minutes=1)

    async with db.read() as session:  # stored times compare in SQL as the model's own do
        later = await session.scalars(select(WebhookLog.delivery_id).where(WebhookLog.received_at > received))
        assert list(later) == ["D-2"]
