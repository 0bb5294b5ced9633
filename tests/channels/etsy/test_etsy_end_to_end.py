"""Nexus with an Etsy channel on the sandbox: import, push through the worker, a sale comes back.

The sale travels as Etsy sends it: a signed Standard Webhooks delivery of a thin `order.paid`
body to Nexus' web app, stored, then processed by the WebhookProcessor, which has the driver
fetch the receipt from the sandbox and books its transactions through the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.sandbox.etsy import EtsySandbox
from nexus.storage.models import ChannelMapping, Item, WebhookLog
from nexus.web import create_app
from nexus.web.server import serve_app

CHANNEL = "etsy-shop"
SKUS = ["SKU-000001", "SKU-000002", "SKU-000003"]


async def push_everything(nexus: Nexus) -> int:
    rounds = 0
    while await nexus.push_worker(CHANNEL).run_once() is not None:
        rounds += 1
    return rounds


async def on_hand(nexus: Nexus) -> dict[str, int]:
    async with nexus.db.read() as session:
        return {i.sku: i.on_hand for i in (await session.execute(select(Item))).scalars()}


async def listings(nexus: Nexus) -> dict[str, ChannelMapping]:
    async with nexus.db.read() as session:
        rows = (
            await session.execute(select(ChannelMapping).where(ChannelMapping.channel == CHANNEL))
        ).scalars()
        return {row.sku: row for row in rows}


async def test_import_push_and_a_sale_delivered_as_a_signed_webhook(make_nexus: Callable[..., Any]) -> None:
    # Retries compressed to milliseconds: a delivery refused while Nexus starts is retried quickly.
    sandbox = EtsySandbox(seed=3, webhook_retry_schedule=(0.05, 0.1, 0.2))
    sandbox.seed_catalog(3, quantity=10)
    try:
        async with serve_app(sandbox.app) as etsy:
            nexus: Nexus = await make_nexus(
                channels={
                    CHANNEL: {
                        "driver": "etsy",
                        "base_url": etsy.base_url,
                        "credentials": sandbox.credentials(),
                        "settings": sandbox.settings(etsy.base_url),
                    }
                }
            )
            await nexus.add_items(ItemSpec(sku=sku, title=sku, on_hand=25) for sku in SKUS)

            report = await nexus.import_channel(CHANNEL)
            assert (report.linked, report.unmatched) == (3, [])
            assert {sku: row.remote_qty for sku, row in (await listings(nexus)).items()} == dict.fromkeys(
                SKUS, 10
            )

            assert await push_everything(nexus) >= 1
            assert sandbox.levels() == dict.fromkeys(SKUS, 25)
            assert all(row.dirty_since is None for row in (await listings(nexus)).values())

            app = create_app(nexus)
            async with serve_app(app) as web, httpx.AsyncClient(trust_env=False) as http:
                sandbox.subscribe("order.paid", f"{web.base_url}/nexus/webhooks/{CHANNEL}")
                receipt = await sandbox.simulate_sale("SKU-000002", 3)
                assert receipt is not None
                await sandbox.drain_webhooks()
                await app.state.webhook_processor.drain()

                # A forged delivery (no signature) is refused and changes nothing.
                forged = await http.post(
                    f"{web.base_url}/nexus/webhooks/{CHANNEL}",
                    content=b'{"event_type":"order.paid","resource_url":"http://127.0.0.1:1/x","shop_id":1}',
                    headers={"content-type": "application/json"},
                )
                assert forged.status_code == 401

            assert sandbox.stats.webhooks_sent == 1 and sandbox.stats.receipt_gets == 1
            assert await on_hand(nexus) == {"SKU-000001": 25, "SKU-000002": 22, "SKU-000003": 25}
            sold = (await listings(nexus))["SKU-000002"]
            # Etsy already took the three off its own level. It has no conditional write: a sale
            # stamped (whole seconds) in the same second as our last PUT may have landed before it
            # and been written over, so the level is then unknown and pushed once more.
            if sold.remote_qty is None:
                assert await push_everything(nexus) == 1
            else:
                assert sold.remote_qty == 22
            assert sandbox.available("SKU-000002") == 22
            assert await push_everything(nexus) == 0
            async with nexus.db.read() as session:
                logs = list((await session.execute(select(WebhookLog).order_by(WebhookLog.id))).scalars())
            assert [(log.topic, log.status) for log in logs] == [
                ("order.paid", "processed"),
                (None, "rejected"),
            ]
    finally:
        await sandbox.aclose()
