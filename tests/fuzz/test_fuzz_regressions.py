"""The failures the webhook fuzzers found, one small deterministic test each (kept after the fix)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest

from nexus.channels.etsy import webhooks as etsy_webhooks
from nexus.channels.shopify import create_driver as create_shopify
from nexus.channels.wire import parse_timestamp
from nexus.channels.woocommerce import create_driver as create_woocommerce
from nexus.drivers.contract import WebhookRequest
from nexus.errors import WebhookPayloadError, WebhookSignatureError
from nexus.webhooks.receiver import _check_json
from tests.channels.amazon.amazon_testkit import sns_request
from tests.channels.etsy.etsy_testkit import load as load_etsy
from tests.channels.shopify.shopify_testkit import delivery, make_context, raw
from tests.channels.woocommerce.woocommerce_testkit import delivery as woo_delivery
from tests.channels.woocommerce.woocommerce_testkit import make_context as woo_context
from tests.channels.woocommerce.woocommerce_testkit import raw as raw_woo


def test_an_iso_time_whose_utc_instant_leaves_the_calendar_is_no_time() -> None:
    # Valid ISO 8601, but 1 January of year 1 at 00:00 +01:00 is in year 0 in UTC: astimezone
    # raised OverflowError, which the receiver answered with a 500.
    assert parse_timestamp("0001-01-01T00:00:00+01:00") is None
    assert parse_timestamp("9999-12-31T23:59:59-01:00") is None
    assert parse_timestamp("2026-11-21T05:00:00-05:00") == datetime(2026, 11, 21, 10, tzinfo=UTC)


def test_a_shopify_delivery_triggered_before_year_one_is_described() -> None:
    driver = create_shopify(make_context(httpx.AsyncClient(), settings={"location_id": 24826418}))
    request = delivery(
        "inventory_levels/update",
        raw("inventory_levels_update.json"),
        extra={"x-shopify-triggered-at": "0001-01-01T00:00:00+01:00"},
    )
    assert driver.describe_webhook(request).topic == "inventory_levels/update"
    [level] = driver.parse_webhook(request)
    assert level.quantity == 8


# -- JSON nested deeper than the decoder recurses: RecursionError, a 500, in every channel --------

DEEP = b"[" * 50_000 + b"]" * 50_000


def _offline() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(599)))


def test_deep_json_is_refused_by_shopify() -> None:
    driver = create_shopify(make_context(_offline(), settings={"location_id": 24826418}))
    request = delivery("orders/create", b'{"id": 1, "line_items": ' + DEEP + b"}")
    with pytest.raises(WebhookPayloadError):
        driver.parse_webhook(request)


def test_deep_json_is_refused_by_woocommerce() -> None:
    driver = create_woocommerce(woo_context(_offline()))
    with pytest.raises(WebhookPayloadError):
        driver.parse_webhook(woo_delivery("order.created", DEEP))


def test_deep_json_is_refused_by_etsy() -> None:
    from tests.fuzz.test_fuzz_etsy import DRIVER, request, signed_headers

    with pytest.raises(WebhookPayloadError):
        DRIVER.describe_webhook(request(DEEP, signed_headers(DEEP)))


async def test_deep_json_is_refused_by_amazon_before_and_after_verification() -> None:
    from tests.fuzz.test_fuzz_amazon import DRIVER, SANDBOX, fields

    unsigned = WebhookRequest("amazon-us", {"content-type": "text/plain"}, DEEP, datetime.now(UTC))
    with pytest.raises(WebhookSignatureError):  # an unauthenticated 500 before the fix
        await DRIVER.verify_webhook(unsigned)
    signed = sns_request(SANDBOX.sns.sign(fields(DEEP.decode())))
    await DRIVER.verify_webhook(signed)
    with pytest.raises(WebhookPayloadError):
        DRIVER.describe_webhook(signed)
    with pytest.raises(WebhookPayloadError):
        DRIVER.parse_webhook(signed)


def test_deep_json_declared_as_json_is_refused_by_the_receiver() -> None:
    request = WebhookRequest("any", {"content-type": "application/json"}, DEEP, datetime.now(UTC))
    with pytest.raises(WebhookPayloadError):
        _check_json(request)


# -- Etsy ------------------------------------------------------------------------------------------


def test_an_etsy_timestamp_too_large_for_a_float_is_refused_not_a_500() -> None:
    from tests.fuzz.test_fuzz_etsy import DRIVER, ORDER_PAID, request, signed_headers

    headers = signed_headers(ORDER_PAID, str(10**400))
    with pytest.raises(WebhookSignatureError):
        asyncio.run(DRIVER.verify_webhook(request(ORDER_PAID, headers)))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/v3/application/shops/10051834/receipts/1",
        "https://openapi.etsy.com\uff0f/v3/application/shops/10051834/receipts/1",
    ],
)
def test_an_etsy_resource_url_urlsplit_refuses_is_a_payload_error(url: str) -> None:
    from tests.fuzz.test_fuzz_etsy import DRIVER, request, signed_headers

    body = json.dumps({"event_type": "order.paid", "resource_url": url, "shop_id": 10051834}).encode()
    with pytest.raises(WebhookPayloadError):
        DRIVER.parse_webhook(request(body, signed_headers(body)))


@pytest.mark.parametrize("stamp", [1e20, 10**30, float("inf")])
def test_an_etsy_receipt_time_out_of_range_is_no_time(stamp: float) -> None:
    receipt = load_etsy("receipt.json")
    receipt["created_timestamp"] = stamp
    for transaction in receipt["transactions"]:
        transaction["paid_timestamp"] = stamp
    sales = etsy_webhooks.receipt_sales(receipt)
    assert sales and all(sale.occurred_at is None for sale in sales)  # type: ignore[union-attr]


# -- a status that is a list or an object: `in frozenset(...)` raised TypeError (unhashable) -------


def test_an_amazon_order_status_that_is_not_a_string_is_refused() -> None:
    from tests.fuzz.test_fuzz_amazon import DRIVER, SANDBOX, _order_change, fields

    body = _order_change()
    body["Payload"]["OrderChangeNotification"]["Summary"]["OrderStatus"] = ["Canceled"]
    request = sns_request(SANDBOX.sns.sign(fields(json.dumps(body))))
    with pytest.raises(WebhookPayloadError):
        DRIVER.parse_webhook(request)


def test_a_woocommerce_order_status_that_is_not_a_string_is_refused() -> None:
    driver = create_woocommerce(woo_context(_offline()))
    order = json.loads(raw_woo("webhook_order_created.json"))
    order["status"] = {"processing": True}
    with pytest.raises(WebhookPayloadError):
        driver.parse_webhook(woo_delivery("order.created", json.dumps(order).encode()))


# -- quantities beyond the 32-bit stock columns are a 400 at ingest, in every channel --------------


@pytest.mark.parametrize("where", ["shopify sale", "shopify level", "rest level"])
def test_quantities_beyond_the_stock_columns_are_refused(where: str) -> None:
    from nexus.drivers.contract import MAX_QUANTITY

    if where.startswith("shopify"):
        driver = create_shopify(make_context(_offline(), settings={"location_id": 24826418}))
        if where == "shopify sale":
            order = json.loads(raw("orders_create.json"))
            order["line_items"][0]["quantity"] = MAX_QUANTITY + 1
            request = delivery("orders/create", json.dumps(order).encode())
        else:
            level = json.loads(raw("inventory_levels_update.json"))
            level["available"] = MAX_QUANTITY + 1
            request = delivery("inventory_levels/update", json.dumps(level).encode())
    else:
        from tests.fuzz.test_fuzz_rest import DRIVER as rest_driver
        from tests.fuzz.test_fuzz_rest import delivery as rest_delivery

        driver = rest_driver  # type: ignore[assignment]
        body = {"type": "stock.changed", "lines": [{"sku": "SKU-000002", "quantity": MAX_QUANTITY + 1}]}
        request = rest_delivery(json.dumps(body).encode())
    with pytest.raises(WebhookPayloadError):
        driver.parse_webhook(request)
