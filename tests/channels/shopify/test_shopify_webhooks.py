"""Webhook verification with real HMACs, header reading, and parsing of the documented bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from shopify_testkit import SECRET, delivery, load, make_context, mock_client, raw

from nexus.channels.shopify import ShopifyDriver, create_driver
from nexus.channels.shopify.webhooks import compute_hmac, normalize_topic
from nexus.drivers.contract import ListingRef, ObservedLevel, SaleEvent
from nexus.errors import WebhookPayloadError, WebhookSignatureError


def offline() -> httpx.AsyncClient:
    """Webhook handling never calls Shopify; any request would fail the test loudly."""
    return mock_client(lambda request: httpx.Response(599))


@pytest.fixture
def driver() -> ShopifyDriver:
    return create_driver(make_context(offline(), settings={"location_id": 24826418}))


async def test_valid_signature_passes(driver: ShopifyDriver) -> None:
    await driver.verify_webhook(delivery("orders/create", raw("orders_create.json")))


async def test_unprefixed_header_names_pass(driver: ShopifyDriver) -> None:
    request = delivery("orders/create", raw("orders_create.json"), prefixed=False)
    await driver.verify_webhook(request)
    meta = driver.describe_webhook(request)
    assert meta.topic == "orders/create"
    assert meta.delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"


async def test_tampered_body_is_refused(driver: ShopifyDriver) -> None:
    body = raw("orders_create.json")
    request = delivery("orders/create", body)
    tampered = type(request)(
        request.channel,
        request.headers,
        body.replace(b'"quantity": 1', b'"quantity": 9'),
        request.received_at,
    )
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(tampered)


async def test_wrong_secret_is_refused(driver: ShopifyDriver) -> None:
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(
            delivery("orders/create", raw("orders_create.json"), secret="someone-else")
        )


async def test_missing_signature_header_is_refused(driver: ShopifyDriver) -> None:
    request = delivery("orders/create", raw("orders_create.json"), omit=("hmac-sha256",))
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(request)


async def test_non_base64_signature_is_refused(driver: ShopifyDriver) -> None:
    request = delivery("orders/create", b"{}", extra={"x-shopify-hmac-sha256": "not base64 at all!"})
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(request)


async def test_channel_without_webhook_secret_refuses_everything() -> None:
    ctx = make_context(offline())
    ctx = type(ctx)(
        ctx.name, ctx.driver, ctx.base_url, {"access_token": "t"}, ctx.settings, ctx.http, ctx.rate
    )
    with pytest.raises(WebhookSignatureError):
        await create_driver(ctx).verify_webhook(delivery("orders/create", b"{}"))


def test_signature_matches_shopify_formula() -> None:
    # base64(HMAC-SHA256(secret, raw body)), checked against a value computed by hand with openssl.
    assert compute_hmac("secret", b'{"id":1}') == "A971iWIMgT8Zj9A9eWfikrFj7wQ16/Qwcc4OlRl2PLc="


def test_describe_reads_topic_and_ids(driver: ShopifyDriver) -> None:
    meta = driver.describe_webhook(delivery("inventory_levels/update", raw("inventory_levels_update.json")))
    assert meta.topic == "inventory_levels/update"
    assert meta.delivery_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert meta.event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_describe_without_topic_is_a_payload_error(driver: ShopifyDriver) -> None:
    with pytest.raises(WebhookPayloadError):
        driver.describe_webhook(delivery("orders/create", b"{}", omit=("topic",)))


def test_topic_enum_spelling_is_normalised() -> None:
    assert normalize_topic("ORDERS_CREATE") == "orders/create"
    assert normalize_topic("INVENTORY_LEVELS_UPDATE") == "inventory_levels/update"
    assert normalize_topic("orders/create") == "orders/create"


def test_orders_create_gives_one_sale_per_line(driver: ShopifyDriver) -> None:
    events = driver.parse_webhook(delivery("orders/create", raw("orders_create.json")))
    occurred = datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    assert events == [
        SaleEvent(
            listing=ListingRef(remote_id="808950810", remote_sku="IPOD2008PINK"),
            quantity=1,
            order_id="820982911946154508",
            line_id="866550311766439020",
            occurred_at=occurred,
        ),
        SaleEvent(
            listing=ListingRef(remote_id="808950810", remote_sku="IPOD2008PINK"),
            quantity=1,
            order_id="820982911946154508",
            line_id="141249953214522974",
            occurred_at=occurred,
        ),
    ]


def test_orders_create_skips_custom_lines_and_keeps_sku_only_lines(driver: ShopifyDriver) -> None:
    order = load("orders_create.json")
    custom, sku_only = order["line_items"]
    custom.update(variant_id=None, sku=None, product_id=None)
    sku_only.update(variant_id=None, quantity=3)
    body = json.dumps(order).encode()

    events = driver.parse_webhook(delivery("orders/create", body))

    assert len(events) == 1
    sale = events[0]
    assert isinstance(sale, SaleEvent)
    assert sale.listing == ListingRef(remote_id=None, remote_sku="IPOD2008PINK")
    assert sale.quantity == 3
    assert sale.line_id == "141249953214522974"


def test_inventory_level_at_our_location(driver: ShopifyDriver) -> None:
    events = driver.parse_webhook(delivery("inventory_levels/update", raw("inventory_levels_update.json")))
    assert events == [
        ObservedLevel(
            listing=ListingRef(inventory_id="271878346596884015"),
            quantity=8,
            observed_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        )
    ]


def test_inventory_level_with_null_available_gives_nothing(driver: ShopifyDriver) -> None:
    assert (
        driver.parse_webhook(delivery("inventory_levels/update", raw("inventory_levels_update_null.json")))
        == []
    )


def test_inventory_level_at_another_location_gives_nothing() -> None:
    other = create_driver(make_context(offline(), settings={"location_id": "gid://shopify/Location/999"}))
    assert other.parse_webhook(delivery("inventory_levels/update", raw("inventory_levels_update.json"))) == []


def test_inventory_level_without_known_location_is_kept() -> None:
    unknown = create_driver(make_context(offline()))
    events = unknown.parse_webhook(delivery("inventory_levels/update", raw("inventory_levels_update.json")))
    assert len(events) == 1


def test_other_topics_give_nothing(driver: ShopifyDriver) -> None:
    assert driver.parse_webhook(delivery("products/update", raw("rest_product.json"))) == []


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        ("orders/create", b"{not json"),
        ("orders/create", b"[1, 2]"),
        ("orders/create", b'{"id": 1}'),
        ("orders/create", b'{"id": 1, "line_items": [{"id": 2, "variant_id": 3, "quantity": "two"}]}'),
        ("orders/create", b'{"id": "abc", "line_items": []}'),
        ("inventory_levels/update", b'{"location_id": 24826418, "available": 1}'),
        ("inventory_levels/update", b'{"inventory_item_id": 1, "location_id": 24826418, "available": "1"}'),
        ("inventory_levels/update", b"\xff\xfe"),
    ],
)
def test_malformed_bodies_are_payload_errors(driver: ShopifyDriver, topic: str, body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        driver.parse_webhook(delivery(topic, body, secret=SECRET))
