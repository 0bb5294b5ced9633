"""Shared helpers for the Etsy driver tests: fixtures, Standard Webhooks deliveries, contexts.

A plain module with a unique name (not conftest.py), so test modules import it directly: pytest
puts this directory on sys.path for the test files in it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from nexus.channels.etsy import EtsyDriver, create_driver
from nexus.drivers.contract import ChannelContext, WebhookRequest
from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig
from nexus.sandbox.etsy import EtsySandbox
from nexus.web.server import LoopbackServer, serve_app

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "whsec_" + base64.b64encode(b"etsy-test-signing-key-24b").decode()
SHOP_ID = 10051834


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """Written out from the Standard Webhooks spec, independently of the driver's code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery(
    body: bytes,
    *,
    secrets: tuple[str, ...] = (SECRET,),
    webhook_id: str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
    timestamp: int | None = None,
    omit: tuple[str, ...] = (),
) -> WebhookRequest:
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": " ".join(signature(s, webhook_id, stamp, body) for s in secrets),
    }
    return WebhookRequest(
        channel="etsy-shop",
        headers={k: v for k, v in headers.items() if k not in omit},
        body=body,
        received_at=datetime.now(UTC),
    )


class SandboxClock:
    """The sandbox's monotonic clock, frozen until `release()`; then it runs with real time.

    A frozen per-second window never refills, so which requests meet a 429 depends on their
    number alone, never on how fast the machine is."""

    def __init__(self) -> None:
        self._frozen_at = 1_000.0
        self._released_at: float | None = None

    def release(self) -> None:
        self._released_at = time.monotonic()

    def __call__(self) -> float:
        if self._released_at is None:
            return self._frozen_at
        return self._frozen_at + time.monotonic() - self._released_at


@dataclass
class Limiters:
    """The buckets a ChannelContext hands out: `rate` (per second) and one per operation."""

    bucket: InProcessTokenBucket = field(default_factory=InProcessTokenBucket)
    per_second: RateLimitConfig = field(default_factory=lambda: RateLimitConfig(10, 10))
    daily_max_wait: float | None = None
    made: dict[str, BoundLimiter] = field(default_factory=dict)

    @property
    def rate(self) -> BoundLimiter:
        return self.get("default", self.per_second)

    def get(self, operation: str, limit: RateLimitConfig) -> BoundLimiter:
        if operation not in self.made:
            max_wait = self.daily_max_wait if operation == "daily" else None
            self.made[operation] = BoundLimiter(
                self.bucket, f"etsy-shop:{operation}", limit, max_wait=max_wait
            )
        return self.made[operation]


def make_context(
    http: httpx.AsyncClient,
    *,
    base_url: str | None,
    credentials: Mapping[str, str],
    settings: Mapping[str, Any],
    limiters: Limiters | None = None,
) -> ChannelContext:
    limiters = limiters or Limiters()
    return ChannelContext(
        name="etsy-shop",
        driver="etsy",
        base_url=base_url,
        credentials=dict(credentials),
        settings=dict(settings),
        http=http,
        rate=limiters.rate,
        limiter_for=limiters.get,
    )


@dataclass
class Shop:
    """A sandbox shop served on loopback and a client to reach it."""

    sandbox: EtsySandbox
    server: LoopbackServer
    http: httpx.AsyncClient

    def driver(self, *, limiters: Limiters | None = None, **settings: Any) -> EtsyDriver:
        ctx = make_context(
            self.http,
            base_url=self.server.base_url,
            credentials=self.sandbox.credentials(),
            settings={**self.sandbox.settings(self.server.base_url), **settings},
            limiters=limiters,
        )
        return create_driver(ctx)


@contextlib.asynccontextmanager
async def serve_shop(sandbox: EtsySandbox) -> AsyncIterator[Shop]:
    try:
        async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10, trust_env=False) as http:
            yield Shop(sandbox, server, http)
    finally:
        await sandbox.aclose()
