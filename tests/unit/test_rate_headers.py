"""The channels' own rate-limit headers re-sync our buckets. Header values are shaped like the
real APIs' (see the channel reference page)."""

from __future__ import annotations

import httpx
import pytest

from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig
from nexus.ratelimit.headers import (
    Observation,
    amazon_rate_limit,
    apply,
    etsy_per_day,
    etsy_per_second,
    shopify_rest_call_limit,
)


def limiter(limit: RateLimitConfig) -> BoundLimiter:
    return BoundLimiter(InProcessTokenBucket(), "acct:op", limit)


async def test_shopify_rest_call_limit_tells_how_much_of_the_leaky_bucket_is_used() -> None:
    headers = httpx.Headers({"X-Shopify-Shop-Api-Call-Limit": "32/40"})
    observed = shopify_rest_call_limit(headers)
    assert observed == Observation(available=8, capacity=40)
    rate = limiter(RateLimitConfig(40, 2))
    await apply(rate, observed)
    assert await rate.level() == pytest.approx(8, abs=0.01)


async def test_amazon_reports_the_rate_applied_to_the_operation() -> None:
    rate = limiter(RateLimitConfig(5, 5))
    await apply(rate, amazon_rate_limit(httpx.Headers({"x-amzn-RateLimit-Limit": "0.0167"})))
    assert rate.limit.refill_per_second == pytest.approx(0.0167)
    assert rate.limit.capacity == 5  # the burst is not in the header
    assert await rate.level() == pytest.approx(5)  # and it says nothing of what is left


async def test_etsy_headers_feed_the_per_second_and_the_daily_bucket() -> None:
    headers = httpx.Headers(
        {
            "x-limit-per-second": "10",
            "x-remaining-this-second": "3",
            "x-limit-per-day": "10000",
            "x-remaining-today": "42",
        }
    )
    per_second, daily = limiter(RateLimitConfig(10, 10)), limiter(RateLimitConfig.daily(10_000))
    await apply(per_second, etsy_per_second(headers))
    await apply(daily, etsy_per_day(headers))
    assert await per_second.level() == pytest.approx(3, abs=0.01)
    assert await daily.level() == pytest.approx(42, abs=0.01)
    assert daily.limit.refill_per_second == pytest.approx(10_000 / 86_400)


@pytest.mark.parametrize("parse", [shopify_rest_call_limit, amazon_rate_limit, etsy_per_second, etsy_per_day])
def test_missing_or_garbled_headers_say_nothing(parse: object) -> None:
    assert callable(parse)
    assert parse(httpx.Headers({})) is None  # Etsy omits them on a 429
    garbled = {
        "X-Shopify-Shop-Api-Call-Limit": "lots",
        "x-amzn-RateLimit-Limit": "-1",
        "x-limit-per-second": "nan",
        "x-remaining-this-second": "x",
        "x-limit-per-day": "inf",
        "x-remaining-today": "",
    }
    assert parse(httpx.Headers(garbled)) is None


async def test_a_lower_figure_wins_a_higher_one_does_not_refill_us() -> None:
    rate = limiter(RateLimitConfig(40, 2))
    for _ in range(30):
        await rate.acquire()
    await apply(rate, shopify_rest_call_limit({"X-Shopify-Shop-Api-Call-Limit": "1/40"}))
    assert await rate.level() < 11  # requests of ours may still be on their way
