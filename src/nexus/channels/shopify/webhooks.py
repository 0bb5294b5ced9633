"""Shopify webhook deliveries: verify the HMAC, read the headers, turn bodies into inbound events.

Shopify signs the raw body: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(app client secret, body)).
Newer deliveries also carry the headers without the `X-` prefix (`shopify-hmac-sha256` ...); both
spellings are accepted (WebhookRequest headers are lower-cased already).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from nexus.channels.shopify.normalize import numeric_id
from nexus.channels.wire import parse_timestamp, verify_base64_hmac_sha256
from nexus.drivers.contract import (
    InboundEvent,
    ListingRef,
    ObservedLevel,
    SaleEvent,
    WebhookMeta,
    WebhookRequest,
)
from nexus.errors import WebhookPayloadError, WebhookSignatureError

TOPIC_ORDERS_CREATE = "orders/create"
TOPIC_INVENTORY_LEVELS_UPDATE = "inventory_levels/update"


def _header(request: WebhookRequest, name: str) -> str | None:
    """`name` without prefix, e.g. "topic": tries x-shopify-topic, then shopify-topic."""
    prefixed, bare = _spellings(name)
    headers = request.headers
    value = headers.get(prefixed)
    if value is None:
        value = headers.get(bare)
    return value.strip() or None if value is not None else None


@functools.cache
def _spellings(name: str) -> tuple[str, str]:
    # Made once per name: a header name built on every lookup is a new string to hash each time.
    return f"x-shopify-{name}", f"shopify-{name}"


def compute_hmac(secret: str, body: bytes) -> str:
    """What Shopify puts in X-Shopify-Hmac-Sha256 for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(request: WebhookRequest, secret: str | None) -> None:
    """Raise WebhookSignatureError unless the body carries Shopify's signature for `secret`."""
    if not secret:
        raise WebhookSignatureError("no webhook secret configured for this Shopify channel")
    received = _header(request, "hmac-sha256")
    if received is None:
        raise WebhookSignatureError("missing X-Shopify-Hmac-Sha256 header")
    verify_base64_hmac_sha256(request.body, secret, received, "X-Shopify-Hmac-Sha256")


@functools.lru_cache(maxsize=256)
def normalize_topic(topic: str) -> str:
    """ "orders/create" stays; the enum spelling "ORDERS_CREATE" becomes "orders/create"."""
    topic = topic.strip().lower()
    if "/" not in topic and "_" in topic:
        resource, _, action = topic.rpartition("_")
        topic = f"{resource}/{action}"
    return topic


def _topic(request: WebhookRequest) -> str:
    topic = _header(request, "topic")
    if topic is None:
        raise WebhookPayloadError("missing X-Shopify-Topic header")
    return normalize_topic(topic)


def describe(request: WebhookRequest) -> WebhookMeta:
    return WebhookMeta(
        topic=_topic(request),
        delivery_id=_header(request, "webhook-id"),
        event_id=_header(request, "event-id"),
    )


def parse(request: WebhookRequest, *, location_id: str | None) -> list[InboundEvent]:
    """Inbound events of one delivery. `location_id` (numeric) filters inventory levels; None keeps all."""
    topic = _topic(request)
    if topic not in (TOPIC_ORDERS_CREATE, TOPIC_INVENTORY_LEVELS_UPDATE):
        return []
    body = request.json()
    if not isinstance(body, Mapping):
        raise WebhookPayloadError(f"{topic} body is not a JSON object")
    if topic == TOPIC_ORDERS_CREATE:
        return list(_order_sales(body))
    level = _inventory_level(body, location_id)
    return [level] if level is not None else []


def _order_sales(order: Mapping[str, Any]) -> list[SaleEvent]:
    order_id = _id(order.get("id"), "order id")
    lines = order.get("line_items")
    if not isinstance(lines, list):
        raise WebhookPayloadError("orders/create body has no line_items list")
    occurred_at = parse_timestamp(order.get("created_at"))
    sales: list[SaleEvent] = []
    for line in lines:
        if not isinstance(line, Mapping):
            raise WebhookPayloadError("orders/create line item is not an object")
        variant_id = line.get("variant_id")
        sku = line.get("sku")
        sku = sku.strip() if isinstance(sku, str) and sku.strip() else None
        if variant_id is None and sku is None:
            continue  # custom line items (no variant, no SKU) hold no stock Nexus manages
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise WebhookPayloadError(f"orders/create line item quantity is not a count: {quantity!r}")
        if quantity == 0:
            continue
        sales.append(
            SaleEvent(
                listing=ListingRef(
                    remote_id=_id(variant_id, "variant_id") if variant_id is not None else None,
                    remote_sku=sku,
                ),
                quantity=quantity,
                order_id=order_id,
                line_id=_id(line.get("id"), "line item id"),
                occurred_at=occurred_at,
            )
        )
    return sales


def _inventory_level(body: Mapping[str, Any], location_id: str | None) -> ObservedLevel | None:
    item_id = _id(body.get("inventory_item_id"), "inventory_item_id")
    level_location = _id(body.get("location_id"), "location_id")
    available = body.get("available")
    if available is None:
        return None  # the item is not tracked (or was disconnected): no level to observe
    if isinstance(available, bool) or not isinstance(available, int):
        raise WebhookPayloadError(f"inventory_levels/update available is not an integer: {available!r}")
    if location_id is not None and level_location != location_id:
        return None
    return ObservedLevel(
        listing=ListingRef(inventory_id=item_id),
        quantity=available,
        observed_at=parse_timestamp(body.get("updated_at")),
    )


def _id(value: object, what: str) -> str:
    try:
        return numeric_id(value)
    except ValueError as exc:
        raise WebhookPayloadError(f"{what} is not a Shopify id: {value!r}") from exc
