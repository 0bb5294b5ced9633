"""Counters a test or benchmark reads to see what the WooCommerce sandbox went through."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class WooCommerceSandboxStats:
    requests: int = 0  # authenticated REST requests
    unauthorized: int = 0  # requests refused 401
    throttled: int = 0  # requests answered 429 (host limiter or throttle_next)
    failed: int = 0  # requests answered 5xx by fail_next
    batches: int = 0  # batch requests executed
    batch_too_large: int = 0  # batch requests refused 413
    items_updated: int = 0  # batch update entries saved
    item_errors: int = 0  # batch update entries answered with an error object
    set_count_by_sku: dict[str, int] = field(default_factory=dict)  # stock writes per SKU
    orders: int = 0
    webhooks_sent: int = 0  # deliveries answered 2xx/301/302
    webhooks_failed: int = 0  # deliveries answered otherwise or not at all (never retried)
    webhooks_dropped: int = 0  # deliveries never sent, by the drop_rate fault
    webhooks_disabled: int = 0  # webhooks disabled after too many consecutive failures
    pings_sent: int = 0  # creation pings answered 200
    pings_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
