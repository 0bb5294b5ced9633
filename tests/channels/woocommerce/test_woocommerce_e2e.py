"""End to end: Nexus imports a WooCommerce sandbox, pushes a stock change with the push worker, and
books a storefront sale that reaches it as signed webhooks on the Nexus web app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from woocommerce_testkit import KEY, SECRET, WEBHOOK_SECRET

from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.sandbox.woocommerce import WooCommerceSandbox
from nexus.storage.models import Item, StockMovement, WebhookLog
from nexus.web import create_app
from nexus.web.server import serve_app

CHANNEL = "woo"


async def test_import_push_and_sale_through_webhooks(make_nexus: Callable[..., Any]) -> None:
    sandbox = WooCommerceSandbox(consumer_key=KEY, consumer_secret=SECRET, webhook_secret=WEBHOOK_SECRET)
    sandbox.seed_catalog(2)
    sandbox.add_variable_product(
        "Shirt", [{"sku": f"SHIRT-{s}", "quantity": 10, "attributes": {"Size": s}} for s in ("S", "M")]
    )
    try:
        await _scenario(sandbox, make_nexus)
    finally:
        await sandbox.aclose()


async def _scenario(sandbox: WooCommerceSandbox, make_nexus: Callable[..., Any]) -> None:
    async with serve_app(sandbox.app) as store:
        nexus: Nexus = await make_nexus(
            channels={
                CHANNEL: {
                    "driver": "woocommerce",
                    "base_url": store.base_url,
                    "credentials": {
                        "consumer_key": KEY,
                        "consumer_secret": SECRET,
                        "webhook_secret": WEBHOOK_SECRET,
                    },
                }
            }
        )
        skus = ["SKU-000001", "SKU-000002", "SHIRT-S", "SHIRT-M"]
        await nexus.add_items(ItemSpec(sku=sku, title=sku, on_hand=10) for sku in skus)

        report = await nexus.import_channel(CHANNEL)
        assert report.linked == 4 and not report.unmatched

        await nexus.product("SHIRT-M").update_inventory(quantity=7)
        await nexus.product("SKU-000002").update_inventory(quantity=3)
        worker = nexus.push_worker(CHANNEL)
        while await worker.run_once() is not None:
            pass
        assert sandbox.levels() == {"SKU-000001": 10, "SKU-000002": 3, "SHIRT-S": 10, "SHIRT-M": 7}

        app = create_app(nexus)
        async with serve_app(app) as web:
            address = f"{web.base_url}/nexus/webhooks/{CHANNEL}"
            sandbox.subscribe("order.created", address)
            sandbox.subscribe("product.updated", address)
            await sandbox.drain_webhooks()  # the two creation pings
            assert sandbox.stats.pings_sent == 2

            await sandbox.simulate_sale("SHIRT-M", 2)
            await sandbox.drain_webhooks()
            await app.state.webhook_processor.drain()

    async with nexus.db.read() as session:
        item = (await session.execute(select(Item).where(Item.sku == "SHIRT-M"))).scalar_one()
        sales = list(
            (await session.execute(select(StockMovement).where(StockMovement.sku == "SHIRT-M"))).scalars()
        )
        logs = list((await session.execute(select(WebhookLog).order_by(WebhookLog.id))).scalars())
    assert item.on_hand == 5
    assert [m.delta for m in sales if m.reason == "sale"] == [-2]
    assert [(log.topic, log.status) for log in logs] == [
        ("ping", "processed"),
        ("ping", "processed"),
        ("order.created", "processed"),
        ("product.updated", "processed"),  # the variation: 5, what the sale explains already
        ("product.updated", "processed"),  # its parent: no level of its own
    ]
    assert sandbox.stats.webhooks_sent == 3 and sandbox.stats.webhooks_failed == 0
