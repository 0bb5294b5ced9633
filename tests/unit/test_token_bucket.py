"""The in-process token bucket and the limiter a driver holds, on a fake clock: no real waiting."""

from __future__ import annotations

import pytest

from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig


class FakeClock:
    """Time that moves only when the limiter sleeps. Rates below are powers of two, so every
    wait is an exact binary fraction and the fake time adds up without rounding."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter(clock: FakeClock, capacity: float = 4, refill: float = 2) -> BoundLimiter:
    bucket = InProcessTokenBucket(clock=clock)
    return BoundLimiter(bucket, "shop:default", RateLimitConfig(capacity, refill), sleep=clock.sleep)


async def test_a_full_bucket_serves_its_capacity_without_waiting(clock: FakeClock) -> None:
    rate = limiter(clock)
    for _ in range(4):
        await rate.acquire()
    assert clock.sleeps == []
    assert rate.requests == 4
    assert await rate.level() == 0


async def test_an_empty_bucket_waits_exactly_for_the_refill(clock: FakeClock) -> None:
    rate = limiter(clock, capacity=4, refill=2)
    for _ in range(4):
        await rate.acquire()
    await rate.acquire()  # one token at 2/s: half a second
    await rate.acquire(cost=2)  # two tokens: one second
    assert clock.sleeps == [pytest.approx(0.5), pytest.approx(1.0)]
    assert rate.waited_seconds == pytest.approx(1.5)
    assert rate.requests == 6


async def test_the_bucket_never_exceeds_its_rate_over_time(clock: FakeClock) -> None:
    rate = limiter(clock, capacity=5, refill=8)
    start = clock.now
    for _ in range(105):
        await rate.acquire()
    # 5 from the full bucket, 100 more at 8 per second: 12.5 seconds of (fake) time.
    assert clock.now - start == pytest.approx(12.5)


async def test_two_limiters_on_one_bucket_share_the_budget(clock: FakeClock) -> None:
    bucket = InProcessTokenBucket(clock=clock)
    limit = RateLimitConfig(2, 1)
    first = BoundLimiter(bucket, "shop:default", limit, sleep=clock.sleep)
    second = BoundLimiter(bucket, "shop:default", limit, sleep=clock.sleep)
    other = BoundLimiter(bucket, "etsy:default", limit, sleep=clock.sleep)
    await first.acquire()
    await second.acquire()
    await other.acquire()  # another key has its own bucket
    assert clock.sleeps == []
    await second.acquire()
    assert clock.sleeps == [pytest.approx(1.0)]


async def test_penalize_blocks_every_request_until_it_expires(clock: FakeClock) -> None:
    bucket = InProcessTokenBucket(clock=clock)
    limit = RateLimitConfig(10, 1)
    rate = BoundLimiter(bucket, "shop:default", limit, sleep=clock.sleep)
    await rate.acquire()
    await rate.penalize(7.5)  # a 429 with Retry-After: 7.5
    assert await bucket.reserve("shop:default", 1, limit) == pytest.approx(7.5)
    clock.now += 2.5
    assert await bucket.reserve("shop:default", 1, limit) == pytest.approx(5.0)
    blocked_from = clock.now
    await rate.acquire()
    assert clock.now - blocked_from >= 5.0
    assert rate.waited_seconds >= 5.0


async def test_a_request_larger_than_the_bucket_passes_when_it_is_full(clock: FakeClock) -> None:
    rate = limiter(clock, capacity=4, refill=1)
    await rate.acquire(cost=50)  # would otherwise wait forever
    assert clock.sleeps == []
    await rate.acquire()
    assert clock.sleeps  # ...and the debt is paid by the requests after it


async def test_observe_lowers_the_level_to_the_channels_figure(clock: FakeClock) -> None:
    rate = limiter(clock, capacity=40, refill=2)
    await rate.observe(available=3)
    assert await rate.level() == pytest.approx(3)
    await rate.observe(available=30)  # higher than ours: ours is kept
    assert await rate.level() == pytest.approx(3)


async def test_headroom_keeps_part_of_the_burst_for_requests_still_in_flight(clock: FakeClock) -> None:
    bucket = InProcessTokenBucket(clock=clock)
    rate = BoundLimiter(bucket, "shop:default", RateLimitConfig(20, 4), sleep=clock.sleep, headroom=0.25)
    for _ in range(15):
        await rate.acquire()
    assert clock.sleeps == []  # 20 less a quarter: 15 at once
    await rate.acquire()
    assert clock.sleeps == [pytest.approx(0.25)]  # the sustained rate is untouched: 4/s
    # The channel says 12 are left: we believe 12 less the margin, so the margin stays unspent.
    clock.now += 10
    await rate.observe(available=12, capacity=20)
    assert await rate.level() == pytest.approx(7)


def test_headroom_must_leave_some_capacity() -> None:
    with pytest.raises(ValueError, match="headroom"):
        BoundLimiter(InProcessTokenBucket(), "k", RateLimitConfig(1, 1), headroom=1.0)
