"""SP-API notifications (the JSON inside an SNS `Message`) to inbound events.

Envelope (schemas/notifications/*.json): `{"NotificationVersion", "NotificationType",
"PayloadVersion", "EventTime", "Payload": {...}, "NotificationMetadata": {"ApplicationId",
"SubscriptionId", "PublishTime", "NotificationId"}}`.

LISTINGS_ITEM_MFN_QUANTITY_CHANGE is delivered through Amazon EventBridge only; a rule that targets
an SNS topic publishes the EventBridge event, whose `detail` is the notification. ORDER_CHANGE
is delivered through SQS only, so it reaches an SNS topic only when the merchant forwards it (a
Lambda, a pipe); it then arrives bare. Both forms are read.

- LISTINGS_ITEM_MFN_QUANTITY_CHANGE: `Payload {SellerId, FulfillmentChannelCode, Sku, Quantity}`
  -> ObservedLevel of that SKU, stamped with EventTime.
- ORDER_CHANGE: `Payload.OrderChangeNotification {SellerId, AmazonOrderId, Summary {OrderStatus,
  FulfillmentType, PurchaseDate, OrderItems[] {OrderItemId, SellerSKU, Quantity}}}` -> one
  SaleEvent per merchant-fulfilled order item. The same order is notified at every status
  change; the sale's key (order id, order item id) makes the repeats book nothing. Canceled
  orders book nothing (the level notification brings the units back).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nexus.channels.wire import parse_timestamp
from nexus.drivers.contract import InboundEvent, ListingRef, ObservedLevel, SaleEvent
from nexus.errors import WebhookPayloadError

MFN_QUANTITY_CHANGE = "LISTINGS_ITEM_MFN_QUANTITY_CHANGE"
ORDER_CHANGE = "ORDER_CHANGE"
_NO_SALE_STATUSES = frozenset({"Canceled", "Unfulfillable"})


def load_notification(message: object) -> Mapping[str, Any]:
    """The SP-API notification inside an SNS `Message` string (bare or in an EventBridge event)."""
    if not isinstance(message, str):
        raise WebhookPayloadError("SNS Message is not a string")
    try:
        payload = json.loads(message)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise WebhookPayloadError(f"SNS Message is not JSON: {exc}") from exc
    if isinstance(payload, Mapping) and "detail-type" in payload:
        payload = payload.get("detail")
    if not isinstance(payload, Mapping) or not isinstance(payload.get("NotificationType"), str):
        raise WebhookPayloadError("SNS Message is not an SP-API notification")
    return payload


def notification_id(notification: Mapping[str, Any]) -> str | None:
    metadata = notification.get("NotificationMetadata")
    value = metadata.get("NotificationId") if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) and value else None


def events(
    notification: Mapping[str, Any], *, seller_id: str, fulfillment_channel_code: str
) -> list[InboundEvent]:
    kind = notification.get("NotificationType")
    payload = notification.get("Payload")
    if not isinstance(payload, Mapping):
        raise WebhookPayloadError(f"{kind} has no Payload object")
    if kind == MFN_QUANTITY_CHANGE:
        return _quantity_change(notification, payload, seller_id, fulfillment_channel_code)
    if kind == ORDER_CHANGE:
        return _order_change(payload, seller_id)
    return []


def _quantity_change(
    notification: Mapping[str, Any], payload: Mapping[str, Any], seller_id: str, code: str
) -> list[InboundEvent]:
    sku = payload.get("Sku")
    quantity = payload.get("Quantity")
    if not isinstance(sku, str) or not sku:
        raise WebhookPayloadError(f"{MFN_QUANTITY_CHANGE} has no Sku")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise WebhookPayloadError(f"{MFN_QUANTITY_CHANGE} Quantity is not an integer: {quantity!r}")
    if payload.get("SellerId") != seller_id or payload.get("FulfillmentChannelCode") != code:
        return []  # another seller's listing, or a fulfilment channel Nexus does not manage
    return [
        ObservedLevel(
            listing=ListingRef(inventory_id=sku, remote_id=sku, remote_sku=sku),
            quantity=quantity,
            observed_at=parse_timestamp(notification.get("EventTime")),
        )
    ]


def _order_change(payload: Mapping[str, Any], seller_id: str) -> list[InboundEvent]:
    change = payload.get("OrderChangeNotification")
    if not isinstance(change, Mapping):
        raise WebhookPayloadError(f"{ORDER_CHANGE} has no OrderChangeNotification")
    order_id = change.get("AmazonOrderId")
    summary = change.get("Summary")
    if not isinstance(order_id, str) or not order_id or not isinstance(summary, Mapping):
        raise WebhookPayloadError(f"{ORDER_CHANGE} lacks AmazonOrderId or Summary")
    if change.get("SellerId") != seller_id or summary.get("FulfillmentType") != "MFN":
        return []  # Amazon-fulfilled (FBA) stock is Amazon's, not a level Nexus pushes
    status = summary.get("OrderStatus")
    if not isinstance(status, str):  # a list or an object would raise TypeError (unhashable) below
        raise WebhookPayloadError(f"{ORDER_CHANGE} OrderStatus is not a string: {status!r}")
    if status in _NO_SALE_STATUSES:
        return []
    items = summary.get("OrderItems")
    if not isinstance(items, list):
        raise WebhookPayloadError(f"{ORDER_CHANGE} Summary has no OrderItems list")
    occurred_at = parse_timestamp(summary.get("PurchaseDate"))
    sales: list[InboundEvent] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise WebhookPayloadError(f"{ORDER_CHANGE} order item is not an object")
        sku, line_id, quantity = item.get("SellerSKU"), item.get("OrderItemId"), item.get("Quantity")
        if not isinstance(sku, str) or not sku or not isinstance(line_id, str) or not line_id:
            raise WebhookPayloadError(f"{ORDER_CHANGE} order item lacks SellerSKU or OrderItemId")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise WebhookPayloadError(f"{ORDER_CHANGE} order item Quantity is not a count: {quantity!r}")
        if quantity == 0:
            continue
        sales.append(
            SaleEvent(
                listing=ListingRef(inventory_id=sku, remote_id=sku, remote_sku=sku),
                quantity=quantity,
                order_id=order_id,
                line_id=line_id,
                occurred_at=occurred_at,
            )
        )
    return sales
