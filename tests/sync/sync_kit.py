"""An in-memory channel for the worker tests, and helpers to seed and read listings.

A plain module with a unique name (not conftest.py): pytest puts this directory on sys.path for
the test files in it, so they import it directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select

from nexus.domain.catalog import ImportReport, ItemSpec, add_items, link_variants
from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    RateLimitConfig,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, NexusVariant, Page, PushResult
from nexus.engine import Nexus
from nexus.storage.models import ChannelMapping, DeadLetter, Item, StockMovement, SyncJob

Plan = Callable[[NexusInventoryUpdate], PushResult | None]


class MemDriver(InventoryDriver):
    """A channel held in a dict. Batch-first, with optional compare-and-set.

    `plan` may answer for an update instead of the channel (return None to let it answer);
    `raises` makes the next push raise; `during_push` is awaited once inside the next push,
    after the request reached the channel and before its answer is read (a sale that happens
    while the push is in flight); `gate` holds every push open until it is set.
    """

    name = "mem"

    def __init__(self, context: ChannelContext, *, max_batch: int = 3, cas: bool = True) -> None:
        self.context = context
        self.capabilities = DriverCapabilities(max_batch_size=max_batch, compare_and_set=cas)
        self.levels: dict[str, int] = {}
        self.calls: list[list[NexusInventoryUpdate]] = []
        self.plan: Plan | None = None
        self.raises: BaseException | None = None
        self.during_push: Callable[[], Awaitable[None]] | None = None
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        await self.context.rate.acquire(1)
        self.calls.append(list(updates))
        self.entered.set()
        if self.raises is not None:
            error, self.raises = self.raises, None
            raise error
        results: list[PushResult] = []
        for update in updates:
            planned = self.plan(update) if self.plan is not None else None
            if planned is not None:
                results.append(planned)
                continue
            current = self.levels.get(update.remote_id)
            if update.change_from is not None and current is not None and current != update.change_from:
                results.append(PushResult.stale(update.listing_id, current))
                continue
            self.levels[update.remote_id] = update.quantity
            results.append(PushResult.ok(update.listing_id, update.quantity))
        if self.during_push is not None:
            hook, self.during_push = self.during_push, None
            await hook()
        if self.gate is not None:
            await self.gate.wait()
        return results

    def rate_limit_config(self) -> RateLimitConfig:
        return RateLimitConfig(1_000, 1_000)

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        raise NotImplementedError

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        raise NotImplementedError

    async def verify_webhook(self, request: WebhookRequest) -> None:
        raise NotImplementedError

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        raise NotImplementedError

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        raise NotImplementedError


class ReadableMemDriver(MemDriver):
    """MemDriver that can read its levels (declared `reads_levels`), counting reads."""

    def __init__(self, context: ChannelContext, **options: Any) -> None:
        super().__init__(context, **options)
        self.capabilities = dataclasses.replace(self.capabilities, reads_levels=True)
        self.reads: list[list[int]] = []

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        self.reads.append([u.listing_id for u in updates])
        return {u.listing_id: self.levels[u.remote_id] for u in updates if u.remote_id in self.levels}


class Engine:
    """A migrated Nexus whose channels use MemDriver, one driver instance per channel."""

    def __init__(self, nexus: Nexus, drivers: dict[str, MemDriver]) -> None:
        self.nexus = nexus
        self.drivers = drivers

    def driver(self, channel: str = "m") -> MemDriver:
        self.nexus.channel(channel)
        return self.drivers[channel]

    async def seed(
        self,
        skus: Mapping[str, int],
        channels: Sequence[str] = ("m",),
        *,
        remote: int | str | None = "same",
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the SKUs and link each on `channels`. `remote="same"`: the channel shows the
        on-hand quantity already (in sync); None: never read; an int: it shows that."""
        async with self.nexus.db.transaction() as session:
            await add_items(session, [ItemSpec(sku, title=sku, on_hand=qty) for sku, qty in skus.items()])
            await session.flush()
            for channel in channels:
                products = []
                for sku, qty in skus.items():
                    shown = qty if remote == "same" else remote
                    assert shown is None or isinstance(shown, int)
                    products.append(
                        NexusProduct(
                            remote_id=f"p-{sku}",
                            title=sku,
                            variants=(
                                NexusVariant(
                                    remote_id=f"{channel}-{sku}",
                                    sku=sku,
                                    title="",
                                    quantity=shown,
                                    channel_meta=dict(meta or {}),
                                ),
                            ),
                        )
                    )
                    if shown is not None:
                        self.driver(channel).levels[f"{channel}-{sku}"] = shown
                await link_variants(session, channel, products, self.nexus.allocator, ImportReport(channel))

    async def listing(self, sku: str, channel: str = "m") -> ChannelMapping:
        async with self.nexus.db.read() as session:
            return (
                await session.execute(
                    select(ChannelMapping).where(ChannelMapping.sku == sku, ChannelMapping.channel == channel)
                )
            ).scalar_one()

    async def listings(self, channel: str = "m") -> list[ChannelMapping]:
        async with self.nexus.db.read() as session:
            statement = (
                select(ChannelMapping).where(ChannelMapping.channel == channel).order_by(ChannelMapping.id)
            )
            return list((await session.execute(statement)).scalars())

    async def on_hand(self, sku: str) -> int:
        async with self.nexus.db.read() as session:
            return (await session.execute(select(Item.on_hand).where(Item.sku == sku))).scalar_one()

    async def movements(self, sku: str) -> list[StockMovement]:
        async with self.nexus.db.read() as session:
            statement = select(StockMovement).where(StockMovement.sku == sku).order_by(StockMovement.id)
            return list((await session.execute(statement)).scalars())

    async def jobs(self) -> list[SyncJob]:
        async with self.nexus.db.read() as session:
            return list((await session.execute(select(SyncJob).order_by(SyncJob.id))).scalars())

    async def dead_letters(self) -> list[DeadLetter]:
        async with self.nexus.db.read() as session:
            return list((await session.execute(select(DeadLetter).order_by(DeadLetter.id))).scalars())


def register(
    nexus: Nexus, *, driver_class: type[MemDriver] = MemDriver, **driver_options: Any
) -> dict[str, MemDriver]:
    drivers: dict[str, MemDriver] = {}

    def factory(context: ChannelContext) -> MemDriver:
        drivers[context.name] = driver_class(context, **driver_options)
        return drivers[context.name]

    nexus.extend("mem", factory)
    return drivers
