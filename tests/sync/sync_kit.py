"""Helpers for the worker tests: an engine whose channels are `nexus.testing.MemoryChannel`s
(batches of 3, compare-and-set, no reads unless asked), and helpers to seed and read listings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from nexus.domain.catalog import ImportReport, ItemSpec, add_items, link_variants
from nexus.drivers.dto import NexusProduct, NexusVariant
from nexus.engine import Nexus
from nexus.storage.models import ChannelMapping, DeadLetter, Item, StockMovement, SyncJob
from nexus.testing import MemoryChannel

# The worker tests' channel: small batches, compare-and-set, whole-second stamps, no reads.
DEFAULTS: dict[str, Any] = {"max_batch_size": 3, "compare_and_set": True, "reads_levels": False}


class Engine:
    """A migrated Nexus whose channels use MemoryChannel, one instance per channel."""

    def __init__(self, nexus: Nexus, drivers: Mapping[str, MemoryChannel]) -> None:
        self.nexus = nexus
        self.drivers = drivers

    def driver(self, channel: str = "m") -> MemoryChannel:
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


def register(nexus: Nexus, **options: Any) -> Mapping[str, MemoryChannel]:
    """Register MemoryChannel as driver `mem` (options over DEFAULTS); the channels it builds, by name."""
    factory = MemoryChannel.factory(**{**DEFAULTS, **options})
    nexus.extend("mem", factory)
    return factory.channels
