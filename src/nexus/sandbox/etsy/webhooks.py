"""Signed webhook delivery in the Standard Webhooks scheme, with Etsy's retry schedule.

Each message gets one `webhook-id` ("msg_..."), kept on every retry; each attempt gets a fresh
`webhook-timestamp` and a `webhook-signature` holding one "v1,<base64>" entry per signing secret
(two while a secret rotates). Signed content: "{id}.{timestamp}.{body}", HMAC-SHA256 keyed with
base64-decode(secret without "whsec_").

Retries (Etsy's webhook docs, as quoted by the AsyncAPI description api-evangelist/etsy; the same
as the Standard Webhooks example schedule): immediately, then 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h, divided by `time_scale`. Any 2xx is a success; anything else, or no answer in
`timeout` seconds, is a failure. Faults: `drop_rate` loses a message, `duplicate_rate` sends a
delivered one again (same id, a new timestamp and signature).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from nexus.channels.etsy.webhooks import sign
from nexus.sandbox.etsy.stats import SandboxStats

RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
TIMEOUT_SECONDS = 15.0  # Standard Webhooks recommends 15-30 s


@dataclass(slots=True)
class Message:
    event_type: str
    address: str
    body: bytes
    webhook_id: str
    attempts: int = 0


class StandardWebhookDispatcher:
    def __init__(
        self,
        *,
        secrets_: Callable[[], Sequence[str]],
        stats: SandboxStats,
        rng: random.Random,
        time_scale: float = 1.0,
        retry_schedule: Sequence[float] = RETRY_SCHEDULE,
        drop_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = secrets_
        self._stats = stats
        self._rng = rng
        self._time_scale = time_scale
        self._schedule = tuple(retry_schedule)
        self._drop_rate = drop_rate
        self._duplicate_rate = duplicate_rate
        self._clock = clock
        self.subscriptions: dict[str, list[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog: list[Message] = []
        self._client: httpx.AsyncClient | None = None

    def subscribe(self, event_type: str, address: str) -> None:
        addresses = self.subscriptions.setdefault(event_type, [])
        if address not in addresses:
            addresses.append(address)

    def emit(self, event_type: str, payload: Mapping[str, Any]) -> int:
        """One message per subscribed endpoint; returns how many were queued."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        queued = 0
        for address in self.subscriptions.get(event_type, []):
            if self._drop_rate and self._rng.random() < self._drop_rate:
                self._stats.webhooks_dropped += 1
                continue
            self._backlog.append(Message(event_type, address, body, f"msg_{secrets.token_urlsafe(18)}"))
            queued += 1
        self._start_backlog()
        return queued

    def headers(self, message: Message) -> dict[str, str]:
        timestamp = int(self._clock())
        signatures = " ".join(sign(s, message.webhook_id, timestamp, message.body) for s in self._secrets())
        return {
            "content-type": "application/json",
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
        }

    async def drain(self, timeout: float = 10.0) -> None:
        self._start_backlog()
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._backlog.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- internals -------------------------------------------------------------------------

    def _start_backlog(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # emitted outside a loop: sent by the first call made inside one
        while self._backlog:
            task = loop.create_task(self._deliver(self._backlog.pop(0)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message: Message) -> None:
        while True:
            if await self._post(message):
                self._stats.webhooks_sent += 1
                if self._duplicate_rate and self._rng.random() < self._duplicate_rate:
                    self._stats.webhooks_duplicated += 1
                    await self._post(message)
                return
            self._stats.webhook_attempts_failed += 1
            if message.attempts >= len(self._schedule):
                self._stats.webhooks_failed += 1
                return
            delay = self._schedule[message.attempts] / self._time_scale
            message.attempts += 1
            await asyncio.sleep(delay)

    async def _post(self, message: Message) -> bool:
        if self._client is None:
            # trust_env=False: a proxy from the environment must not swallow loopback deliveries.
            self._client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, trust_env=False)
        try:
            response = await self._client.post(
                message.address, content=message.body, headers=self.headers(message)
            )
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 300
