"""The webhook tests' channel, a `nexus.testing.MemoryChannel`, and helpers to build signed deliveries.

The `testhmac` driver signs like most channels do: `X-Test-Signature` is
base64(HMAC-SHA256(secret, raw body)), with the secret from the channel's credentials. Its body is

    {"sales":  [{"remote_id": "R1", "quantity": 2, "order_id": "O1", "line_id": "L1"}],
     "levels": [{"remote_id": "R1", "quantity": 7, "observed_at": "2026-01-01T00:00:00+00:00"}]}

for topic "stock" (the default); any other topic carries nothing Nexus reads (parse returns []),
like the topics a real channel sends that no driver handles.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from nexus.config import NexusSettings
from nexus.drivers.contract import ChannelContext, InboundEvent, WebhookRequest
from nexus.drivers.dto import PushResult
from nexus.engine import Nexus
from nexus.errors import WebhookPayloadError
from nexus.storage.models import ChannelMapping, Item, WebhookLog
from nexus.testing import MemoryChannel, signed_headers
from nexus.testing import sign as memory_sign
from nexus.web import create_app
from nexus.webhooks.processor import WebhookProcessor

SECRET = "testhmac-secret"
DRIVER = "testhmac"
CHANNEL = "hooks"
OTHER = "other"
LIMIT = 2048
PREFIX = "X-Test"


def sign(body: bytes, secret: str = SECRET) -> str:
    return memory_sign(body, secret)


class HmacTestDriver(MemoryChannel):
    """A Shopify-like MemoryChannel (compare-and-set, orders and levels, precise stamps) that
    acknowledges every push, with the processing tests' switches: refuse or blow up when the
    stored row is parsed, and topic "boom", a driver bug. Counts the stock deliveries it parses."""

    name = DRIVER
    header_prefix = PREFIX

    def __init__(self, ctx: ChannelContext) -> None:
        super().__init__(
            ctx,
            max_batch_size=50,
            compare_and_set=True,
            stamp_precision=1e-6,
            reads_levels=False,
            secret=ctx.credentials.get("secret", ""),
        )
        self.plan = lambda update: PushResult.ok(update.listing_id, update.quantity)
        self.refuse_on_processing = False
        self.crash_on_processing = False
        self.parsed = 0

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
        return super().parse_webhook(request)

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
    headers = signed_headers(
        body,
        secret=secret,
        prefix=PREFIX,
        topic=topic,
        delivery_id=delivery_id,
        event_id=event_id,
        signature=signature,
    )
    headers["Content-Type"] = content_type
    if not signed:
        del headers[f"{PREFIX}-Signature"]
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
