"""Counters a test, benchmark or the demo reads to see what the Amazon sandbox went through."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SandboxStats:
    requests: int = 0  # authenticated SP-API requests (throttled ones included)
    throttled: int = 0  # requests refused with 429 QuotaExceeded
    unauthorized: int = 0  # requests refused for a missing, unknown or expired access token
    token_requests: int = 0  # LWA refresh_token grants answered
    requests_by_operation: dict[str, int] = field(default_factory=dict)
    patches: int = 0  # patchListingsItem calls answered ACCEPTED or INVALID
    feeds_created: int = 0
    feed_messages: int = 0  # messages processed in finished feeds
    quantities_set: int = 0  # quantity updates applied (patches and feed messages)
    set_count_by_sku: dict[str, int] = field(default_factory=dict)
    webhooks_sent: int = 0  # SNS deliveries answered 2xx (first copy only)
    webhooks_failed: int = 0  # SNS deliveries given up after the last retry
    webhook_attempts_failed: int = 0  # individual attempts answered non-2xx or not at all
    webhooks_unconfirmed: int = 0  # notifications not sent: the subscription was never confirmed
    subscriptions_confirmed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
