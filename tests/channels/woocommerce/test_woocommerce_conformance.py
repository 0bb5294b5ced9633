"""The WooCommerce driver passes the conformance kit every driver must pass (nexus.testing)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from woocommerce_testkit import KEY, SECRET, delivery, load, make_context, raw

from nexus.channels.woocommerce import create_driver
from nexus.drivers.dto import NexusInventoryUpdate
from nexus.drivers.registry import DriverRegistry
from nexus.sandbox.woocommerce import WooCommerceSandbox
from nexus.testing import ConformanceChannel, DriverConformance, ProductFixture
from nexus.web.server import serve_app


class TestWooCommerceConformance(DriverConformance):
    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[ConformanceChannel]:
        sandbox = WooCommerceSandbox(consumer_key=KEY, consumer_secret=SECRET)
        sandbox.seed_catalog(6)
        sandbox.add_variable_product(
            "Shirt", [{"sku": f"SHIRT-{s}", "quantity": 5, "attributes": {"Size": s}} for s in "SML"]
        )
        async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10) as http:
            driver = create_driver(make_context(http, base_url=server.base_url))
            listings = []
            for n, sku in enumerate(sorted(sandbox.levels()), start=1):
                product = sandbox.store.by_sku_or_raise(sku)
                meta = {"parent_id": str(product.parent_id)} if product.parent_id else {}
                listings.append(NexusInventoryUpdate(n, sku, str(product.id), 5, channel_meta=meta))

            async def read_level(update: NexusInventoryUpdate) -> int | None:
                return sandbox.available(update.sku)

            simple, variable = load("product_simple.json"), load("product_variable.json")
            variations = load("product_variations.json")
            try:
                yield ConformanceChannel(
                    driver=driver,
                    listings=listings,
                    unknown=NexusInventoryUpdate(99, "GHOST", "987654", 1),
                    read_level=read_level,
                    webhooks=[
                        delivery("order.created", raw("webhook_order_created.json")),
                        delivery("product.updated", raw("webhook_product_updated_variation.json")),
                    ],
                    signature_headers=["x-wc-webhook-signature"],
                    products=[
                        ProductFixture(simple, DriverRegistry().normalizer("woocommerce"), [simple["sku"]]),
                        ProductFixture(
                            variable,
                            lambda p: DriverRegistry().normalizer("woocommerce")(p, variations),
                            [v["sku"] for v in variations],
                        ),
                    ],
                )
            finally:
                await sandbox.aclose()
