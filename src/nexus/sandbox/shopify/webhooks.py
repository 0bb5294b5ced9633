"""Signed webhook delivery, with Shopify's retry policy and injectable faults.

Signing (Shopify "Verify webhook deliveries"; Shopify/shopify-app-js `lib/webhooks/validate.ts`,
`lib/types.ts`): `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(app client secret, raw body)).
Every delivery also carries `X-Shopify-Topic`, `X-Shopify-Shop-Domain`, `X-Shopify-API-Version`,
`X-Shopify-Webhook-Id` (one per delivery, kept across its retries), `X-Shopify-Event-Id` (one
per event, shared by every subscription's delivery of it) and `X-Shopify-Triggered-At`.
Classic webhooks send only the `X-`-prefixed names; the unprefixed `shopify-*` set belongs to
the newer "events" deliveries.

Delivery semantics: at least once. A non-2xx answer or a connection error is retried up to 8
times with exponential backoff (Shopify spreads 8 retries over about 4 hours); `time_scale`
compresses that schedule. Faults: `drop_rate` loses a delivery outright, `duplicate_rate` sends
a delivered one a second time (same webhook id and body), `reorder` adds a small random delay
per delivery and sends them concurrently so they can arrive out of order. The queue, the retry
loop and the faults are `nexus.sandbox.delivery`'s; this module adds what is Shopify's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nexus.sandbox.delivery import DeliveryQueue, Faults, Outgoing, RetryPolicy, Subscriptions
from nexus.sandbox.stats import SandboxStats

MAX_RETRIES = 8
TIMEOUT_SECONDS = 5.0  # Shopify waits five seconds for an answer
USER_AGENT = "Shopify-Captain-Hook"


def retry_policy(first_retry_seconds: float = 60.0) -> RetryPolicy:
    """8 retries, the first after `first_retry_seconds`, each wait doubling."""
    return RetryPolicy.exponential(first_retry_seconds, MAX_RETRIES, timeout=TIMEOUT_SECONDS)


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(slots=True)
class Delivery:
    topic: str
    address: str
    body: bytes
    event_id: str
    triggered_at: str
    webhook_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class WebhookDispatcher(DeliveryQueue[Delivery]):
    def __init__(
        self,
        *,
        shop_domain: str,
        secret: str,
        api_version: str,
        stats: SandboxStats,
        rng: random.Random,
        time_scale: float = 1.0,
        faults: Faults | None = None,
        policy: RetryPolicy | None = None,
        concurrency: int = 1,
    ) -> None:
        super().__init__(
            stats=stats,
            policy=policy or retry_policy(),
            faults=faults,
            rng=rng,
            time_scale=time_scale,
            concurrency=concurrency,
        )
        self._shop_domain = shop_domain
        self._secret = secret
        self._api_version = api_version
        self.subscriptions = Subscriptions()

    def subscribe(self, topic: str, address: str) -> None:
        self.subscriptions.add(topic, address)

    def emit(self, topic: str, payload: Mapping[str, Any]) -> int:
        """Queue one delivery of this event per subscription; returns how many were queued."""
        addresses = self.subscriptions.addresses(topic)
        if not addresses:
            return 0
        body = json.dumps(payload, separators=(",", ":")).encode()
        event_id = str(uuid.uuid4())
        triggered_at = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return sum(self.put(Delivery(topic, address, body, event_id, triggered_at)) for address in addresses)

    def render(self, item: Delivery) -> Outgoing:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Shopify-Topic": item.topic,
            "X-Shopify-Hmac-Sha256": sign(self._secret, item.body),
            "X-Shopify-Shop-Domain": self._shop_domain,
            "X-Shopify-API-Version": self._api_version,
            "X-Shopify-Webhook-Id": item.webhook_id,
            "X-Shopify-Event-Id": item.event_id,
            "X-Shopify-Triggered-At": item.triggered_at,
        }
        return Outgoing(item.address, item.body, headers)
