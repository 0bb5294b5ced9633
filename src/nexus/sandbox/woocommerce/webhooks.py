"""Webhooks as WooCommerce delivers them (woocommerce/woocommerce `includes/class-wc-webhook.php`).

- Creating a webhook sends a ping: POST `webhook_id=<id>` (form-encoded by the HTTP transport), no
  signature; only HTTP 200 counts as reached.
- A delivery is built when it runs (WooCommerce queues the resource id and renders the REST v3
  payload in the background job), then POSTed once: there are no retries.
- Headers: Content-Type, User-Agent "WooCommerce/x Hookshot (WordPress/y)", X-WC-Webhook-Source
  (home URL), -Topic, -Resource, -Event, -Signature (base64 HMAC-SHA256 of the body with the
  webhook's secret), -ID and -Delivery-ID = wp_hash(webhook id . current second), so two deliveries
  of one webhook in one second share a Delivery-ID, as on a real store.
- 2xx, 301 and 302 are successes and reset the failure count. Any other answer (or no answer)
  counts one failure; a failure when the count is already over 5 (`woocommerce_max_webhook_
  delivery_failures`) disables the webhook: it delivers nothing more.

The queue and its faults are `nexus.sandbox.delivery`'s (with no retries: `RETRY_POLICY`); this
module adds the pings, the headers and the failure rule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nexus.sandbox.delivery import DeliveryQueue, Faults, Outgoing, RetryPolicy
from nexus.sandbox.stats import SandboxStats
from nexus.sandbox.woocommerce.payloads import php_json

MAX_DELIVERY_FAILURES = 5
USER_AGENT = "WooCommerce/9.8.0 Hookshot (WordPress/6.8)"
ACTIVE = "active"
DISABLED = "disabled"
RETRY_POLICY = RetryPolicy(delays=(), timeout=60.0)  # one attempt, an answer within 60 s
DELIVERED = range(200, 303)  # 2xx, 301 and 302
PING_REACHED = (200,)

PayloadBuilder = Callable[[str, int], dict[str, Any] | None]


def sign(secret: str, body: bytes) -> str:
    """X-WC-Webhook-Signature for `body`."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Webhook:
    id: int
    topic: str
    delivery_url: str
    secret: str
    status: str = ACTIVE
    failure_count: int = 0
    pending_delivery: bool = True  # cleared by a ping answered 200

    @property
    def resource(self) -> str:
        return self.topic.split(".", 1)[0]

    @property
    def event(self) -> str:
        return self.topic.split(".", 1)[1]


@dataclass(frozen=True, slots=True)
class _Job:
    webhook: Webhook
    resource_id: int | None  # None: the creation ping


class WebhookDispatcher(DeliveryQueue[_Job]):
    def __init__(
        self,
        *,
        source: str,
        stats: SandboxStats,
        build: PayloadBuilder,
        rng: random.Random,
        faults: Faults | None = None,
        timeout: float = RETRY_POLICY.timeout,
        concurrency: int = 1,
    ) -> None:
        super().__init__(
            stats=stats,
            policy=RetryPolicy(RETRY_POLICY.delays, timeout),
            faults=faults,
            rng=rng,
            concurrency=concurrency,
        )
        self._source = source
        self._stats = stats
        self._build = build
        self.webhooks: dict[int, Webhook] = {}
        self._next_id = 0

    def create(self, topic: str, delivery_url: str, secret: str) -> Webhook:
        """A new active webhook; its ping is queued ahead of anything emitted later."""
        self._next_id += 1
        webhook = Webhook(self._next_id, topic, delivery_url, secret)
        self.webhooks[webhook.id] = webhook
        self.put(_Job(webhook, None), counted=False)
        return webhook

    def emit(self, topic: str, resource_id: int) -> int:
        """Queue one delivery per active webhook on `topic`; returns how many were queued."""
        active = [w for w in self.webhooks.values() if w.topic == topic and w.status == ACTIVE]
        return sum(self.put(_Job(webhook, resource_id)) for webhook in active)

    def render(self, item: _Job) -> Outgoing | None:
        webhook = item.webhook
        if item.resource_id is None:
            headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
            return Outgoing(webhook.delivery_url, f"webhook_id={webhook.id}".encode(), headers, PING_REACHED)
        if webhook.status != ACTIVE:
            return None  # disabled while this delivery waited in the queue
        payload = self._build(webhook.resource, item.resource_id)
        if payload is None:
            return None  # the resource was deleted before the background job ran
        body = php_json(payload)
        delivery_id = hmac.new(b"sandbox-wp-salt", f"{webhook.id}{int(time.time())}".encode(), hashlib.md5)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": self._source,
            "X-WC-Webhook-Topic": webhook.topic,
            "X-WC-Webhook-Resource": webhook.resource,
            "X-WC-Webhook-Event": webhook.event,
            "X-WC-Webhook-Signature": sign(webhook.secret, body),
            "X-WC-Webhook-ID": str(webhook.id),
            "X-WC-Webhook-Delivery-ID": delivery_id.hexdigest(),
        }
        return Outgoing(webhook.delivery_url, body, headers, DELIVERED)

    def settled(self, item: _Job, delivered: bool) -> None:
        webhook = item.webhook
        if item.resource_id is None:
            if delivered:
                webhook.pending_delivery = False
                self._stats.pings_sent += 1
            else:
                self._stats.pings_failed += 1
        elif delivered:
            webhook.failure_count = 0
        elif webhook.failure_count > MAX_DELIVERY_FAILURES:
            webhook.status = DISABLED
            self._stats.webhooks_disabled += 1
        else:
            webhook.failure_count += 1
