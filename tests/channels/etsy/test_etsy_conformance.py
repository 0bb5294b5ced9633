"""The Etsy driver passes the conformance kit every driver must pass (nexus.testing)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

from etsy_testkit import SHOP_ID, delivery, load, serve_shop

from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct
from nexus.drivers.registry import DriverRegistry
from nexus.sandbox.etsy import EtsySandbox
from nexus.testing import ConformanceChannel, DriverConformance, ProductFixture


class TestEtsyConformance(DriverConformance):
    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[ConformanceChannel]:
        sandbox = EtsySandbox(seed=1, shop_id=SHOP_ID)
        sandbox.seed_catalog(6, quantity=10)
        async with serve_shop(sandbox) as shop:
            driver = shop.driver()
            listings = []
            async for page in _pages(driver):
                for product in page:
                    for variant in product.variants:
                        listings.append(
                            NexusInventoryUpdate(
                                listing_id=len(listings) + 1,
                                sku=variant.sku or "",
                                remote_id=variant.remote_id,
                                inventory_id=variant.inventory_id,
                                quantity=10,
                                channel_meta=dict(variant.channel_meta),
                            )
                        )
            first = listings[0]
            listing_id = first.channel_meta["listing_id"]

            async def read_level(update: NexusInventoryUpdate) -> int | None:
                return sandbox.available(update.sku)

            fixture = load("listing_with_inventory.json")
            body = json.dumps(load("order_paid.json")).encode()
            yield ConformanceChannel(
                driver=driver,
                listings=listings,
                unknown=NexusInventoryUpdate(
                    99, "GHOST", f"{listing_id}:sku:GHOST", 1, channel_meta=first.channel_meta
                ),
                read_level=read_level,
                webhooks=[delivery(body, secrets=(sandbox.webhook_secret,))],
                signature_headers=["webhook-signature"],
                products=[
                    ProductFixture(
                        fixture,
                        DriverRegistry().normalizer("etsy"),
                        [p["sku"] for p in fixture["inventory"]["products"] if p["sku"]],
                    )
                ],
            )


async def _pages(driver: object) -> AsyncIterator[list[NexusProduct]]:
    from nexus.drivers.pagination import iterate_products

    async for page in iterate_products(driver):  # type: ignore[arg-type]
        yield list(page)
