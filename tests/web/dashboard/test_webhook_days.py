"""The webhook log's 30-day view counts deliveries per UTC day and status (nexus.webhooks.log)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from nexus.domain.vocabulary import WebhookStatus
from nexus.engine import Nexus
from nexus.storage.models import WebhookLog
from nexus.webhooks.log import webhook_days

NOW = datetime(2026, 12, 3, 8, 30, tzinfo=UTC)


async def test_deliveries_are_counted_per_day_and_status(make_nexus: Callable[..., Any]) -> None:
    await check_days(await make_nexus())


@pytest.mark.postgres
async def test_deliveries_are_counted_per_utc_day_on_postgresql(
    make_nexus: Callable[..., Any], postgres_url: str
) -> None:
    await check_days(await make_nexus(database_url=postgres_url))


async def check_days(nexus: Nexus) -> None:
    received = [
        ("shop", WebhookStatus.PROCESSED, NOW - timedelta(minutes=5)),
        ("shop", WebhookStatus.PROCESSED, NOW.replace(hour=0, minute=0, second=1)),  # today, just
        ("shop", WebhookStatus.REJECTED, NOW - timedelta(days=1)),
        ("etsy", WebhookStatus.FAILED, NOW - timedelta(days=1)),
        ("shop", WebhookStatus.PROCESSED, NOW - timedelta(days=30)),  # before the window
    ]
    async with nexus.db.transaction() as session:
        for channel, status, at in received:
            session.add(
                WebhookLog(
                    channel=channel,
                    status=str(status),
                    http_status=200,
                    verified=True,
                    body=b"{}",
                    headers={},
                    received_at=at,
                )
            )

    days = await webhook_days(nexus.db, days=30, now=NOW)

    assert len(days) == 30
    assert days[0].day == date(2026, 11, 4) and days[-1].day == date(2026, 12, 3)
    assert days[-1].counts == {"processed": 2}
    assert days[-2].counts == {"rejected": 1, "failed": 1}
    assert sum(day.total for day in days) == 4
    shop = await webhook_days(nexus.db, days=30, channel="shop", now=NOW)
    assert shop[-2].counts == {"rejected": 1}
