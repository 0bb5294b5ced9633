"""Shared helpers for the Shopify driver tests: fixture payloads, signed deliveries, channel contexts.

A plain module with a unique name (not conftest.py), so test modules import it directly: pytest puts
this directory on sys.path for the test files in it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from nexus.drivers.contract import ChannelContext, WebhookRequest
from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "shopify"
SECRET = "hush-client-secret"
TOKEN = "shpat_test_token"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery(
    topic: str,
    body: bytes,
    *,
    secret: str = SECRET,
    prefixed: bool = True,
    extra: Mapping[str, str] | None = None,
    omit: tuple[str, ...] = (),
) -> WebhookRequest:
    """A delivery as Shopify sends it, headers lower-cased like WebhookRequest expects."""
    prefix = "x-shopify-" if prefixed else "shopify-"
    headers = {
        "hmac-sha256": sign(body, secret),
        "topic": topic,
        "shop-domain": "nexus-test.myshopify.com",
        "webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "triggered-at": "2026-11-21T10:00:00.123Z",
        "api-version": "2026-10",
    }
    final = {prefix + k: v for k, v in headers.items() if k not in omit}
    final["content-type"] = "application/json"
    final.update({k.lower(): v for k, v in (extra or {}).items()})
    return WebhookRequest(channel="shopify-us", headers=final, body=body, received_at=datetime.now(UTC))


def make_context(
    http: httpx.AsyncClient,
    *,
    base_url: str = "https://nexus-test.myshopify.com",
    token: str = TOKEN,
    settings: Mapping[str, Any] | None = None,
    limit: RateLimitConfig | None = None,
) -> ChannelContext:
    limiter = BoundLimiter(
        InProcessTokenBucket(), "shopify-us:graphql", limit or RateLimitConfig(2000, 100, 10)
    )
    return ChannelContext(
        name="shopify-us",
        driver="shopify",
        base_url=base_url,
        credentials={"access_token": token, "webhook_secret": SECRET},
        settings=dict(settings or {}),
        http=http,
        rate=limiter,
    )


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    """An AsyncClient whose requests go to `handler` (httpx's own MockTransport), for failure modes
    the sandbox cannot produce on demand (5xx, timeouts, odd userErrors)."""
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))
