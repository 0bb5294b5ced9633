"""Etsy webhook deliveries: Standard Webhooks signatures, thin `order.paid` bodies, receipts.

Signing (Standard Webhooks spec, standard-webhooks/standard-webhooks `spec/standard-webhooks.md`;
Etsy's own page names the headers, the scheme comes from the spec its deliveries follow):

    webhook-id         one id per message, the same on every retry (Nexus' delivery id)
    webhook-timestamp  unix seconds of this attempt; refused more than 5 minutes from now
    webhook-signature  space-separated "v1,<base64>" entries: several while a secret rotates;
                       any one that matches passes (compared in constant time)
    signed content     "{webhook-id}.{webhook-timestamp}.{raw body}"
    key                base64-decode(secret without its "whsec_" prefix), HMAC-SHA256

Bodies are thin: `{"event_type": "order.paid", "resource_url": ".../shops/{shop}/receipts/{id}",
"shop_id": 42}`. Parsing at ingest only checks that shape; the driver's `resolve_webhook` fetches
the receipt, after checking that `resource_url` points at the configured API (an attacker who
could sign would otherwise make Nexus call any URL: SSRF).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from nexus.channels.etsy.inventory import SKU_KEY, ProductRef, sku_of, transaction_values_key
from nexus.drivers.contract import InboundEvent, ListingRef, SaleEvent, WebhookMeta, WebhookRequest
from nexus.errors import WebhookPayloadError, WebhookSignatureError

# Etsy documents order.paid; order.canceled / .shipped / .delivered are named by third-party
# descriptions. None of the others moves stock that Nexus tracks: they are stored, not applied.
ORDER_PAID = "order.paid"
SECRET_PREFIX = "whsec_"
_RECEIPT_PATH = re.compile(r"/v3/application/shops/(?P<shop>\d+)/receipts/(?P<receipt>\d+)/?")


def signing_key(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        # Unpadded base64 is common in secrets copied by hand; extra padding is ignored.
        key = base64.b64decode(encoded + "==")
    except (binascii.Error, ValueError) as exc:
        raise WebhookSignatureError("the webhook secret is not base64 after its whsec_ prefix") from exc
    if not key:
        raise WebhookSignatureError("the webhook secret is empty")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` entry for `webhook-signature`."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    request: WebhookRequest,
    secret: str | None,
    *,
    tolerance: float,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raise WebhookSignatureError unless one `v1` signature matches and the timestamp is recent."""
    if not secret:
        raise WebhookSignatureError("no webhook secret configured for this Etsy channel")
    webhook_id = request.header("webhook-id")
    timestamp_text = request.header("webhook-timestamp")
    signatures = request.header("webhook-signature")
    if not webhook_id or not timestamp_text or not signatures:
        raise WebhookSignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(timestamp_text.strip())
        skew = abs(clock() - timestamp)  # OverflowError: more digits than a float holds
    except (ValueError, OverflowError) as exc:
        raise WebhookSignatureError("webhook-timestamp is not unix seconds") from exc
    if skew > tolerance:
        # Outside the window a captured delivery could be replayed: refuse it, however well signed.
        raise WebhookSignatureError("webhook-timestamp is more than the tolerance away from now")
    content = f"{webhook_id}.{timestamp}.".encode() + request.body
    expected = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    matched = False
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue  # v1a (asymmetric) and future schemes: not what Etsy sends
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        # No early exit: every entry costs the same whether or not an earlier one matched.
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise WebhookSignatureError("no webhook-signature entry matches the body")


def body_of(request: WebhookRequest) -> Mapping[str, Any]:
    body = request.json()
    if not isinstance(body, Mapping):
        raise WebhookPayloadError("Etsy webhook body is not a JSON object")
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise WebhookPayloadError("Etsy webhook body has no event_type")
    return body


def topic(body: Mapping[str, Any]) -> str:
    """ "order.paid"; the enum spelling in Etsy's docs ("ORDER_PAID") reads the same."""
    name = str(body["event_type"]).strip().lower()
    return name.replace("_", ".", 1) if "." not in name else name


def describe(request: WebhookRequest) -> WebhookMeta:
    return WebhookMeta(topic=topic(body_of(request)), delivery_id=request.header("webhook-id") or None)


