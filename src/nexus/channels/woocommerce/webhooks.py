"""WooCommerce webhook deliveries: verify, describe, parse.

From woocommerce/woocommerce `includes/class-wc-webhook.php` (`deliver`, `deliver_ping`,
`generate_signature`, `get_new_delivery_id`):

- A delivery is a JSON POST with `X-WC-Webhook-Source` (the store's home URL), `-Topic`
  ("order.created"), `-Resource`, `-Event`, `-Signature`, `-ID` (the webhook's id) and
  `-Delivery-ID`. The signature is base64(HMAC-SHA256(webhook secret, raw body)).
- The body is the REST v3 representation of the resource, built when the delivery runs. A
  variation's `product.updated` carries `GET /products/{variation id}`: product-shaped, with
  `type: "variation"` and `parent_id`.
- When a webhook is created WooCommerce sends a ping: form-encoded `webhook_id=<id>` with no
  signature and no X-WC headers; anything but 200 marks the webhook's creation as failed.
- `Delivery-ID` is wp_hash(webhook id . current second): two deliveries of one webhook in the same
  second share it. So it cannot identify a delivery on its own; the body's digest joins it.
- There are no retries: a failed delivery is lost (the level heals on the next product update).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any

from nexus.channels.wire import parse_timestamp, verify_base64_hmac_sha256
from nexus.channels.woocommerce.normalize import managed_quantity, woo_id
from nexus.drivers.contract import (
    InboundEvent,
    ListingRef,
    ObservedLevel,
    SaleEvent,
    WebhookMeta,
    WebhookRequest,
)
from nexus.errors import WebhookPayloadError, WebhookSignatureError

TOPIC_ORDER_CREATED = "order.created"
TOPIC_PRODUCT_UPDATED = "product.updated"
TOPIC_PING = "ping"
SIGNATURE_HEADER = "x-wc-webhook-signature"
# Order statuses in which WooCommerce has taken the units off its stock (wc_maybe_reduce_stock_levels).
DEFAULT_SALE_STATUSES = ("processing", "completed", "on-hold")

_PING_BODY = re.compile(rb"webhook_id=(\d+)")
_FORM_TYPE = "application/x-www-form-urlencoded"


def _header(request: WebhookRequest, name: str) -> str | None:
    value = request.header(f"x-wc-webhook-{name}")
    return value.strip() if value is not None and value.strip() else None


def compute_signature(secret: str, body: bytes) -> str:
    """What WooCommerce puts in X-WC-Webhook-Signature for `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode("ascii")


def ping_webhook_id(request: WebhookRequest) -> str | None:
    """The webhook id when the request is exactly WooCommerce's creation ping, else None.

    Exactly: no signature, no topic, a form body `webhook_id=<digits>` and nothing else."""
    if _header(request, "signature") is not None or _header(request, "topic") is not None:
        return None
    content_type = (request.header("content-type") or _FORM_TYPE).split(";", 1)[0].strip().lower()
    if content_type != _FORM_TYPE:
        return None
    match = _PING_BODY.fullmatch(request.body.strip())
    return match.group(1).decode() if match else None


def verify(request: WebhookRequest, secret: str | None) -> None:
    """Raise WebhookSignatureError unless the delivery is signed with `secret` or is the ping."""
    received = _header(request, "signature")
    if received is None:
        if ping_webhook_id(request) is not None:
            return  # the unsigned creation ping: answered 200 and logged, never processed
        raise WebhookSignatureError("missing X-WC-Webhook-Signature header")
    if not secret:
        raise WebhookSignatureError("no webhook secret configured for this WooCommerce channel")
    verify_base64_hmac_sha256(request.body, secret, received, "X-WC-Webhook-Signature")


def describe(request: WebhookRequest) -> WebhookMeta:
    ping = ping_webhook_id(request)
    if ping is not None:
        return WebhookMeta(topic=TOPIC_PING, delivery_id=f"ping:{ping}")
    topic = _header(request, "topic")
    if topic is None:
        raise WebhookPayloadError("missing X-WC-Webhook-Topic header")
    topic = topic.lower()
    body_digest = hashlib.sha256(request.body).hexdigest()
    event_digest = hashlib.sha256(topic.encode() + b"\n" + request.body).hexdigest()
    delivery = _header(request, "delivery-id")
    return WebhookMeta(
        topic=topic,
        # Delivery-ID repeats within one second for one webhook: the body tells them apart.
        delivery_id=f"{delivery}:{body_digest[:16]}" if delivery else None,
        # WooCommerce has no event id. Two webhooks on one topic deliver the same body for one
        # change: the digest of topic and body makes them one event. An identical body for a
        # "different" event carries no news, so dropping it loses nothing.
        event_id=f"{topic}:{event_digest[:40]}",
    )


def parse(
    request: WebhookRequest, *, sale_statuses: Iterable[str] = DEFAULT_SALE_STATUSES
) -> list[InboundEvent]:
    topic = describe(request).topic
    if topic not in (TOPIC_ORDER_CREATED, TOPIC_PRODUCT_UPDATED):
        return []
    body = request.json()
    if not isinstance(body, Mapping):
        raise WebhookPayloadError(f"{topic} body is not a JSON object")
    if topic == TOPIC_ORDER_CREATED:
        return list(_order_sales(body, frozenset(sale_statuses)))
    level = _observed_level(body)
    return [level] if level is not None else []


def _order_sales(order: Mapping[str, Any], sale_statuses: frozenset[str]) -> list[SaleEvent]:
    order_id = _id(order.get("id"), "order id")
    lines = order.get("line_items")
    if not isinstance(lines, list):
        raise WebhookPayloadError("order.created body has no line_items list")
    status = order.get("status")
    if not isinstance(status, str):  # a list or an object would raise TypeError (unhashable) below
        raise WebhookPayloadError(f"order.created status is not a string: {status!r}")
    if status not in sale_statuses:
        # A pending or failed order has not reduced WooCommerce's stock; if it is paid later the
        # stock change arrives as product.updated.
        return []
    occurred_at = parse_timestamp(order.get("date_created_gmt"))
    sales: list[SaleEvent] = []
    for line in lines:
        if not isinstance(line, Mapping):
            raise WebhookPayloadError("order.created line item is not an object")
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise WebhookPayloadError(f"order.created line item quantity is not a count: {quantity!r}")
        # variation_id is 0 for a simple product; product_id is 0 for a deleted product.
        listing_id = _optional_id(line.get("variation_id")) or _optional_id(line.get("product_id"))
        sku = line.get("sku")
        sku = sku.strip() if isinstance(sku, str) and sku.strip() else None
        if quantity == 0 or (listing_id is None and sku is None):
            continue
        sales.append(
            SaleEvent(
                listing=ListingRef(remote_id=listing_id, remote_sku=sku),
                quantity=quantity,
                order_id=order_id,
                line_id=_id(line.get("id"), "line item id"),
                occurred_at=occurred_at,
            )
        )
    return sales


def _observed_level(product: Mapping[str, Any]) -> ObservedLevel | None:
    product_id = _id(product.get("id"), "product id")
    quantity = managed_quantity(product)
    if quantity is None:
        # Stock not tracked here: a variable parent saved after its variations changed, or a
        # variation whose stock the parent manages.
        return None
    sku = product.get("sku")
    sku = sku.strip() if isinstance(sku, str) and sku.strip() else None
    return ObservedLevel(
        listing=ListingRef(remote_id=product_id, remote_sku=sku),
        quantity=quantity,
        observed_at=parse_timestamp(product.get("date_modified_gmt")),
    )


def _id(value: object, what: str) -> str:
    try:
        return woo_id(value)
    except ValueError as exc:
        raise WebhookPayloadError(f"{what} is not a WooCommerce id: {value!r}") from exc


def _optional_id(value: object) -> str | None:
    if value in (None, 0, "0", ""):
        return None
    return _id(value, "line item product")
