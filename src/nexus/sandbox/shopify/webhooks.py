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
per delivery and sends them concurrently so they can arrive out of order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from nexus.sandbox.shopify.stats import SandboxStats

MAX_RETRIES = 8
TIMEOUT_SECONDS = 5.0  # Shopify waits five seconds for an answer
USER_AGENT = "Shopify-Captain-Hook"


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
    attempts: int = 0


class WebhookDispatcher:
    def __init__(
        self,
        *,
        shop_domain: str,
        secret: str,
        api_version: str,
        stats: SandboxStats,
        rng: random.Random,
        time_scale: float = 1.0,
        duplicate_rate: float = 0.0,
        reorder: bool = False,
        drop_rate: float = 0.0,
        retry_base_seconds: float = 60.0,
        max_retries: int = MAX_RETRIES,
        concurrency: int = 1,
    ) -> None:
        self._shop_domain = shop_domain
        self._secret = secret
        self._api_version = api_version
        self._stats = stats
        self._rng = rng
        self._time_scale = time_scale
        self._duplicate_rate = duplicate_rate
        self._reorder = reorder
        self._drop_rate = drop_rate
        self._retry_base = retry_base_seconds
        self._max_retries = max_retries
        self._concurrency = max(1, concurrency)
        self.subscriptions: dict[str, list[str]] = {}
        self._backlog: list[Delivery] = []
        self._queue: asyncio.Queue[Delivery] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None

    def subscribe(self, topic: str, address: str) -> None:
        addresses = self.subscriptions.setdefault(topic, [])
        if address not in addresses:
            addresses.append(address)

    def emit(self, topic: str, payload: Mapping[str, Any]) -> int:
        """Queue one delivery of this event per subscription; returns how many were queued."""
        addresses = self.subscriptions.get(topic, [])
        if not addresses:
            return 0
        body = json.dumps(payload, separators=(",", ":")).encode()
        event_id = str(uuid.uuid4())
        triggered_at = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        queued = 0
        for address in addresses:
            if self._drop_rate and self._rng.random() < self._drop_rate:
                self._stats.webhooks_dropped += 1
                continue
            self._enqueue(Delivery(topic, address, body, event_id, triggered_at))
            queued += 1
        return queued

    @property
    def pending(self) -> int:
        return self._pending + len(self._backlog)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery was delivered or given up; TimeoutError otherwise."""
        self._ensure_started()
        assert self._idle is not None
        async with asyncio.timeout(timeout):
            while self._pending:
                await self._idle.wait()

    async def aclose(self) -> None:
        tasks = [*self._workers, *self._side_tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._side_tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._queue = None
        self._loop = None
        # Whatever was still queued is abandoned: a later drain must not wait for it.
        self._pending = 0
        self._backlog.clear()
        if self._idle is not None:
            self._idle.set()

    # --- internals -------------------------------------------------------------------------

    def _enqueue(self, delivery: Delivery) -> None:
        self._backlog.append(delivery)
        self._ensure_started()

    def _ensure_started(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the backlog is flushed by the first call made inside one
        if self._loop is not loop:
            # Started lazily in whatever loop serves the sandbox (tests use one loop per test).
            self._loop = loop
            self._queue = asyncio.Queue()
            self._idle = asyncio.Event()
            self._idle.set()
            self._workers = [loop.create_task(self._worker()) for _ in range(self._concurrency)]
        assert self._queue is not None and self._idle is not None
        while self._backlog:
            delivery = self._backlog.pop(0)
            self._pending += 1
            self._idle.clear()
            if self._reorder:
                self._spawn(self._delayed(delivery, self._rng.uniform(0.0, 0.05)))
            else:
                self._queue.put_nowait(delivery)

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        task: asyncio.Task[None] = self._loop.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _delayed(self, delivery: Delivery, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self._reorder:
            await self._attempt(delivery)
        else:
            assert self._queue is not None
            self._queue.put_nowait(delivery)

    async def _worker(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            delivery = await queue.get()
            try:
                await self._attempt(delivery)
            finally:
                queue.task_done()

    async def _attempt(self, delivery: Delivery) -> None:
        ok = await self._post(delivery)
        if ok:
            self._stats.webhooks_sent += 1
            if self._duplicate_rate and self._rng.random() < self._duplicate_rate:
                self._stats.webhooks_duplicated += 1
                await self._post(delivery)
            self._finish()
            return
        self._stats.webhook_attempts_failed += 1
        delivery.attempts += 1
        if delivery.attempts > self._max_retries:
            self._stats.webhooks_failed += 1
            self._finish()
            return
        delay = self._retry_base * 2 ** (delivery.attempts - 1) / self._time_scale
        self._spawn(self._delayed(delivery, delay))

    async def _post(self, delivery: Delivery) -> bool:
        if self._client is None:
            # trust_env=False: a proxy from the environment must not swallow loopback deliveries.
            self._client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, trust_env=False)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Shopify-Topic": delivery.topic,
            "X-Shopify-Hmac-Sha256": sign(self._secret, delivery.body),
            "X-Shopify-Shop-Domain": self._shop_domain,
            "X-Shopify-API-Version": self._api_version,
            "X-Shopify-Webhook-Id": delivery.webhook_id,
            "X-Shopify-Event-Id": delivery.event_id,
            "X-Shopify-Triggered-At": delivery.triggered_at,
        }
        try:
            response = await self._client.post(delivery.address, content=delivery.body, headers=headers)
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 300

    def _finish(self) -> None:
        self._pending -= 1
        if self._pending == 0 and self._idle is not None:
            self._idle.set()
