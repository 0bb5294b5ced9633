"""End to end: mutated, unsigned or wrongly signed Shopify deliveries over real HTTP to the web
app's webhook route (the receiver and the real Shopify driver) are answered 4xx, are logged as
rejected and change no stock; the untouched signed delivery still sells."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nexus.engine import Nexus
from nexus.storage.models import ChannelMapping, Item, WebhookLog
from nexus.web import create_app
from nexus.web.server import serve_app
from tests.channels.shopify.shopify_testkit import raw

SECRET = "shopify-client-secret"
SHOP = "shop-us"
SKU = "IPOD2008PINK"
VARIANT_ID = "808950810"
ORDER = raw("orders_create.json")


def signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(signature: str | None, *, webhook_id: str) -> list[tuple[str, str]]:
    pairs = [
        ("Content-Type", "application/json"),
        ("X-Shopify-Topic", "orders/create"),
        ("X-Shopify-Webhook-Id", webhook_id),
        ("X-Shopify-Event-Id", f"ev-{webhook_id}"),
        ("X-Shopify-Triggered-At", "2026-11-21T10:00:00.123Z"),
    ]
    return pairs if signature is None else [("X-Shopify-Hmac-Sha256", signature), *pairs]


def mutations() -> list[tuple[str, bytes, list[tuple[str, str]]]]:
    """(what, body, headers): every one unsigned or signed for other bytes."""
    order = json.loads(ORDER)
    bigger = json.loads(ORDER)
    bigger["line_items"][0]["quantity"] = 10**9
    negative = json.loads(ORDER)
    negative["line_items"][0]["quantity"] = -5
    deep = b'{"line_items": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    cases: list[tuple[str, bytes, list[tuple[str, str]]]] = []

    def add(what: str, body: bytes, sign_for: bytes | None, secret: str = SECRET) -> None:
        sig = signature(sign_for, secret) if sign_for is not None else None
        cases.append((what, body, headers(sig, webhook_id=f"wh-{len(cases)}")))

    for what, body in (
        ("quantity raised", json.dumps(bigger).encode()),
        ("quantity negative", json.dumps(negative).encode()),
        ("nested 50,000 deep", deep),
        ("truncated", ORDER[: len(ORDER) // 2]),
        ("line items dropped", json.dumps({k: v for k, v in order.items() if k != "line_items"}).encode()),
    ):
        add(f"{what}, original signature", body, ORDER)
        add(f"{what}, no signature", body, None)
        add(f"{what}, other secret", body, body, secret="not-the-secret")
    rng = random.Random(20261121)
    for n in range(12):
        flipped = bytearray(ORDER)
        flipped[rng.randrange(len(flipped))] ^= rng.randrange(1, 256)
        add(f"byte flip {n}, original signature", bytes(flipped), ORDER)
    # A duplicated signature header: the receiver keeps the first, here a wrong one.
    cases.append(
        (
            "duplicated header, wrong first",
            ORDER,
            [
                ("X-Shopify-Hmac-Sha256", signature(ORDER, "x")),
                *headers(signature(ORDER), webhook_id="wh-dup"),
            ],
        )
    )
    # Wrong case in the name is still the header (HTTP names are case-insensitive)...
    cases.append(
        (
            "lower-case name, wrong value",
            ORDER,
            [("x-shopify-hmac-sha256", "AAAA"), *headers(None, webhook_id="wh-lc")],
        )
    )
    return cases


@pytest.fixture
async def shop(make_nexus: Callable[..., Any]) -> Nexus:
    nexus: Nexus = await make_nexus(
        channels={
            SHOP: {
                "driver": "shopify",
                "base_url": "https://nexus-test.myshopify.com",
                "credentials": {"access_token": "shpat_test", "webhook_secret": SECRET},
                "settings": {"location_id": "24826418"},
            }
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


async def on_hand(nexus: Nexus) -> int:
    async with nexus.db.read() as session:
        return (await session.execute(select(Item.on_hand).where(Item.sku == SKU))).scalar_one()


async def test_mutated_unsigned_deliveries_are_refused_and_change_no_stock(
    shop: Nexus, client: httpx.AsyncClient
) -> None:
    path = f"/nexus/webhooks/{SHOP}"
    cases = mutations()
    for what, body, pairs in cases:
        response = await client.post(path, content=body, headers=pairs)
        assert response.status_code == 401, f"{what}: answered {response.status_code} {response.text}"
        assert response.json()["status"] == "rejected", what
    await client.app.state.webhook_processor.drain()  # type: ignore[attr-defined]
    assert await on_hand(shop) == 10

    async with shop.db.read() as session:
        logged = list((await session.execute(select(WebhookLog).order_by(WebhookLog.id))).scalars())
    assert len(logged) == len(cases)
    assert all(row.status == "rejected" and not row.verified and row.http_status == 401 for row in logged)

    # The real delivery, signed, still goes through: the refusals above were the signature's doing.
    genuine = await client.post(path, content=ORDER, headers=headers(signature(ORDER), webhook_id="wh-real"))
    assert genuine.status_code == 200
    await client.app.state.webhook_processor.drain()  # type: ignore[attr-defined]
    assert await on_hand(shop) == 8  # orders_create.json: two lines of one IPOD2008PINK each


async def test_a_signed_delivery_nested_too_deep_is_a_400_not_a_500(
    shop: Nexus, client: httpx.AsyncClient
) -> None:
    deep = b'{"line_items": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = await client.post(
        f"/nexus/webhooks/{SHOP}", content=deep, headers=headers(signature(deep), webhook_id="wh-deep")
    )
    assert response.status_code == 400, response.text
    assert await on_hand(shop) == 10
