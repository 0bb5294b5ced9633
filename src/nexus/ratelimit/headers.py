"""What the channels say about their own rate limits, read from response headers.

A driver hands the result to `ctx.rate.observe(...)` (or a per-operation limiter), so the shared
bucket follows the account's real plan and spending instead of a configured guess. Shopify's
GraphQL `throttleStatus` is read by its client from the response body; the headers are here.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from nexus.drivers.contract import ChannelRateLimiter

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Observation:
    """A channel's figures for one bucket; None where the channel did not say."""

    available: float | None = None
    capacity: float | None = None
    refill_per_second: float | None = None


async def apply(
    limiter: ChannelRateLimiter, observation: Observation | None, *, round_trip: float | None = None
) -> None:
    """Tell `limiter` what an answer said about the bucket, and how long its request took."""
    if observation is not None or round_trip is not None:
        observation = observation or Observation()
        await limiter.observe(
            available=observation.available,
            capacity=observation.capacity,
            refill_per_second=observation.refill_per_second,
            round_trip=round_trip,
        )


def round_trip(response: httpx.Response) -> float | None:
    """Seconds from sending the request to the end of its answer; None for a response that was
    not received through a client (a fixture built in a test)."""
    try:
        return response.elapsed.total_seconds()
    except RuntimeError:
        return None


def shopify_rest_call_limit(headers: Mapping[str, str]) -> Observation | None:
    """`X-Shopify-Shop-Api-Call-Limit: 32/40`: 32 of the 40-request leaky bucket are in use.

    The leak rate (2/s on Standard, 4/s Advanced, 20/s Plus) is not in the header."""
    value = _header(headers, "X-Shopify-Shop-Api-Call-Limit")
    if value is None or "/" not in value:
        return None
    used, _, size = value.partition("/")
    used_count, capacity = _number(used), _number(size)
    if used_count is None or capacity is None or capacity <= 0:
        return None
    return Observation(available=max(0.0, capacity - used_count), capacity=capacity)


def amazon_rate_limit(headers: Mapping[str, str]) -> Observation | None:
    """`x-amzn-RateLimit-Limit: 5.0`: the requests per second applied to this operation now.

    SP-API sends it on most responses; it says nothing about the burst or what is left."""
    rate = _number(_header(headers, "x-amzn-RateLimit-Limit"))
    if rate is None or rate <= 0:
        return None
    return Observation(refill_per_second=rate)


def etsy_per_second(headers: Mapping[str, str]) -> Observation | None:
    """`x-limit-per-second` and `x-remaining-this-second` (Etsy's QPS bucket)."""
    limit = _number(_header(headers, "x-limit-per-second"))
    remaining = _number(_header(headers, "x-remaining-this-second"))
    if limit is None and remaining is None:
        return None
    return Observation(available=remaining, capacity=limit, refill_per_second=limit)


def etsy_per_day(headers: Mapping[str, str]) -> Observation | None:
    """`x-limit-per-day` and `x-remaining-today` (Etsy's rolling daily quota, QPD)."""
    limit = _number(_header(headers, "x-limit-per-day"))
    remaining = _number(_header(headers, "x-remaining-today"))
    if limit is None and remaining is None:
        return None
    return Observation(
        available=remaining,
        capacity=limit,
        refill_per_second=limit / SECONDS_PER_DAY if limit else None,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date (RFC 9110 allows both)."""
    value = _header(headers, "Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