def check(request: WebhookRequest) -> None:
    """Refuse (400) a body Etsy would never send; nothing is fetched at ingest."""
    body = body_of(request)
    if topic(body) == ORDER_PAID:
        resource_url = body.get("resource_url")
        try:
            path = urlsplit(resource_url).path if isinstance(resource_url, str) else ""
        except ValueError:  # "http://[::1/...", a netloc NFKC normalisation changes
            path = ""
        if not _RECEIPT_PATH.search(path):
            raise WebhookPayloadError(f"order.paid resource_url is not a receipt URL: {resource_url!r}")


@dataclass(frozen=True, slots=True)
class ReceiptLocation:
    shop_id: int
    receipt_id: int

    @property
    def path(self) -> str:
        return f"/v3/application/shops/{self.shop_id}/receipts/{self.receipt_id}"


def receipt_location(
    resource_url: object, *, base_url: str, allowed_hosts: Sequence[str], shop_id: int
) -> ReceiptLocation:
    """Where the receipt is, or WebhookPayloadError when `resource_url` leaves the Etsy API.

    The receipt is then fetched from `base_url` + the path rebuilt from the two ids, never from
    the URL as given: nothing of the delivery but two integers reaches the request."""
    if not isinstance(resource_url, str):
        raise WebhookPayloadError("order.paid has no resource_url")
    try:
        parts = urlsplit(resource_url)
    except ValueError as exc:
        raise WebhookPayloadError(f"resource_url is not a URL: {resource_url!r}") from exc
    base = urlsplit(base_url)
    if parts.scheme != base.scheme or parts.netloc.lower() not in allowed_hosts:
        raise WebhookPayloadError(f"resource_url points outside the Etsy API: {resource_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise WebhookPayloadError(f"resource_url carries more than a receipt path: {resource_url!r}")
    prefix = base.path.rstrip("/")
    path = parts.path
    if prefix and not path.startswith(prefix + "/"):
        raise WebhookPayloadError(f"resource_url is not under the configured API path: {resource_url!r}")
    match = _RECEIPT_PATH.fullmatch(path[len(prefix) :])
    if match is None:
        raise WebhookPayloadError(f"resource_url is not a receipt URL: {resource_url!r}")
    if int(match["shop"]) != shop_id:
        raise WebhookPayloadError(f"resource_url names shop {match['shop']}, this channel is shop {shop_id}")
    return ReceiptLocation(int(match["shop"]), int(match["receipt"]))


def receipt_sales(receipt: Mapping[str, Any]) -> list[InboundEvent]:
    """One SaleEvent per transaction of a paid receipt (order = receipt, line = transaction)."""
    receipt_id = receipt.get("receipt_id")
    transactions = receipt.get("transactions")
    if not isinstance(receipt_id, int) or not isinstance(transactions, list):
        raise WebhookPayloadError("Etsy receipt has no receipt_id or no transactions list")
    sales: list[InboundEvent] = []
    for transaction in transactions:
        if not isinstance(transaction, Mapping):
            raise WebhookPayloadError("Etsy receipt transaction is not an object")
        quantity = transaction.get("quantity")
        transaction_id = transaction.get("transaction_id")
        listing_id = transaction.get("listing_id")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise WebhookPayloadError(f"Etsy transaction quantity is not a count: {quantity!r}")
        if not isinstance(transaction_id, int):
            raise WebhookPayloadError(f"Etsy transaction id is not an integer: {transaction_id!r}")
        if quantity == 0 or not isinstance(listing_id, int):
            continue  # a listing-less transaction (custom order) holds no stock Nexus manages
        sku = sku_of(transaction)
        values = ProductRef(listing_id, transaction_values_key(transaction)).remote_id
        sales.append(
            SaleEvent(
                listing=ListingRef(
                    inventory_id=values,
                    remote_id=ProductRef(listing_id, f"{SKU_KEY}:{sku}").remote_id if sku else values,
                    remote_sku=sku,
                ),
                quantity=quantity,
                order_id=str(receipt_id),
                line_id=str(transaction_id),
                occurred_at=_timestamp(transaction.get("paid_timestamp") or receipt.get("created_timestamp")),
            )
        )
    return sales


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, ValueError, OSError):  # beyond year 9999, or inf
            return None
    return None
