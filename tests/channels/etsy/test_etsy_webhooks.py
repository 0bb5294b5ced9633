"""Standard Webhooks verification, order.paid parsing, and resolving a receipt (with its SSRF guard)."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable

import httpx
import pytest
from etsy_testkit import SECRET, SHOP_ID, Shop, delivery, load, make_context, raw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from nexus.channels.etsy import create_driver, webhooks
from nexus.drivers.contract import ListingRef, SaleEvent, WebhookRequest
from nexus.errors import WebhookPayloadError, WebhookSignatureError
from nexus.web.server import serve_app

OLD_SECRET = "whsec_" + base64.b64encode(b"the-secret-being-retired").decode()


def verify(request: WebhookRequest, secret: str | None = SECRET) -> None:
    webhooks.verify(request, secret, tolerance=300)


def test_an_authentic_delivery_verifies() -> None:
    verify(delivery(raw("order_paid.json")))


def test_an_unpadded_secret_verifies_the_same() -> None:
    verify(delivery(raw("order_paid.json")), SECRET.rstrip("="))


ORDER = raw("order_paid.json")


# Built when the test runs, not when it is collected: the timestamps are relative to "now".
@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda: dataclasses.replace(delivery(ORDER), body=ORDER.replace(b"901", b"902")),
            id="tampered body",
        ),
        pytest.param(lambda: delivery(ORDER, secrets=(OLD_SECRET,)), id="another secret"),
        pytest.param(lambda: delivery(ORDER, timestamp=int(time.time()) - 301), id="too old"),
        pytest.param(lambda: delivery(ORDER, timestamp=int(time.time()) + 301), id="too new"),
        pytest.param(lambda: delivery(ORDER, omit=("webhook-signature",)), id="no signature"),
        pytest.param(lambda: delivery(ORDER, omit=("webhook-id",)), id="no id"),
        pytest.param(lambda: delivery(ORDER, omit=("webhook-timestamp",)), id="no timestamp"),
    ],
)
def test_refused_deliveries(build: Callable[[], WebhookRequest]) -> None:
    with pytest.raises(WebhookSignatureError):
        verify(build())


def test_the_id_is_part_of_what_is_signed() -> None:
    genuine = delivery(raw("order_paid.json"))
    replayed = dataclasses.replace(genuine, headers={**genuine.headers, "webhook-id": "msg_another"})
    with pytest.raises(WebhookSignatureError):
        verify(replayed)


def test_during_a_key_rotation_any_matching_signature_passes() -> None:
    both = delivery(raw("order_paid.json"), secrets=(OLD_SECRET, SECRET))
    assert len(both.headers["webhook-signature"].split(" ")) == 2
    verify(both, SECRET)
    verify(both, OLD_SECRET)
    with pytest.raises(WebhookSignatureError):
        verify(both, "whsec_" + base64.b64encode(b"a third, unrelated secret").decode())


def test_no_configured_secret_refuses_everything() -> None:
    with pytest.raises(WebhookSignatureError):
        verify(delivery(raw("order_paid.json")), None)


def test_describe_and_check_the_thin_order_paid_body() -> None:
    request = delivery(raw("order_paid.json"), webhook_id="msg_1")
    meta = webhooks.describe(request)
    assert (meta.topic, meta.delivery_id) == ("order.paid", "msg_1")
    webhooks.check(request)
    legacy = delivery(
        json.dumps(
            {"event_type": "ORDER_PAID", "resource_url": load("order_paid.json")["resource_url"]}
        ).encode()
    )
    assert webhooks.describe(legacy).topic == "order.paid"
    for body in (
        b"[]",
        b"not json",
        b'{"resource_url": "x"}',
        b'{"event_type": "order.paid", "resource_url": "https://openapi.etsy.com/v3/application/listings/1"}',
    ):
        with pytest.raises(WebhookPayloadError):
            webhooks.check(delivery(body))


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v3/application/shops/10051834/receipts/1",
        "http://openapi.etsy.com/v3/application/shops/10051834/receipts/1",
        "https://openapi.etsy.com/v3/application/shops/99/receipts/1",
        "https://openapi.etsy.com/v3/application/shops/10051834/receipts/1?redirect=https://evil.example",
        "https://user@openapi.etsy.com/v3/application/shops/10051834/receipts/1",
        "https://openapi.etsy.com/v3/application/shops/10051834/receipts/1/../../../../admin",
        "https://openapi.etsy.com.evil.example/v3/application/shops/10051834/receipts/1",
    ],
)
def test_a_resource_url_outside_the_etsy_api_is_refused(url: str) -> None:
    with pytest.raises(WebhookPayloadError):
        webhooks.receipt_location(
            url,
            base_url="https://openapi.etsy.com",
            allowed_hosts=("openapi.etsy.com", "api.etsy.com"),
            shop_id=SHOP_ID,
        )


def test_both_etsy_hosts_name_the_same_receipt() -> None:
    for host in ("openapi.etsy.com", "api.etsy.com"):
        location = webhooks.receipt_location(
            f"https://{host}/v3/application/shops/{SHOP_ID}/receipts/2345678901",
            base_url="https://openapi.etsy.com",
            allowed_hosts=("openapi.etsy.com", "api.etsy.com"),
            shop_id=SHOP_ID,
        )
        assert location.path == f"/v3/application/shops/{SHOP_ID}/receipts/2345678901"


def test_receipt_transactions_become_sales() -> None:
    sales = webhooks.receipt_sales(load("receipt.json"))

    assert sales == [
        SaleEvent(
            listing=ListingRef(
                remote_id="1146172724:sku:TOTE-BGE",
                inventory_id="1146172724:pv:200=54711166638",
                remote_sku="TOTE-BGE",
            ),
            quantity=2,
            order_id="2345678901",
            line_id="3456789012",
            occurred_at=sales[0].occurred_at,
        ),
        SaleEvent(
            listing=ListingRef(remote_id="1146172724:pv:200=1219", inventory_id="1146172724:pv:200=1219"),
            quantity=1,
            order_id="2345678901",
            line_id="3456789013",
            occurred_at=sales[1].occurred_at,
        ),
    ]
    assert sales[0].occurred_at is not None and int(sales[0].occurred_at.timestamp()) == 1705100010


async def test_resolve_fetches_the_receipt_of_a_sale(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1, quantity=5)
    driver = shop.driver()
    await driver.list_products()  # the sandbox learns its address from the API calls
    receipt = await shop.sandbox.simulate_sale("SKU-000001", 2)
    assert receipt is not None
    path = f"/v3/application/shops/{SHOP_ID}/receipts/{receipt['receipt_id']}"
    body = json.dumps(
        {
            "event_type": "order.paid",
            "resource_url": f"{shop.server.base_url}{path}",
            "shop_id": SHOP_ID,
        }
    ).encode()
    request = delivery(body, secrets=(shop.sandbox.webhook_secret,))

    await driver.verify_webhook(request)
    assert driver.parse_webhook(request) == []  # nothing is fetched at ingest
    [sale] = await driver.resolve_webhook(request)

    assert (sale.quantity, sale.order_id, sale.listing.remote_sku) == (
        2,
        str(receipt["receipt_id"]),
        "SKU-000001",
    )
    assert sale.listing.remote_id == f"{shop.sandbox.listing_id('SKU-000001')}:sku:SKU-000001"
    assert shop.sandbox.stats.receipt_gets == 1


async def test_resolve_never_calls_a_foreign_host() -> None:
    hits: list[str] = []

    async def anything(request: Request) -> JSONResponse:
        hits.append(request.url.path)
        return JSONResponse(load("receipt.json"))

    foreign = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])
    async with serve_app(foreign) as attacker, httpx.AsyncClient(trust_env=False) as http:
        ctx = make_context(
            http,
            base_url=None,  # the real Etsy API
            credentials={
                "keystring": "k",
                "shared_secret": "s",
                "refresh_token": "r",
                "webhook_secret": SECRET,
            },
            settings={"shop_id": SHOP_ID, "token_url": f"{attacker.base_url}/token"},
        )
        driver = create_driver(ctx)
        body = json.dumps(
            {
                "event_type": "order.paid",
                "resource_url": f"{attacker.base_url}/v3/application/shops/{SHOP_ID}/receipts/1",
                "shop_id": SHOP_ID,
            }
        ).encode()
        request = delivery(body)
        await driver.verify_webhook(request)
        driver.parse_webhook(request)  # well-formed: stored, then refused when processed

        with pytest.raises(WebhookPayloadError, match="outside the Etsy API"):
            await driver.resolve_webhook(request)

    assert hits == []  # not even the token endpoint was asked
