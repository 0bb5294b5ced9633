"""The Shopify driver passes the conformance kit every driver must pass (nexus.testing)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from shopify_testkit import SECRET, TOKEN, delivery, load, make_context, raw

from nexus.channels.shopify import create_driver
from nexus.drivers.dto import NexusInventoryUpdate
from nexus.drivers.registry import DriverRegistry
from nexus.sandbox.shopify import ShopifySandbox
from nexus.testing import ConformanceChannel, DriverConformance, ProductFixture
from nexus.web.server import serve_app

SHOPIFY_PRODUCT = DriverRegistry().normalizer("shopify")


class TestShopifyConformance(DriverConformance):
    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[ConformanceChannel]:
        sandbox = ShopifySandbox(seed=1, access_token=TOKEN, webhook_secret=SECRET)
        sandbox.seed_catalog(12, quantity=5)
        async with serve_app(sandbox.app) as server, httpx.AsyncClient() as http:
            driver = create_driver(make_context(http, base_url=server.base_url))
            listings = []
            for n, sku in enumerate(sorted(sandbox.levels()), start=1):
                variant_id, item_id = sandbox.variant_ids(sku)
                listings.append(
                    NexusInventoryUpdate(
                        listing_id=n,
                        sku=sku,
                        remote_id=str(variant_id),
                        inventory_id=str(item_id),
                        quantity=5,
                    )
                )

            async def read_level(update: NexusInventoryUpdate) -> int | None:
                return sandbox.available(update.sku)

            try:
                yield ConformanceChannel(
                    driver=driver,
                    listings=listings,
                    unknown=NexusInventoryUpdate(
                        listing_id=999, sku="GHOST", remote_id="1", inventory_id="999999999", quantity=3
                    ),
                    read_level=read_level,
                    webhooks=[
                        delivery("orders/create", raw("orders_create.json")),
                        delivery("inventory_levels/update", raw("inventory_levels_update.json")),
                    ],
                    signature_headers=["x-shopify-hmac-sha256", "shopify-hmac-sha256"],
                    products=[
                        ProductFixture(
                            load("rest_product.json")["product"],
                            SHOPIFY_PRODUCT,
                            _skus(),
                        ),
                        ProductFixture(
                            load("graphql_product.json")["data"]["product"],
                            SHOPIFY_PRODUCT,
                            ["draft-151"],
                        ),
                    ],
                )
            finally:
                await sandbox.aclose()


def _skus() -> list[str]:
    return [v["sku"] for v in load("rest_product.json")["product"]["variants"]]
