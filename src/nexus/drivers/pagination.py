"""Walking a driver's product pages: one loop, so no caller re-implements the cursor protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator

from nexus.drivers.contract import InventoryDriver
from nexus.drivers.dto import NexusProduct


async def iterate_products(driver: InventoryDriver, per_page: int = 250) -> AsyncIterator[list[NexusProduct]]:
    """Every page of `driver.list_products`, in order, until the channel gives no next cursor."""
    cursor: str | None = None
    while True:
        page = await driver.list_products(cursor, per_page)
        yield list(page.items)
        cursor = page.next_cursor
        if not cursor:
            return
