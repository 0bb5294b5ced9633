"""Counters a test, benchmark or the demo reads to see what the sandbox went through."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SandboxStats:
    requests: int = 0  # API requests that passed the key check (the ones Etsy counts)
    throttled: int = 0  # answered 429
    throttled_daily: int = 0  # of those, refused by the daily quota
    unauthorized: int = 0  # answered 401 (expired or unknown access token)
    token_refreshes: int = 0
    inventory_gets: int = 0
    inventory_puts: int = 0  # accepted PUTs
    inventory_put_errors: int = 0  # PUTs refused with 400
    products_deleted: int = 0  # products that a PUT left out (Etsy deletes them)
    receipt_gets: int = 0
    set_count_by_sku: dict[str, int] = field(default_factory=dict)  # PUTs that changed the SKU's quantity
    webhooks_sent: int = 0  # messages answered 2xx (first copy only)
    webhooks_failed: int = 0  # messages given up after the last retry
    webhooks_duplicated: int = 0
    webhooks_dropped: int = 0
    webhook_attempts_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
