"""A token bucket's shape, as drivers declare it and the buckets enforce it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """One token bucket: `capacity` tokens, refilled at `refill_per_second`.

    `cost_per_push` is what one push request takes from the bucket (1 for request-counted APIs,
    the calculated query cost for Shopify GraphQL).
    """

    capacity: float
    refill_per_second: float
    cost_per_push: float = 1.0

    @classmethod
    def daily(cls, requests_per_day: float) -> RateLimitConfig:
        """A rolling daily quota (Etsy's QPD) as a bucket: the whole day's allowance, refilled evenly."""
        return cls(capacity=requests_per_day, refill_per_second=requests_per_day / 86_400)
