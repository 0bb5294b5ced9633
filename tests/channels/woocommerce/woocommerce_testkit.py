"""Shared helpers for the WooCommerce driver tests: fixture payloads, signed deliveries, contexts.

A plain module with a unique name (not conftest.py), so test modules import it directly: pytest puts
this directory on sys.path for the test files in it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from nexus.drivers.contract import ChannelContext, WebhookRequest
from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KEY = "ck_test_0123456789"
SECRET = "cs_test_0123456789"
WEBHOOK_SECRET = "woo-webhook-secret"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def delivery(
    topic: str,
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    signature: str | None = None,
    omit: tuple[str, ...] = (),
    delivery_id: str = "5a1f2b3c4d5e6f708192a3b4c5d6e7f8",
) -> WebhookRequest:
    """A delivery as WooCommerce sends it, headers lower-cased like WebhookRequest expects."""
    resource, _, event = topic.partition(".")
    headers = {
        "content-type": "application/json",
        "x-wc-webhook-source": "https://shop.example.com/",
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-resource": resource,
        "x-wc-webhook-event": event,
        "x-wc-webhook-signature": signature if signature is not None else sign(body, secret),
        "x-wc-webhook-id": "7",
        "x-wc-webhook-delivery-id": delivery_id,
    }
    final = {k: v for k, v in headers.items() if k.removeprefix("x-wc-webhook-") not in omit}
    return WebhookRequest(channel="woo", headers=final, body=body, received_at=datetime.now(UTC))


def ping(body: bytes = b"webhook_id=7", headers: Mapping[str, str] | None = None) -> WebhookRequest:
    final = {"content-type": "application/x-www-form-urlencoded", "user-agent": "WooCommerce/9.8.0 Hookshot"}
    final.update(headers or {})
    return WebhookRequest(channel="woo", headers=final, body=body, received_at=datetime.now(UTC))


def make_context(
    http: httpx.AsyncClient,
    *,
    base_url: str = "https://shop.example.com",
    key: str = KEY,
    secret: str = SECRET,
    settings: Mapping[str, Any] | None = None,
    limit: RateLimitConfig | None = None,
) -> ChannelContext:
    limiter = BoundLimiter(InProcessTokenBucket(), "woo:default", limit or RateLimitConfig(100, 25))
    return ChannelContext(
        name="woo",
        driver="woocommerce",
        base_url=base_url,
        credentials={"consumer_key": key, "consumer_secret": secret, "webhook_secret": WEBHOOK_SECRET},
        settings=dict(settings or {}),
        http=http,
        rate=limiter,
    )
