"""A batch of deliveries in one transaction: the rows it needs are locked up front, in one order;
it is applied without savepoints unless one delivery raises, and then carefully, one savepoint
each; batches run side by side on PostgreSQL without deadlocking each other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from nexus.drivers.contract import InboundEvent, WebhookRequest
from nexus.storage.models import Item, StockMovement, utcnow
from nexus.webhooks.processor import Attempt, WebhookProcessor
from nexus.webhooks.receiver import WebhookReceiver
from tests.webhooks.webhook_testkit import CHANNEL, OTHER, Hub, build_hub, channels, delivery, level, sale

SKUS = 6


async def seed(hub: Hub, count: int = SKUS) -> None:
    for i in range(count):
        await hub.seed(sku=f"SKU-{i}", remote_ids={CHANNEL: f"R{i}", OTHER: f"X{i}"})


async def store(hub: Hub, payload: dict[str, Any], delivery_id: str) -> int:
    d = delivery(payload, delivery_id=delivery_id)
    receipt = await WebhookReceiver(hub.nexus).receive(CHANNEL, d.headers, d.body)
    assert receipt.stored and receipt.log_id is not None
    return receipt.log_id


async def on_hand(hub: Hub) -> dict[str, int]:
    async with hub.nexus.db.read() as session:
        return {item.sku: item.on_hand for item in (await session.execute(select(Item))).scalars()}


async def sale_movements(hub: Hub) -> int:
    async with hub.nexus.db.read() as session:
        rows = await session.execute(select(StockMovement).where(StockMovement.reason == "sale"))
        return len(rows.scalars().all())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return sqlite_url


@pytest.fixture
async def any_hub(make_nexus: Callable[..., Any], database_url: str) -> Hub:
    return await build_hub(make_nexus, channels=channels(), database_url=database_url)


async def test_a_batch_costs_a_few_statements_not_a_few_per_delivery(any_hub: Hub) -> None:
    """16 sales in one batch: the lookups are one statement each for the whole batch, and the
    writes are flushed once (what made processing the bound of propagation, docs/benchmarks.md)."""
    hub = any_hub
    await seed(hub, count=16)
    ids = [await store(hub, sale(remote_id=f"R{i}", order_id=f"O{i}"), f"D{i}") for i in range(16)]
    statements: list[str] = []
    engine = hub.nexus.db.engine.sync_engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        attempts = await WebhookProcessor(hub.nexus).process_many(ids)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert set(attempts.values()) == {Attempt.PROCESSED}
    assert set((await on_hand(hub)).values()) == {9}
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # the rows to resolve (read before the transaction: resolving may call the channel), the
    # rows locked, listing names, listings, items, ledger keys: nothing per delivery
    assert len(selects) <= 6, selects
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]


async def test_one_delivery_that_raises_is_retried_alone_the_rest_of_its_batch_applies(any_hub: Hub) -> None:
    hub = any_hub
    await seed(hub)
    ids = [await store(hub, sale(remote_id=f"R{i}", order_id=f"O{i}"), f"D{i}") for i in range(SKUS)]
    driver = hub.driver()
    resolve = driver.resolve_webhook

    async def fails_for_order_3(request: WebhookRequest) -> list[InboundEvent]:
        if b'"O3"' in request.body:
            raise RuntimeError("driver bug for this one delivery")
        return await resolve(request)

    driver.resolve_webhook = fails_for_order_3  # type: ignore[method-assign]
    attempts = await WebhookProcessor(hub.nexus).process_many(ids)

    assert attempts[ids[3]] is Attempt.RETRY
    assert [a for i, a in attempts.items() if i != ids[3]] == [Attempt.PROCESSED] * (SKUS - 1)
    levels = await on_hand(hub)
    assert levels["SKU-3"] == 10 and all(levels[f"SKU-{i}"] == 9 for i in range(SKUS) if i != 3)
    [failed] = [row for row in await hub.logs() if row.id == ids[3]]
    assert failed.status == "received" and "driver bug for this one delivery" in (failed.error or "")


async def test_a_level_for_a_listing_in_flight_is_deferred_and_the_batch_goes_on(any_hub: Hub) -> None:
    hub = any_hub
    await seed(hub)
    await hub.lease(CHANNEL, "worker-1", utcnow() + timedelta(seconds=60), sku="SKU-0")
    busy = await store(hub, level(remote_id="R0", quantity=7), "L0")
    sold = [await store(hub, sale(remote_id=f"R{i}", order_id=f"O{i}"), f"D{i}") for i in range(1, SKUS)]

    attempts = await WebhookProcessor(hub.nexus).process_many([busy, *sold])

    assert attempts[busy] is Attempt.DEFERRED
    assert [attempts[i] for i in sold] == [Attempt.PROCESSED] * len(sold)
    [row] = [row for row in await hub.logs() if row.id == busy]
    assert (
        row.status == "received" and row.next_attempt_at is not None and "push in flight" in (row.error or "")
    )
    assert (await on_hand(hub))["SKU-0"] == 10


async def test_the_same_order_twice_in_one_batch_is_booked_once(any_hub: Hub) -> None:
    hub = any_hub
    await seed(hub)
    first = await store(hub, sale(remote_id="R1", order_id="O1", quantity=2), "D1")
    again = await store(hub, sale(remote_id="R1", order_id="O1", quantity=2), "D2")  # redelivered

    attempts = await WebhookProcessor(hub.nexus).process_many([first, again])

    assert attempts == {first: Attempt.PROCESSED, again: Attempt.PROCESSED}
    assert (await on_hand(hub))["SKU-1"] == 8
    assert await sale_movements(hub) == 1


@pytest.mark.postgres
async def test_batches_side_by_side_on_postgres_never_deadlock(
    make_nexus: Callable[..., Any], postgres_url: str
) -> None:
    """Each batch names the same SKUs in the opposite order of the next: locked in delivery order
    they would deadlock (PostgreSQL then aborts one, a deferral); locked in one order, none does."""
    hub = await build_hub(make_nexus, channels=channels(), database_url=postgres_url)
    await seed(hub)
    processor = WebhookProcessor(hub.nexus)
    assert processor.parallel == 4
    batches: list[list[int]] = []
    for b in range(8):
        order = list(range(SKUS)) if b % 2 == 0 else list(reversed(range(SKUS)))
        batches.append(
            [await store(hub, sale(remote_id=f"R{i}", order_id=f"B{b}-O{i}"), f"B{b}-D{i}") for i in order]
        )

    results = await asyncio.gather(*(processor.process_many(batch) for batch in batches))

    assert [set(r.values()) for r in results] == [{Attempt.PROCESSED}] * len(batches)
    assert set((await on_hand(hub)).values()) == {10 - len(batches)}
    assert not [row for row in await hub.logs() if row.error]
