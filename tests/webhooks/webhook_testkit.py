"""A small real driver for webhook tests, and helpers to build signed deliveries.

The `testhmac` driver signs like most channels do: `X-Test-Signature` is
base64(HMAC-SHA256(secret, raw body)), with the secret from the channel's credentials. Its body is

    {"sales":  [{"remote_id": "R1", "quantity": 2, "order_id": "O1", "line_id": "L1"}],
     "levels": [{"remote_id": "R1", "quantity": 7, "observed_at": "2026-01-01T00:00:00+00:00"}]}

for topic "stock" (the default); any other topic carries nothing Nexus reads (parse returns []),
like the topics a real channel sends that no driver handles.

A plain module with a unique name (not conftest.py): tests/web adds this directory to sys.path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from nexus.config import NexusSettings
from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    ListingRef,
    ObservedLevel,
    RateLimitConfig,
    SaleEvent,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, Page, PushResult
from nexus.engine import Nexus
from nexus.errors import WebhookPayloadError, WebhookSignatureError
from nexus.storage.models import ChannelMapping, Item, WebhookLog
from nexus.web import create_app
from nexus.webhooks.processor import WebhookProcessor

SECRET = "testhmac-secret"
DRIVER = "testhmac"
CHANNEL = "hooks"
OTHER = "other"
LIMIT = 2048


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class HmacTestDriver(InventoryDriver):
    name = DRIVER

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.secret = ctx.credentials.get("secret", "")
        # A Shopify-like channel (compare-and-set, orders and levels) with precise stamps.
        self.capabilities = DriverCapabilities(max_batch_size=50, compare_and_set=True, stamp_precision=1e-6)
        self.pushed: list[NexusInventoryUpdate] = []
        # Switches for the processing tests: refuse or blow up when the stored row is parsed.
        self.refuse_on_processing = False
        self.crash_on_processing = False
        self.parsed = 0

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        raise NotImplementedError

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        return Page(items=[])

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        self.pushed.extend(updates)
        return [PushResult.ok(update.listing_id, update.quantity) for update in updates]

    def rate_limit_config(self) -> RateLimitConfig:
        return RateLimitConfig(1000, 1000)

    async def verify_webhook(self, request: WebhookRequest) -> None:
        received = request.header("x-test-signature")
        if not received:
            raise WebhookSignatureError("missing X-Test-Signature header")
        try:
            digest = base64.b64decode(received, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WebhookSignatureError("X-Test-Signature is not base64") from exc
        expected = hmac.new(self.secret.encode(), request.body, hashlib.sha256).digest()
        if not self.secret or not hmac.compare_digest(digest, expected):
            raise WebhookSignatureError("X-Test-Signature does not match the body")

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        return WebhookMeta(
            topic=request.header("x-test-topic") or "stock",
            delivery_id=request.header("x-test-delivery-id"),
            event_id=request.header("x-test-event-id"),
        )

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        topic = self.describe_webhook(request).topic
        if topic == "boom":
            raise RuntimeError("driver bug")
        if topic != "stock":
            return []
        if self.parsed_at_processing(request):
            if self.crash_on_processing:
                raise RuntimeError("driver bug while processing")
            if self.refuse_on_processing:
                raise WebhookPayloadError("refused on processing")
        self.parsed += 1
        try:
            body = json.loads(request.body)
            if not isinstance(body, dict):
                raise WebhookPayloadError("body is not a JSON object")
            events: list[InboundEvent] = [
                SaleEvent(
                    listing=ListingRef(remote_id=str(sale["remote_id"])),
                    quantity=int(sale["quantity"]),
                    order_id=str(sale["order_id"]),
                    line_id=str(sale["line_id"]),
                )
                for sale in body.get("sales", [])
            ]
            events.extend(
                ObservedLevel(
                    listing=ListingRef(remote_id=str(level["remote_id"])),
                    quantity=int(level["quantity"]),
                    # (unstamped in the body: stamped when the delivery was received)
                    observed_at=datetime.fromisoformat(level["observed_at"])
                    if level.get("observed_at")
                    else request.received_at,
                )
                for level in body.get("levels", [])
            )
        except WebhookPayloadError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookPayloadError(f"not a testhmac body: {exc}") from exc
        return events

    @staticmethod
    def parsed_at_processing(request: WebhookRequest) -> bool:
        # Stored headers have the signature masked; live ones carry it.
        return request.header("x-test-signature") == "***"


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def delivery(
    payload: Mapping[str, Any] | bytes,
    *,
    delivery_id: str | None = None,
    event_id: str | None = None,
    topic: str | None = None,
    secret: str = SECRET,
    signature: str | None = None,
    signed: bool = True,
    content_type: str = "application/json",
    extra: Mapping[str, str] | None = None,
) -> Delivery:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": content_type}
    if signed:
        headers["X-Test-Signature"] = signature if signature is not None else sign(body, secret)
    if topic is not None:
        headers["X-Test-Topic"] = topic
    if delivery_id is not None:
        headers["X-Test-Delivery-Id"] = delivery_id
    if event_id is not None:
        headers["X-Test-Event-Id"] = event_id
    headers.update(extra or {})
    return Delivery(body, headers)


def sale(
    remote_id: str = "R1", quantity: int = 1, order_id: str = "O1", line_id: str = "L1"
) -> dict[str, Any]:
    return {
        "sales": [{"remote_id": remote_id, "quantity": quantity, "order_id": order_id, "line_id": line_id}]
    }


def level(remote_id: str = "R1", quantity: int = 7, observed_at: str | None = None) -> dict[str, Any]:
    return {"levels": [{"remote_id": remote_id, "quantity": quantity, "observed_at": observed_at}]}


def channels(**extra: Any) -> dict[str, Any]:
    base = {"driver": DRIVER, "credentials": {"secret": SECRET}, "webhook_max_bytes": LIMIT}
    return {CHANNEL: {**base, **extra}, OTHER: dict(base)}


@dataclass
class Hub:
    """A migrated Nexus with the testhmac driver, two channels and an app."""

    nexus: Nexus
    app: FastAPI

    @property
    def path(self) -> str:
        return f"/nexus/webhooks/{CHANNEL}"

    @property
    def processor(self) -> WebhookProcessor:
        processor: WebhookProcessor = self.app.state.webhook_processor
        return processor

    def driver(self, channel: str = CHANNEL) -> HmacTestDriver:
        driver = self.nexus.channel(channel).driver
        assert isinstance(driver, HmacTestDriver)
        return driver

    async def seed(
        self, sku: str = "SKU-1", on_hand: int = 10, remote_ids: Mapping[str, str] | None = None
    ) -> None:
        """One item listed on both channels, in sync (remote = pushed = desired = on_hand)."""
        remote_ids = remote_ids or {CHANNEL: "R1", OTHER: "X1"}
        async with self.nexus.db.transaction() as session:
            session.add(Item(sku=sku, title=sku, on_hand=on_hand))
            for channel, remote_id in remote_ids.items():
                session.add(
                    ChannelMapping(
                        syncable_id=sku,
                        sku=sku,
                        channel=channel,
                        remote_id=remote_id,
                        desired_qty=on_hand,
                        pushed_qty=on_hand,
                        remote_qty=on_hand,
                    )
                )

    async def item(self, sku: str = "SKU-1") -> Item:
        async with self.nexus.db.read() as session:
            return (await session.execute(select(Item).where(Item.sku == sku))).scalar_one()

    async def listing(self, channel: str, sku: str = "SKU-1") -> ChannelMapping:
        async with self.nexus.db.read() as session:
            statement = select(ChannelMapping).where(
                ChannelMapping.channel == channel, ChannelMapping.sku == sku
            )
            return (await session.execute(statement)).scalar_one()

    async def logs(self) -> list[WebhookLog]:
        async with self.nexus.db.read() as session:
            return list((await session.execute(select(WebhookLog).order_by(WebhookLog.id))).scalars())

    async def lease(
        self, channel: str, owner: str | None, until: datetime | None, sku: str = "SKU-1"
    ) -> None:
        async with self.nexus.db.transaction() as session:
            statement = select(ChannelMapping).where(
                ChannelMapping.channel == channel, ChannelMapping.sku == sku
            )
            listing = (await session.execute(statement)).scalar_one()
            listing.lease_owner = owner
            listing.lease_until = until


async def build_hub(
    make_nexus: Callable[..., Any], settings: NexusSettings | None = None, **overrides: Any
) -> Hub:
    if settings is None:
        overrides.setdefault("channels", channels())
    nexus: Nexus = await make_nexus(settings, **overrides)
    nexus.extend(DRIVER, HmacTestDriver)
    return Hub(nexus, create_app(nexus))
