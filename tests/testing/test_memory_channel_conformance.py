"""MemoryChannel passes the conformance kit every driver must pass, with and without its options."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from nexus.drivers.contract import ListingRef, ObservedLevel, SaleEvent
from nexus.drivers.dto import NexusInventoryUpdate
from nexus.testing import ConformanceChannel, DriverConformance, MemoryChannel


def conformance_channel(channel: MemoryChannel) -> ConformanceChannel:
    listings = [
        NexusInventoryUpdate(listing_id=n, sku=sku, remote_id=sku, quantity=5)
        for n, sku in enumerate((f"SKU-{i}" for i in range(12)), start=1)
    ]
    for update in listings:
        channel.add_product(update.sku, quantity=5)

    async def read_level(update: NexusInventoryUpdate) -> int | None:
        return channel.levels.get(update.remote_id)

    at = datetime(2026, 1, 1, tzinfo=UTC)
    return ConformanceChannel(
        driver=channel,
        listings=listings,
        unknown=NexusInventoryUpdate(listing_id=999, sku="GHOST", remote_id="GHOST", quantity=3),
        read_level=read_level,
        webhooks=[
            channel.webhook(SaleEvent(ListingRef(remote_id="SKU-1"), 2, "O1", "L1", at), delivery_id="D1"),
            channel.webhook(ObservedLevel(ListingRef(remote_sku="SKU-2"), 7, at), event_id="E1"),
        ],
        signature_headers=["x-memory-signature"],
    )


class TestMemoryChannelConformance(DriverConformance):
    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[ConformanceChannel]:
        yield conformance_channel(MemoryChannel(max_batch_size=5, refuse_unknown=True))


class TestMemoryChannelWithoutOptionsConformance(DriverConformance):
    """Neither compare-and-set nor reads: the kit skips those checks, and the rest still holds."""

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[ConformanceChannel]:
        channel = MemoryChannel(compare_and_set=False, reads_levels=False, refuse_unknown=True)
        yield conformance_channel(channel)
