"""Shopify-signed deliveries through the receiver with the real Shopify driver, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nexus.engine import Nexus
from nexus.events import InventoryUpdated, WebhookReceived
from nexus.storage.models import ChannelMapping, Item, WebhookLog
from nexus.web import create_app
from nexus.web.server import serve_app

pytest.importorskip("nexus.channels.shopify")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SECRET = "shopify-client-secret"
SHOP = "shop-us"
OTHER = "other"
SKU = "IPOD2008PINK"
VARIANT_ID = "808950810"
INVENTORY_ITEM_ID = "271878346596884015"
LOCATION_ID = "24826418"


def shopify_headers(
    topic: str, body: bytes, *, webhook_id: str, event_id: str, secret: str = SECRET
) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Shop-Domain": "nexus-test.myshopify.com",
        "X-Shopify-Triggered-At": "2026-11-21T10:00:00.123Z",
        "X-Shopify-API-Version": "2026-10",
    }


@pytest.fixture
async def shop(make_nexus: Callable[..., Any]) -> Nexus:
    nexus: Nexus = await make_nexus(
        channels={
            SHOP: {
                "driver": "shopify",
                "base_url": "https://nexus-test.myshopify.com",
                "credentials": {"access_token": "shpat_test", "webhook_secret": SECRET},
                "settings": {"location_id": LOCATION_ID},
            },
            # A second channel to see the sale reach: any driver will do, nothing is pushed here.
            OTHER: {
                "driver": "shopify",
                "base_url": "https://other.myshopify.com",
                "credentials": {"access_token": "shpat_other"},
            },
        }
    )
    async with nexus.db.transaction() as session:
        session.add(Item(sku=SKU, title="IPod Nano - 8GB", on_hand=10))
        session.add(
            ChannelMapping(
                syncable_id=SKU,
                sku=SKU,
                channel=SHOP,
                remote_id=VARIANT_ID,
                remote_inventory_id=INVENTORY_ITEM_ID,
                desired_qty=10,
                pushed_qty=10,
                remote_qty=10,
            )
        )
        session.add(
            ChannelMapping(
                syncable_id=SKU,
                sku=SKU,
                channel=OTHER,
                remote_id="1",
                remote_inventory_id="2",
                desired_qty=10,
                pushed_qty=10,
                remote_qty=10,
            )
        )
    return nexus


@pytest.fixture
async def client(shop: Nexus) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(shop)
    async with serve_app(app) as server, httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


async def drain(client: httpx.AsyncClient) -> None:
    await client.app.state.webhook_processor.drain()  # type: ignore[attr-defined]


async def rows(nexus: Nexus) -> list[WebhookLog]:
    async with nexus.db.read() as session:
        return list((await session.execute(select(WebhookLog).order_by(WebhookLog.id))).scalars())


async def state(nexus: Nexus) -> tuple[int, int | None, bool]:
    async with nexus.db.read() as session:
        item = (await session.execute(select(Item).where(Item.sku == SKU))).scalar_one()
        listings = {
            row.channel: row
            for row in (
                await session.execute(select(ChannelMapping).where(ChannelMapping.sku == SKU))
            ).scalars()
        }
    return item.on_hand, listings[SHOP].remote_qty, listings[OTHER].dirty_since is not None


async def test_shopify_order_then_level_deliveries(shop: Nexus, client: httpx.AsyncClient) -> None:
    received: list[WebhookReceived] = []
    updated: list[InventoryUpdated] = []
    shop.events.listen(WebhookReceived, received.append)
    shop.events.listen(InventoryUpdated, updated.append)
    path = f"/nexus/webhooks/{SHOP}"

    order = (FIXTURES / "orders_create.json").read_bytes()
    headers = shopify_headers("orders/create", order, webhook_id="wh-order-1", event_id="ev-order-1")
    first = await client.post(path, content=order, headers=headers)
    again = await client.post(path, content=order, headers=headers)  # Shopify retries: same webhook id
    await drain(client)

    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    # Two line items of one unit each of the variant.
    assert await state(shop) == (8, 8, True)

    level = (FIXTURES / "inventory_levels_update.json").read_bytes()  # available: 8, what Nexus believes
    headers = shopify_headers(
        "inventory_levels/update", level, webhook_id="wh-level-1", event_id="ev-level-1"
    )
    echo = await client.post(path, content=level, headers=headers)
    await drain(client)
    assert echo.status_code == 200
    assert await state(shop) == (8, 8, True)  # an echo changes nothing

    newer = json.loads(level)
    newer.update(available=5, updated_at="2026-11-21T06:00:00-05:00")
    body = json.dumps(newer).encode()
    headers = shopify_headers("inventory_levels/update", body, webhook_id="wh-level-2", event_id="ev-level-2")
    moved = await client.post(path, content=body, headers=headers)
    await drain(client)
    assert moved.status_code == 200
    assert await state(shop) == (5, 5, True)

    logged = await rows(shop)
    assert [(r.topic, r.delivery_id, r.event_id, r.status) for r in logged] == [
        ("orders/create", "wh-order-1", "ev-order-1", "processed"),
        ("inventory_levels/update", "wh-level-1", "ev-level-1", "processed"),
        ("inventory_levels/update", "wh-level-2", "ev-level-2", "processed"),
    ]
    assert logged[0].headers["x-shopify-shop-domain"] == "nexus-test.myshopify.com"
    assert [e.topic for e in received] == [
        "orders/create",
        "inventory_levels/update",
        "inventory_levels/update",
    ]
    assert [e.delta for e in updated] == [-1, -1, -3]


async def test_shopify_tampered_and_unsigned_deliveries_are_refused(
    shop: Nexus, client: httpx.AsyncClient
) -> None:
    path = f"/nexus/webhooks/{SHOP}"
    order = (FIXTURES / "orders_create.json").read_bytes()
    headers = shopify_headers("orders/create", order, webhook_id="wh-1", event_id="ev-1")
    tampered = await client.post(
        path, content=order.replace(b'"quantity": 1', b'"quantity": 9'), headers=headers
    )
    unsigned = await client.post(
        path, content=order, headers={k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}
    )
    # The real delivery still gets through afterwards: the refused ones hold no unique slot.
    real = await client.post(path, content=order, headers=headers)
    await drain(client)

    assert [tampered.status_code, unsigned.status_code, real.status_code] == [401, 401, 200]
    logged = await rows(shop)
    assert [(r.status, r.verified, r.delivery_id) for r in logged] == [
        ("rejected", False, None),
        ("rejected", False, None),
        ("processed", True, "wh-1"),
    ]
    assert await state(shop) == (8, 8, True)
