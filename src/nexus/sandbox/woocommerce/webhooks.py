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
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from nexus.sandbox.woocommerce.payloads import php_json
from nexus.sandbox.woocommerce.stats import WooCommerceSandboxStats

MAX_DELIVERY_FAILURES = 5
USER_AGENT = "WooCommerce/9.8.0 Hookshot (WordPress/6.8)"
ACTIVE = "active"
DISABLED = "disabled"

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


class WebhookDispatcher:
    def __init__(
        self,
        *,
        source: str,
        stats: WooCommerceSandboxStats,
        build: PayloadBuilder,
        rng: random.Random,
        drop_rate: float = 0.0,
        timeout: float = 60.0,
        concurrency: int = 1,
    ) -> None:
        self._source = source
        self._stats = stats
        self._build = build
        self._rng = rng
        self._drop_rate = drop_rate
        self._timeout = timeout
        self._concurrency = max(1, concurrency)
        self.webhooks: dict[int, Webhook] = {}
        self._next_id = 0
        self._backlog: list[_Job] = []
        self._queue: asyncio.Queue[_Job] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None

    def create(self, topic: str, delivery_url: str, secret: str) -> Webhook:
        """A new active webhook; its ping is queued ahead of anything emitted later."""
        self._next_id += 1
        webhook = Webhook(self._next_id, topic, delivery_url, secret)
        self.webhooks[webhook.id] = webhook
        self._enqueue(_Job(webhook, None))
        return webhook

    def emit(self, topic: str, resource_id: int) -> int:
        """Queue one delivery per active webhook on `topic`; returns how many were queued."""
        queued = 0
        for webhook in self.webhooks.values():
            if webhook.topic != topic or webhook.status != ACTIVE:
                continue
            if self._drop_rate and self._rng.random() < self._drop_rate:
                self._stats.webhooks_dropped += 1
                continue
            self._enqueue(_Job(webhook, resource_id))
            queued += 1
        return queued

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery was attempted; TimeoutError otherwise."""
        self._ensure_started()
        assert self._idle is not None
        async with asyncio.timeout(timeout):
            while self._pending:
                await self._idle.wait()

    async def aclose(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._queue = None
        self._loop = None
        self._pending = 0
        self._backlog.clear()
        if self._idle is not None:
            self._idle.set()

    # --- internals -------------------------------------------------------------------------

    def _enqueue(self, job: _Job) -> None:
        self._backlog.append(job)
        self._ensure_started()

    def _ensure_started(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the backlog is flushed by the first call made inside one
        if self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._idle = asyncio.Event()
            self._idle.set()
            self._workers = [loop.create_task(self._worker()) for _ in range(self._concurrency)]
        assert self._queue is not None and self._idle is not None
        while self._backlog:
            self._pending += 1
            self._idle.clear()
            self._queue.put_nowait(self._backlog.pop(0))

    async def _worker(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            job = await queue.get()
            try:
                if job.resource_id is None:
                    await self._ping(job.webhook)
                else:
                    await self._deliver(job.webhook, job.resource_id)
            finally:
                self._pending -= 1
                if self._pending == 0 and self._idle is not None:
                    self._idle.set()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env=False: a proxy from the environment must not swallow loopback deliveries.
            self._client = httpx.AsyncClient(timeout=self._timeout, trust_env=False, follow_redirects=False)
        return self._client

    async def _ping(self, webhook: Webhook) -> None:
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/x-www-form-urlencoded"}
        try:
            response = await self._http().post(
                webhook.delivery_url, content=f"webhook_id={webhook.id}".encode(), headers=headers
            )
            reached = response.status_code == 200
        except httpx.HTTPError:
            reached = False
        if reached:
            webhook.pending_delivery = False
            self._stats.pings_sent += 1
        else:
            self._stats.pings_failed += 1

    async def _deliver(self, webhook: Webhook, resource_id: int) -> None:
        if webhook.status != ACTIVE:
            return  # disabled while this delivery waited in the queue
        payload = self._build(webhook.resource, resource_id)
        if payload is None:
            return  # the resource was deleted before the background job ran
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
        try:
            response = await self._http().post(webhook.delivery_url, content=body, headers=headers)
            ok = 200 <= response.status_code < 303
        except httpx.HTTPError:
            ok = False
        if ok:
            webhook.failure_count = 0
            self._stats.webhooks_sent += 1
            return
        self._stats.webhooks_failed += 1
        if webhook.failure_count > MAX_DELIVERY_FAILURES:
            webhook.status = DISABLED
            self._stats.webhooks_disabled += 1
        else:
            webhook.failure_count += 1
