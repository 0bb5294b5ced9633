"""The receiver and processor on PostgreSQL: ON CONFLICT over both unique constraints, SKIP LOCKED."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from nexus.storage.models import utcnow
from nexus.webhooks.processor import Attempt, WebhookProcessor
from tests.webhooks.webhook_testkit import CHANNEL, Hub, build_hub, channels, delivery, level, sale

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_hub(make_nexus: Callable[..., Any], postgres_url: str) -> Hub:
    return await build_hub(make_nexus, channels=channels(), database_url=postgres_url)


@pytest.fixture
async def client(pg_hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=pg_hub.app), base_url="http://t") as http:
        yield http


async def test_duplicates_and_forgeries_on_postgres(pg_hub: Hub, client: httpx.AsyncClient) -> None:
    hub = pg_hub
    await hub.seed()
    forged = delivery(sale(quantity=5), delivery_id="D1", event_id="E1", secret="attacker")
    real = delivery(sale(quantity=1), delivery_id="D1", event_id="E1")
    same_event = delivery(sale(quantity=1), delivery_id="D2", event_id="E1")

    codes = [
        (await client.post(hub.path, content=d.body, headers=d.headers))
        for d in (forged, real, real, same_event)
    ]
    await hub.processor.drain()

    assert [r.status_code for r in codes] == [401, 200, 200, 200]
    assert [r.json()["status"] for r in codes[1:]] == ["accepted", "duplicate", "duplicate"]
    rows = await hub.logs()
    assert [(r.status, r.delivery_id) for r in rows] == [("rejected", None), ("processed", "D1")]
    assert (await hub.item()).on_hand == 9


async def test_concurrent_deliveries_on_postgres(pg_hub: Hub, client: httpx.AsyncClient) -> None:
    hub = pg_hub
    await hub.seed(on_hand=100)
    deliveries = [delivery(sale(quantity=1, order_id=f"O{i}"), delivery_id=f"D{i % 20}") for i in range(40)]
    responses = await asyncio.gather(
        *(client.post(hub.path, content=d.body, headers=d.headers) for d in deliveries)
    )
    await hub.processor.drain()

    assert all(r.status_code == 200 for r in responses)
    assert sum(r.json()["status"] == "accepted" for r in responses) == 20
    rows = await hub.logs()
    assert len(rows) == 20 and all(r.status == "processed" for r in rows)
    assert (await hub.item()).on_hand == 80


async def test_concurrent_attempts_and_deferral_on_postgres(pg_hub: Hub, client: httpx.AsyncClient) -> None:
    hub = pg_hub
    await hub.seed()
    await hub.lease(CHANNEL, "worker-1", utcnow() + timedelta(seconds=60))
    d = delivery(level(quantity=6), delivery_id="D1")
    await client.post(hub.path, content=d.body, headers=d.headers)
    await hub.processor.drain()
    [row] = await hub.logs()
    assert (row.status, row.attempts) == ("received", 1)

    await hub.lease(CHANNEL, None, None)
    attempts = await asyncio.gather(*(WebhookProcessor(hub.nexus).process(row.id) for _ in range(4)))
    assert attempts.count(Attempt.PROCESSED) == 1
    assert set(attempts) <= {Attempt.PROCESSED, Attempt.SKIPPED}
    assert (await hub.item()).on_hand == 6
