"""Shared helpers for the Amazon driver tests: a served sandbox, channel contexts, SNS messages.

A plain module with a unique name (not conftest.py), so test modules import it directly: pytest
puts this directory on sys.path for the test files in it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from nexus.channels.amazon import AmazonDriver
from nexus.drivers.contract import ChannelContext, WebhookRequest
from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig
from nexus.sandbox.amazon import AmazonSandbox

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def make_context(
    http: httpx.AsyncClient,
    sandbox: AmazonSandbox,
    base_url: str,
    *,
    settings: Mapping[str, Any] | None = None,
) -> ChannelContext:
    """A context with one in-process bucket per operation, as the engine builds them."""
    bucket = InProcessTokenBucket()
    limiters: dict[str, BoundLimiter] = {}

    def limiter_for(operation: str, limit: RateLimitConfig) -> BoundLimiter:
        if operation not in limiters:
            limiters[operation] = BoundLimiter(bucket, f"amazon-us:{operation}", limit, max_wait=60.0)
        return limiters[operation]

    return ChannelContext(
        name="amazon-us",
        driver="amazon",
        base_url=base_url,
        credentials=sandbox.credentials(),
        settings={**sandbox.channel_settings(base_url), "feed_poll_interval": 0.02, **(settings or {})},
        http=http,
        rate=limiter_for("default", RateLimitConfig(5, 5)),
        limiter_for=limiter_for,
    )


def make_driver(
    http: httpx.AsyncClient, sandbox: AmazonSandbox, base_url: str, **settings: Any
) -> AmazonDriver:
    driver = AmazonDriver(make_context(http, sandbox, base_url, settings=settings))
    driver.use_fetcher(sandbox.fetch)
    return driver


def sns_request(message: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> WebhookRequest:
    """A delivery as SNS posts it (headers lower-cased, as WebhookRequest expects)."""
    final = {
        "content-type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": str(message.get("Type")),
        "x-amz-sns-message-id": str(message.get("MessageId")),
        "x-amz-sns-topic-arn": str(message.get("TopicArn")),
    }
    final.update({k.lower(): v for k, v in (headers or {}).items()})
    return WebhookRequest(
        channel="amazon-us", headers=final, body=json.dumps(message).encode(), received_at=datetime.now(UTC)
    )
