"""Webhook verification, description and parsing with signatures computed the real way."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import httpx
import pytest
from woocommerce_testkit import delivery, load, make_context, ping, raw, sign

from nexus.channels.woocommerce import WooCommerceDriver, create_driver
from nexus.drivers.contract import ListingRef, ObservedLevel, SaleEvent, WebhookRequest
from nexus.errors import WebhookPayloadError, WebhookSignatureError


@pytest.fixture
def driver() -> WooCommerceDriver:
    return create_driver(make_context(httpx.AsyncClient()))


async def test_signed_delivery_is_accepted(driver: WooCommerceDriver) -> None:
    await driver.verify_webhook(delivery("order.created", raw("webhook_order_created.json")))


async def test_tampered_body_is_refused(driver: WooCommerceDriver) -> None:
    body = raw("webhook_order_created.json")
    signed = delivery("order.created", body, signature=sign(body))
    tampered = dataclasses.replace(signed, body=body.replace(b'"quantity":2', b'"quantity":9'))
    with pytest.raises(WebhookSignatureError, match="does not match"):
        await driver.verify_webhook(tampered)


async def test_wrong_secret_and_missing_signature_are_refused(driver: WooCommerceDriver) -> None:
    body = raw("webhook_order_created.json")
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(delivery("order.created", body, secret="other-secret"))
    with pytest.raises(WebhookSignatureError, match="missing"):
        await driver.verify_webhook(delivery("order.created", body, omit=("signature",)))


async def test_the_creation_ping_is_accepted_and_yields_nothing(driver: WooCommerceDriver) -> None:
    request = ping()
    await driver.verify_webhook(request)
    meta = driver.describe_webhook(request)
    assert (meta.topic, meta.delivery_id) == ("ping", "ping:7")
    assert driver.parse_webhook(request) == []


@pytest.mark.parametrize(
    "request_",
    [
        ping(b"webhook_id=7&stock=1"),  # anything beyond the webhook id
        ping(b'{"webhook_id": 7}', {"content-type": "application/json"}),
        ping(b"webhook_id=7", {"x-wc-webhook-topic": "order.created"}),  # a delivery without signature
        ping(b""),
    ],
)
async def test_unsigned_bodies_other_than_the_ping_are_refused(
    driver: WooCommerceDriver, request_: WebhookRequest
) -> None:
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(request_)


def test_same_second_deliveries_of_one_webhook_stay_apart(driver: WooCommerceDriver) -> None:
    # Delivery-ID is wp_hash(webhook id . current second): two product updates can share it.
    first = load("webhook_product_updated_variation.json")
    second = first | {"stock_quantity": 2}
    a = driver.describe_webhook(delivery("product.updated", json.dumps(first).encode()))
    b = driver.describe_webhook(delivery("product.updated", json.dumps(second).encode()))
    assert a.delivery_id != b.delivery_id and a.event_id != b.event_id
    # The same change delivered by a second webhook on the topic is the same event.
    c = driver.describe_webhook(delivery("product.updated", json.dumps(first).encode(), delivery_id="other"))
    assert c.event_id == a.event_id


def test_order_created_line_items_become_sales(driver: WooCommerceDriver) -> None:
    events = driver.parse_webhook(delivery("order.created", raw("webhook_order_created.json")))

    occurred = datetime(2026, 11, 21, 8, 29, 59, tzinfo=UTC)
    assert events == [
        SaleEvent(_ref("794", "PQ-794"), 2, order_id="727", line_id="315", occurred_at=occurred),
        SaleEvent(_ref("801", "SYI-BLK-M"), 1, order_id="727", line_id="316", occurred_at=occurred),
        # line 317 names a deleted product (product_id 0, no SKU): no stock to book
    ]


def test_unpaid_orders_are_not_sales(driver: WooCommerceDriver) -> None:
    order = json.loads(raw("webhook_order_created.json")) | {"status": "pending"}
    assert driver.parse_webhook(delivery("order.created", json.dumps(order).encode())) == []


def test_variation_update_is_an_observed_level(driver: WooCommerceDriver) -> None:
    events = driver.parse_webhook(delivery("product.updated", raw("webhook_product_updated_variation.json")))
    assert events == [
        ObservedLevel(_ref("801", "SYI-BLK-M"), 3, observed_at=datetime(2026, 11, 21, 8, 30, tzinfo=UTC))
    ]


def test_products_without_managed_stock_give_no_level(driver: WooCommerceDriver) -> None:
    assert driver.parse_webhook(delivery("product.updated", raw("product_variable.json"))) == []


def test_malformed_bodies_are_payload_errors(driver: WooCommerceDriver) -> None:
    with pytest.raises(WebhookPayloadError):
        driver.parse_webhook(delivery("order.created", b"not json"))
    bad_line = json.loads(raw("webhook_order_created.json"))
    bad_line["line_items"][0]["quantity"] = "two"
    with pytest.raises(WebhookPayloadError):
        driver.parse_webhook(delivery("order.created", json.dumps(bad_line).encode()))
    with pytest.raises(WebhookPayloadError, match="Topic"):
        driver.describe_webhook(delivery("order.created", b"{}", omit=("topic",)))


def _ref(remote_id: str, sku: str) -> ListingRef:
    return ListingRef(remote_id=remote_id, remote_sku=sku)
