"""The in-process token bucket and the limiter a driver holds, on a fake clock: no real waiting."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.bucket import CAPACITY_FLOOR_SECONDS, ROUND_TRIPS_KEPT
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


def limiter(
    clock: FakeClock, capacity: float = 4, refill: float = 2, *, headroom_seconds: float = 0.0
) -> BoundLimiter:
    bucket = InProcessTokenBucket(clock=clock)
    return BoundLimiter(
        bucket,
        "shop:default",
        RateLimitConfig(capacity, refill),
        sleep=clock.sleep,
        headroom_seconds=headroom_seconds,
    )


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


async def test_the_margin_keeps_seconds_of_refill_of_the_burst_unused(clock: FakeClock) -> None:
    bucket = InProcessTokenBucket(clock=clock)
    rate = BoundLimiter(
        bucket, "shop:default", RateLimitConfig(20, 4), sleep=clock.sleep, headroom_seconds=1.0
    )
    assert rate.margin == 4  # a second of a 4/s refill
    for _ in range(16):
        await rate.acquire()
    assert clock.sleeps == []  # 20 less the margin at once
    await rate.acquire()
    assert clock.sleeps == [pytest.approx(0.25)]  # the sustained rate is untouched: 4/s
    # The channel says 12 are left: we believe 12 less the margin, so the margin stays unspent.
    clock.now += 10
    await rate.observe(available=12, capacity=20)
    assert await rate.level() == pytest.approx(8)


async def test_a_slow_round_trip_widens_the_margin_until_it_is_forgotten(clock: FakeClock) -> None:
    rate = limiter(clock, capacity=100, refill=10, headroom_seconds=0.25)
    assert rate.margin == pytest.approx(2.5)
    await rate.observe(available=None, round_trip=0.1)  # faster than the allowance: no change
    assert rate.margin == pytest.approx(2.5)
    for nonsense in (float("nan"), float("inf"), -5.0):  # ignored, and never mask a slow one
        await rate.observe(available=None, round_trip=nonsense)
    assert rate.margin == pytest.approx(2.5)
    await rate.observe(available=None, round_trip=3.0)
    assert rate.margin == pytest.approx(30)
    assert rate.effective_limit.capacity == pytest.approx(70)
    for _ in range(ROUND_TRIPS_KEPT - 1):
        await rate.observe(available=None, round_trip=0.1)
    assert rate.margin == pytest.approx(30)  # still among the latest round trips
    await rate.observe(available=None, round_trip=0.1)
    assert rate.margin == pytest.approx(2.5)


async def test_a_shared_bucket_forgets_a_wide_margin_once_nobody_asks_for_it(clock: FakeClock) -> None:
    bucket = InProcessTokenBucket(clock=clock)
    limit = RateLimitConfig(100, 10)
    fast = BoundLimiter(bucket, "k", limit, sleep=clock.sleep, headroom_seconds=0.25)
    slow = BoundLimiter(bucket, "k", limit, sleep=clock.sleep, headroom_seconds=0.25)
    await slow.observe(available=None, round_trip=3.0)
    await slow.acquire()  # asks for 70 at most: the bucket holds that for everyone
    clock.now += 5
    assert await fast.level() == 70
    await fast.acquire()  # a request of the fast limiter does not lift it
    assert await fast.level() == 69
    clock.now += CAPACITY_FLOOR_SECONDS  # the slow limiter has not asked since
    assert await fast.level() == 97.5
    await slow.acquire()  # ...until it asks again
    assert await fast.level() == 69


async def test_a_request_too_large_to_keep_the_margin_beside_waits_the_margins_time(clock: FakeClock) -> None:
    # A 60-point bucket refilled at 40/s keeps 10 points (0.25 s) unused. A 55-point query cannot
    # leave them: the channel may be short of that refill when it arrives, so it waits 0.25 s more.
    rate = limiter(clock, capacity=60, refill=40, headroom_seconds=0.25)
    await rate.acquire(cost=50)  # leaves the margin beside it: no wait
    assert clock.sleeps == []
    clock.now += 10
    await rate.acquire(cost=55)
    assert clock.sleeps == [0.25]
    sent = clock.now
    await rate.acquire(cost=55)  # the bucket's wait, then the margin's...
    assert clock.sleeps[1:] == [pytest.approx(45 / 40), 0.25]
    assert clock.now - sent == pytest.approx(55 / 40)  # ...and the rate is not lowered: 40/s


def test_the_margin_never_takes_more_than_half_the_bucket() -> None:
    rate = BoundLimiter(InProcessTokenBucket(), "k", RateLimitConfig(10, 100), headroom_seconds=1.0)
    assert rate.margin == 5


@pytest.mark.parametrize("seconds", [-0.1, float("nan")])
def test_the_margin_is_zero_seconds_or_more(seconds: float) -> None:
    with pytest.raises(ValueError, match="headroom_seconds"):
        BoundLimiter(InProcessTokenBucket(), "k", RateLimitConfig(1, 1), headroom_seconds=seconds)


# The margin's reason, checked against a model of the channel: a bucket of the same limit that
# takes each request's cost when it *arrives*, `one_way` seconds after our limiter let it go.
# Powers of two, like the fake clock's other rates, so that every wait is exact.
CHANNEL = RateLimitConfig(capacity=32, refill_per_second=8)


def channel_refusals(sent: list[tuple[float, float, float]]) -> int:
    """How many of (sent at, one-way seconds, cost) a channel bucket, full at time 0, refuses."""
    tokens, last, refused = CHANNEL.capacity, 0.0, 0
    for arrival, cost in sorted((at + one_way, cost) for at, one_way, cost in sent):
        tokens = min(CHANNEL.capacity, tokens + (arrival - last) * CHANNEL.refill_per_second)
        last = arrival
        if tokens < cost - 1e-9:
            refused += 1
        else:
            tokens -= cost
    return refused


def send_all(
    requests: list[tuple[float, float, float]], headroom_seconds: float
) -> list[tuple[float, float, float]]:
    """Send (idle seconds before, one-way seconds, cost) through a limiter on a fake clock."""

    async def run() -> list[tuple[float, float, float]]:
        clock = FakeClock()
        rate = BoundLimiter(
            InProcessTokenBucket(clock=clock),
            "k",
            CHANNEL,
            sleep=clock.sleep,
            headroom_seconds=headroom_seconds,
        )
        sent = []
        for idle, one_way, cost in requests:
            clock.now += idle
            await rate.acquire(cost)
            sent.append((clock.now, one_way, cost))
        return sent

    return asyncio.run(run())


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.0, 0.0625, 0.5, 4.0]),  # mostly back to back, sometimes idle
            st.floats(min_value=0.0, max_value=0.5),
            st.sampled_from([1.0, 2.0, 4.0, 8.0]),
        ),
        min_size=1,
        max_size=80,
    )
)
def test_a_margin_of_the_slowest_one_way_time_is_never_refused(
    requests: list[tuple[float, float, float]],
) -> None:
    assert channel_refusals(send_all(requests, headroom_seconds=0.5)) == 0


def test_without_a_margin_a_faster_request_after_a_slow_burst_is_refused() -> None:
    burst = [(0.0, 0.5, 8.0)] * 4  # the whole bucket, slowly on its way
    # The refill after it, straight through: the channel, still full until the burst lands, has
    # nothing to refill for the first of these, which our bucket counted as spent.
    then = [(0.0, 0.0, 1.0)] * 6
    assert channel_refusals(send_all(burst + then, headroom_seconds=0.0)) > 0
    assert channel_refusals(send_all(burst + then, headroom_seconds=0.5)) == 0
