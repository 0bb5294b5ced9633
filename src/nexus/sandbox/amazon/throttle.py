"""SP-API usage plans: one token bucket per operation (rate per second, burst), as Amazon documents
("Usage Plans and Rate Limits": the token bucket algorithm; each request takes one token, the
bucket refills at the rate up to the burst). `time_scale` speeds the refill up for the demo."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Default plans from listingsItems_2021-08-01.json and feeds_2021-06-30.json: (rate, burst).
DEFAULT_PLANS: Mapping[str, tuple[float, float]] = {
    "getListingsItem": (5.0, 10.0),
    "patchListingsItem": (5.0, 5.0),
    "searchListingsItems": (5.0, 5.0),
    "createFeedDocument": (0.5, 15.0),
    "createFeed": (0.0083, 15.0),
    "getFeed": (2.0, 15.0),
    "getFeedDocument": (0.0222, 10.0),
}


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float


class UsagePlans:
    def __init__(
        self,
        plans: Mapping[str, tuple[float, float]] | None = None,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._time_scale = time_scale
        now = clock()
        self._buckets = {
            op: _Bucket(rate, burst, burst, now)
            for op, (rate, burst) in {**DEFAULT_PLANS, **(plans or {})}.items()
        }

    def rate(self, operation: str) -> float:
        """The rate the x-amzn-RateLimit-Limit header reports (the plan's, not the scaled one)."""
        return self._buckets[operation].rate

    def take(self, operation: str) -> bool:
        bucket = self._buckets[operation]
        now = self._clock()
        bucket.tokens = min(
            bucket.burst, bucket.tokens + (now - bucket.updated) * bucket.rate * self._time_scale
        )
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False
