"""Webhooks of the generic REST channel: an HMAC of the raw body in a header, a topic from a header
or a path in the body, and sales / levels read from the events through the configured paths."""

from __future__ import annotations

import base64
import hashlib
import hmac

from nexus.channels.rest import paths
from nexus.channels.rest.normalize import text
from nexus.channels.rest.settings import WebhookSettings
from nexus.drivers.contract import (
    InboundEvent,
    ListingRef,
    ObservedLevel,
    SaleEvent,
    WebhookMeta,
    WebhookRequest,
)
from nexus.errors import WebhookPayloadError, WebhookSignatureError


def verify(request: WebhookRequest, webhook: WebhookSettings, secret: str) -> None:
    given = request.header(webhook.signature_header)
    if not given:
        raise WebhookSignatureError(f"missing {webhook.signature_header}")
    digest = hmac.new(secret.encode(), request.body, getattr(hashlib, webhook.algorithm)).digest()
    encoded = digest.hex() if webhook.encoding == "hex" else base64.b64encode(digest).decode()
    if not hmac.compare_digest(given.strip().encode(), f"{webhook.signature_prefix}{encoded}".encode()):
        raise WebhookSignatureError("signature does not match")


def describe(request: WebhookRequest, webhook: WebhookSettings) -> WebhookMeta:
    topic: object = request.header(webhook.topic_header) if webhook.topic_header else None
    if topic is None and webhook.topic_path is not None:
        topic = paths.get(request.json(), webhook.topic_path)
    if not isinstance(topic, str) or not topic:
        raise WebhookPayloadError("the delivery does not say what happened (no topic)")
    delivery = request.header(webhook.delivery_id_header) if webhook.delivery_id_header else None
    return WebhookMeta(topic=topic, delivery_id=delivery)


def parse(request: WebhookRequest, webhook: WebhookSettings) -> list[InboundEvent]:
    topic = describe(request, webhook).topic
    if topic not in webhook.sale_topics and topic not in webhook.level_topics:
        return []
    document = request.json()
    found = paths.get(document, webhook.events_path)
    entries = found if webhook.events_path else [found]
    if not isinstance(entries, list):
        raise WebhookPayloadError(f"no list at events_path {webhook.events_path!r}")
    events: list[InboundEvent] = []
    for position, entry in enumerate(entries):
        sku = text(paths.get(entry, webhook.sku_path))
        quantity = paths.get(entry, webhook.quantity_path)
        if sku is None or not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise WebhookPayloadError(f"event {position} has no SKU or no whole quantity >= 0")
        listing = ListingRef(remote_sku=sku)
        if topic in webhook.sale_topics:
            event_id = text(paths.get(entry, webhook.event_id_path)) or text(
                paths.get(document, webhook.event_id_path)
            )
            if event_id is None:
                raise WebhookPayloadError(f"sale {position} has no id at {webhook.event_id_path!r}")
            events.append(SaleEvent(listing, quantity, order_id=event_id, line_id=f"{position}:{sku}"))
        else:
            events.append(ObservedLevel(listing, quantity))
    return events
