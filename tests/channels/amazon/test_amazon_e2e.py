"""End to end: the Nexus engine with `driver="amazon"` against the served Amazon sandbox.

Import the listings, push through a feed with the push worker, confirm the SNS subscription the
way the processor does, then a sale on Amazon reaches Nexus as an ORDER_CHANGE and a
LISTINGS_ITEM_MFN_QUANTITY_CHANGE delivered by SNS to Nexus's own web app.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from nexus.channels.amazon import AmazonDriver
from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.sandbox.amazon import MFN_QUANTITY_CHANGE, ORDER_CHANGE, AmazonSandbox
from nexus.storage.models import ChannelMapping, Item, StockMovement, WebhookLog
from nexus.web import create_app
from nexus.web.server import serve_app

CHANNEL = "amazon-us"


async def listing_state(nexus: Nexus, sku: str) -> tuple[int, int | None, bool]:
    async with nexus.db.read() as session:
        item = (await session.execute(select(Item).where(Item.sku == sku))).scalar_one()
        listing = (
            await session.execute(select(ChannelMapping).where(ChannelMapping.sku == sku))
        ).scalar_one()
        return item.on_hand, listing.remote_qty, listing.dirty_since is not None


async def test_import_push_and_notifications(make_nexus: Callable[..., Any]) -> None:
    sandbox = AmazonSandbox(feed_processing_seconds=0.04)
    sandbox.seed_catalog(6, quantity=10)
    async with serve_app(sandbox.app) as amazon:
        settings = {
            **sandbox.channel_settings(amazon.base_url),
            "feed_threshold": 5,
            "feed_poll_interval": 0.02,
        }
        nexus: Nexus = await make_nexus(
            channels={
                CHANNEL: {
                    "driver": "amazon",
                    "base_url": amazon.base_url,
                    "credentials": sandbox.credentials(),
                    "settings": settings,
                }
            }
        )
        driver = nexus.channel(CHANNEL).driver
        assert isinstance(driver, AmazonDriver)
        driver.use_fetcher(sandbox.fetch)

        await nexus.add_items(ItemSpec(sku=f"SKU-{i:06d}", on_hand=8) for i in range(1, 7))
        report = await nexus.import_channel(CHANNEL)
        assert (report.linked, report.unmatched) == (6, [])
        async with nexus.db.read() as session:
            meta = (await session.execute(select(ChannelMapping.channel_meta))).scalars().first()
        assert meta is not None and meta["product_type"] in ("HOME", "TOYS_AND_GAMES")

        pushed = await nexus.push_worker(CHANNEL).run_once()
        assert pushed is not None and pushed.ok == 6
        assert set(sandbox.levels().values()) == {8}
        assert (sandbox.stats.feeds_created, sandbox.stats.patches) == (1, 0)

        app = create_app(nexus)
        async with serve_app(app) as web:
            address = f"{web.base_url}/nexus/webhooks/{CHANNEL}"
            sandbox.subscribe(MFN_QUANTITY_CHANGE, address)
            sandbox.subscribe(ORDER_CHANGE, address)
            await sandbox.drain_webhooks()
            await app.state.webhook_processor.drain()
            (subscription,) = sandbox.sns.subscriptions.values()
            assert subscription.confirmed  # the processor fetched the SubscribeURL

            await sandbox.simulate_sale("SKU-000001", 2)
            await sandbox.drain_webhooks()
            await app.state.webhook_processor.drain()

            # Both the quantity change and ORDER_CHANGE report the sale (sales_from "both"): it is
            # booked once, whichever arrives first (the order absorbs a drop the level booked).
            assert await listing_state(nexus, "SKU-000001") == (6, 6, False)
            assert await listing_state(nexus, "SKU-000002") == (8, 8, False)
            assert await nexus.push_worker(CHANNEL).run_once() is None
            assert sandbox.available("SKU-000001") == 6
            async with nexus.db.read() as session:
                moved = list(
                    (
                        await session.execute(select(StockMovement).where(StockMovement.channel == CHANNEL))
                    ).scalars()
                )
                assert sum(m.delta for m in moved) == -2
                assert [(m.sku, m.delta) for m in moved if m.reason == "sale"] == [("SKU-000001", -2)]
                logged = (await session.execute(select(WebhookLog).order_by(WebhookLog.id))).scalars()
                assert [(row.topic, row.status) for row in logged] == [
                    ("sns/SubscriptionConfirmation", "processed"),
                    (ORDER_CHANGE, "processed"),
                    (MFN_QUANTITY_CHANGE, "processed"),
                ]

            # A forged delivery (unsigned) is refused at the door.
            async with httpx.AsyncClient(trust_env=False) as client:
                refused = await client.post(address, content=b'{"Type": "Notification"}')
            assert refused.status_code == 401
    await sandbox.aclose()
