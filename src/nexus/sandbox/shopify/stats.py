"""Counters a test or benchmark reads to see what the sandbox went through."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SandboxStats:
    requests: int = 0  # authenticated GraphQL requests
    throttled: int = 0  # requests refused with THROTTLED
    max_cost_exceeded: int = 0
    mutations: int = 0  # inventorySetQuantities calls that were executed (not replays)
    idempotent_replays: int = 0
    user_errors: int = 0  # executed calls answered with userErrors (nothing applied)
    quantities_set: int = 0  # items applied by successful inventorySetQuantities calls
    set_count_by_sku: dict[str, int] = field(default_factory=dict)
    webhooks_sent: int = 0  # deliveries answered 2xx (first copy only)
    webhooks_failed: int = 0  # deliveries given up after the last retry
    webhooks_duplicated: int = 0  # extra copies sent by the duplicate_rate fault
    webhooks_dropped: int = 0  # deliveries never sent, by the drop_rate fault
    webhook_attempts_failed: int = 0  # individual attempts answered non-2xx or not at all

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
