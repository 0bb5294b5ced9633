"""The write path and work claiming on PostgreSQL: row locks, ON CONFLICT idempotency,
SKIP LOCKED claims shared by concurrent workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from nexus.domain.catalog import ImportReport, ItemSpec, add_items, link_variants
from nexus.domain.inbound import apply_inbound
from nexus.drivers.contract import ChannelContext, DriverCapabilities, ListingRef, SaleEvent
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, NexusVariant, PushResult
from nexus.engine import Nexus
from nexus.ratelimit.config import RateLimitConfig
from nexus.storage.models import ChannelMapping, Item, StockMovement

pytestmark = pytest.mark.postgres

SKUS = [f"S{i}" for i in range(5)]


class SetDriver:
    name = "set"
    capabilities = DriverCapabilities(max_batch_size=2, compare_and_set=True)

    def __init__(self, context: ChannelContext) -> None:
        self.levels: dict[str, int] = {}

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        results = []
        for update in updates:
            current = self.levels.get(update.remote_id)
            if update.change_from is not None and current is not None and current != update.change_from:
                results.append(PushResult.stale(update.listing_id, current))
            else:
                self.levels[update.remote_id] = update.quantity
                results.append(PushResult.ok(update.listing_id, update.quantity))
        return results

    def rate_limit_config(self) -> RateLimitConfig:
        return RateLimitConfig(1_000, 1_000)


async def engine_on(postgres_url: str, make_nexus: Callable[..., Any]) -> tuple[Nexus, dict[str, SetDriver]]:
    nexus: Nexus = await make_nexus(
        database_url=postgres_url, channels={"m": {"driver": "set"}, "n": {"driver": "set"}}
    )
    drivers: dict[str, SetDriver] = {}

    def factory(context: ChannelContext) -> SetDriver:
        drivers[context.name] = SetDriver(context)
        return drivers[context.name]

    nexus.extend("set", factory)  # type: ignore[arg-type]
    async with nexus.db.transaction() as session:
        await add_items(session, [ItemSpec(sku, on_hand=10) for sku in SKUS])
        await session.flush()
        for channel in ("m", "n"):
            products = [
                NexusProduct(f"p-{sku}", sku, (NexusVariant(f"{channel}-{sku}", sku, "", quantity=10),))
                for sku in SKUS
            ]
            await link_variants(session, channel, products, nexus.allocator, ImportReport(channel))
    for channel in ("m", "n"):
        nexus.channel(channel)
        drivers[channel].levels = {f"{channel}-{sku}": 10 for sku in SKUS}
    return nexus, drivers


async def listings(nexus: Nexus, channel: str) -> dict[str, ChannelMapping]:
    async with nexus.db.read() as session:
        rows = (
            await session.execute(select(ChannelMapping).where(ChannelMapping.channel == channel))
        ).scalars()
        return {row.sku: row for row in rows}


async def test_changes_sales_and_pushes_on_postgresql(
    postgres_url: str, make_nexus: Callable[..., Any]
) -> None:
    nexus, drivers = await engine_on(postgres_url, make_nexus)

    first = await nexus.product("S0").adjust(-3, reason="sale", idempotency_key="order-1")
    again = await nexus.product("S0").adjust(-3, reason="sale", idempotency_key="order-1")
    assert (first.applied, again.applied) == (True, False)
    async with nexus.db.transaction() as session:
        sale = SaleEvent(ListingRef(remote_id="m-S1"), quantity=2, order_id="77", line_id="1")
        outcome = await apply_inbound(
            session,
            "m",
            [sale, sale],
            nexus.allocator,
            delivery_key="d-1",
            semantics=nexus.channel("m").semantics,
        )
    assert (len(outcome.changes), outcome.duplicates) == (1, 1)

    async with nexus.db.read() as session:
        on_hand = dict((await session.execute(select(Item.sku, Item.on_hand))).all())
        ledger = (await session.execute(select(StockMovement.sku, StockMovement.delta))).all()
    assert (on_hand["S0"], on_hand["S1"]) == (7, 8)
    for sku in SKUS:
        assert sum(delta for s, delta in ledger if s == sku) == on_hand[sku]
    m = await listings(nexus, "m")
    assert (m["S0"].desired_qty, m["S1"].desired_qty, m["S1"].remote_qty) == (7, 8, 8)
    assert m["S1"].dirty_since is None  # the selling channel already shows it

    drivers["m"].levels["m-S0"] = 9  # the channel sold one we have not heard of: compare-and-set
    while await nexus.push_worker("m").run_once() is not None:
        pass
    while await nexus.push_worker("n").run_once() is not None:
        pass
    assert drivers["m"].levels["m-S0"] == 6
    assert drivers["n"].levels["n-S0"] == 6
    assert drivers["n"].levels["n-S1"] == 8
    assert all(row.dirty_since is None for row in (await listings(nexus, "n")).values())

    batch_id = await nexus.catalog().sync_all(["n"])
    while await nexus.push_worker("n").run_once() is not None:
        pass
    status = await nexus.batch(batch_id).status()
    assert (status.done, status.processed, status.total) == (True, len(SKUS), len(SKUS))


async def test_claims_skip_locked_rows_instead_of_waiting(
    postgres_url: str, make_nexus: Callable[..., Any]
) -> None:
    nexus, _ = await engine_on(postgres_url, make_nexus)
    for sku in SKUS:
        await nexus.product(sku).adjust(-1)
    locked = asyncio.Event()
    release = asyncio.Event()

    async def hold_lock_on_s0() -> None:
        async with nexus.db.transaction() as session:
            await session.execute(
                select(ChannelMapping)
                .where(ChannelMapping.sku == "S0", ChannelMapping.channel == "m")
                .with_for_update()
            )
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold_lock_on_s0())
    await locked.wait()
    try:
        claimed = await asyncio.wait_for(nexus.push_worker("m").claim(10), timeout=10)
    finally:
        release.set()
        await holder
    assert sorted(c.sku for c in claimed) == ["S1", "S2", "S3", "S4"]
    later = await nexus.push_worker("m").claim(10)
    assert [c.sku for c in later] == ["S0"]


async def test_concurrent_workers_claim_disjoint_listings(
    postgres_url: str, make_nexus: Callable[..., Any]
) -> None:
    nexus, _ = await engine_on(postgres_url, make_nexus)
    for sku in SKUS:
        await nexus.product(sku).adjust(-1)
    workers = [nexus.push_worker("m") for _ in range(4)]

    claims = await asyncio.gather(*(worker.claim(2) for worker in workers))

    ids = [c.id for claim in claims for c in claim]
    assert len(ids) == len(set(ids)) == len(SKUS)
    async with nexus.db.read() as session:
        owners = dict((await session.execute(select(ChannelMapping.id, ChannelMapping.lease_owner))).all())
    for worker, claim in zip(workers, claims, strict=True):
        assert all(owners[c.id] == worker.owner for c in claim)
