"""The Redis token bucket against a real Redis server.

The first half runs the same behaviours against `InProcessTokenBucket` and `RedisTokenBucket`:
the protocol means the same thing whichever bucket a deployment uses. The second half is what
only the Redis bucket promises: state shared by separate clients, namespaces, expiry, and a clock
that is Redis's, not the caller's.

Waits are compared with what the bucket arithmetic says, with margins far wider than the few
milliseconds the test itself takes; no test measures how long anything took.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from nexus import redis_keys
from nexus.errors import QuotaExhausted
from nexus.ratelimit import BoundLimiter, InProcessTokenBucket, RedisTokenBucket, TokenBucket, redis_bucket
from nexus.ratelimit.config import RateLimitConfig

KEY = "shop:default"


@dataclass
class Holders:
    """Makes holders of the same buckets: separate Redis clients of one namespace, or, in process,
    the one bucket object (which is all a process has)."""

    kind: str
    make: Callable[[], Awaitable[TokenBucket]]
    clients: list[Redis] = field(default_factory=list)


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    if request.param == "redis":
        return "redis", request.getfixturevalue("redis_url"), request.getfixturevalue("redis_namespace")
    return "in_process", "", ""


@pytest.fixture
async def holders(backend: tuple[str, str, str]) -> AsyncIterator[Holders]:
    kind, url, namespace = backend
    clients: list[Redis] = []
    shared = InProcessTokenBucket()

    async def make() -> TokenBucket:
        if kind == "in_process":
            return shared
        client = Redis.from_url(url)
        clients.append(client)
        return RedisTokenBucket(client, namespace)

    yield Holders(kind, make, clients)
    for client in clients:
        await client.aclose()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def no_sleep(seconds: float) -> None:
    raise AssertionError(f"the limiter slept {seconds} s")


# ---- the protocol, for both buckets --------------------------------------------------------------


async def test_a_full_bucket_grants_its_capacity_then_answers_the_refill_time(holders: Holders) -> None:
    bucket = await holders.make()
    limit = RateLimitConfig(capacity=5, refill_per_second=0.5)
    assert [await bucket.reserve(KEY, 1, limit) for _ in range(5)] == [0.0] * 5
    # Empty: one token takes 1 / 0.5 = 2 s, two take 4 s (less the few ms the test has run).
    assert await bucket.reserve(KEY, 1, limit) == pytest.approx(2.0, abs=0.1)
    assert await bucket.reserve(KEY, 2, limit) == pytest.approx(4.0, abs=0.1)
    # A refused reservation takes nothing: still about two seconds away, not more.
    assert await bucket.reserve(KEY, 1, limit) == pytest.approx(2.0, abs=0.1)


async def test_the_wait_is_how_long_is_really_needed(holders: Holders) -> None:
    bucket = await holders.make()
    limit = RateLimitConfig(capacity=2, refill_per_second=20)
    assert await bucket.reserve(KEY, 1, limit) == 0.0
    assert await bucket.reserve(KEY, 1, limit) == 0.0
    for _ in range(5):
        wait = await bucket.reserve(KEY, 1, limit)
        assert 0 < wait <= 1 / 20
        await asyncio.sleep(wait)  # exactly the answer, no extra margin...
        assert await bucket.reserve(KEY, 1, limit) == 0.0  # ...is enough


async def test_a_request_larger_than_the_bucket_passes_when_it_is_full(holders: Holders) -> None:
    bucket = await holders.make()
    limit = RateLimitConfig(capacity=4, refill_per_second=1)
    assert await bucket.reserve(KEY, 50, limit) == 0.0  # would otherwise wait forever
    # ...and the debt is paid by the requests after it: 46 tokens below zero, 47 s to one token.
    assert await bucket.reserve(KEY, 1, limit) == pytest.approx(47, abs=1)


async def test_penalize_blocks_every_holder_of_the_key(holders: Holders) -> None:
    first, second = await holders.make(), await holders.make()
    limit = RateLimitConfig(capacity=10, refill_per_second=1)
    assert await first.reserve(KEY, 1, limit) == 0.0
    await first.penalize(KEY, 30)  # a 429 with Retry-After: 30, seen by the first holder
    assert await second.reserve(KEY, 1, limit) == pytest.approx(30, abs=1)
    await second.penalize(KEY, 5)  # a shorter pause never shortens a longer one
    assert await first.reserve(KEY, 1, limit) == pytest.approx(30, abs=1)
    assert await second.level(KEY, limit) == pytest.approx(0, abs=0.5)
    assert await second.reserve("etsy:default", 1, limit) == 0.0  # other keys carry on


async def test_refund_gives_tokens_back_up_to_the_capacity(holders: Holders) -> None:
    bucket = await holders.make()
    limit = RateLimitConfig(capacity=5, refill_per_second=0.001)
    assert await bucket.reserve(KEY, 3, limit) == 0.0
    assert await bucket.level(KEY, limit) == pytest.approx(2, abs=0.01)
    await bucket.refund(KEY, 1, limit)
    assert await bucket.level(KEY, limit) == pytest.approx(3, abs=0.01)
    await bucket.refund(KEY, 10, limit)
    assert await bucket.level(KEY, limit) == 5


async def test_observe_lowers_the_level_but_never_raises_it(holders: Holders) -> None:
    bucket = await holders.make()
    limit = RateLimitConfig(capacity=40, refill_per_second=0.001)
    await bucket.observe(KEY, limit, available=3)
    assert await bucket.level(KEY, limit) == pytest.approx(3, abs=0.01)
    await bucket.observe(KEY, limit, available=30)  # higher than ours: ours is kept
    assert await bucket.level(KEY, limit) == pytest.approx(3, abs=0.01)


async def test_a_limiter_adopts_the_channels_own_figures(holders: Holders) -> None:
    rate = BoundLimiter(await holders.make(), KEY, RateLimitConfig(40, 2), sleep=no_sleep)
    await rate.observe(available=100, capacity=1000, refill_per_second=50)
    assert rate.limit.capacity == 1000
    assert await rate.level() == pytest.approx(100, abs=5)


async def test_the_widest_margin_of_the_limiters_sharing_a_bucket_binds_them_all(holders: Holders) -> None:
    # Two processes push to one store. The second has just seen a 3 s round trip, so it keeps 30
    # of the 100 points unused; the first, seeing only fast answers, would keep 2.5. The store
    # does not know whose requests are slow: the bucket must keep the wider margin for both.
    limit = RateLimitConfig(capacity=100, refill_per_second=10)
    fast = BoundLimiter(await holders.make(), KEY, limit, sleep=no_sleep, headroom_seconds=0.25)
    slow = BoundLimiter(await holders.make(), KEY, limit, sleep=no_sleep, headroom_seconds=0.25)
    granted = 0
    while await fast.bucket.reserve(fast.key, 1, fast.effective_limit) == 0.0:
        granted += 1
    assert 97 <= granted <= 97 + 5  # alone, the fast one spends all but its own 2.5
    await slow.observe(available=None, round_trip=3.0)
    assert (fast.margin, slow.margin) == (pytest.approx(2.5), pytest.approx(30))
    # The slow one asks for 70 at most; the bucket is empty, so it is refused, and remembers.
    assert await slow.bucket.reserve(slow.key, 1, slow.effective_limit) > 0
    await fast.refund(90)  # ninety points come back (say, requests that never left)
    assert await fast.level() == pytest.approx(70, abs=0.5)  # held to the slow one's 70, not 97.5
    granted = 0
    while await fast.bucket.reserve(fast.key, 1, fast.effective_limit) == 0.0:
        granted += 1
    assert 70 <= granted <= 70 + 5  # plus what the refill adds while the loop runs (10/s)


async def test_a_spent_daily_quota_answers_a_wait_of_hours(holders: Holders) -> None:
    bucket = await holders.make()
    limit = RateLimitConfig.daily(10)
    assert [await bucket.reserve(KEY, 1, limit) for _ in range(10)] == [0.0] * 10
    # One request in 86400 / 10 seconds: the eleventh is 2.4 hours away.
    assert await bucket.reserve(KEY, 1, limit) == pytest.approx(8640, rel=0.001)


async def test_a_limiter_with_max_wait_turns_a_long_wait_into_quota_exhausted(holders: Holders) -> None:
    rate = BoundLimiter(await holders.make(), KEY, RateLimitConfig.daily(10), sleep=no_sleep, max_wait=60)
    for _ in range(10):
        await rate.acquire()
    with pytest.raises(QuotaExhausted) as raised:
        await rate.acquire()
    assert raised.value.retry_after == pytest.approx(8640, rel=0.001)
    assert rate.requests == 10


async def test_a_limiter_sleeps_what_the_bucket_answers_and_goes_on(holders: Holders) -> None:
    rate = BoundLimiter(await holders.make(), KEY, RateLimitConfig(capacity=2, refill_per_second=50))
    for _ in range(6):
        await rate.acquire()
    assert rate.requests == 6
    assert 0 < rate.waited_seconds <= 4 / 50


async def test_throttle_counters_count_and_reset_for_every_holder(holders: Holders) -> None:
    first, second = await holders.make(), await holders.make()
    assert await first.note_throttled("shopify:main") == 1
    assert await second.note_throttled("shopify:main") == 2
    assert await second.note_throttled("etsy:main") == 1  # another account, another count
    assert await first.note_success("shopify:main") == 2  # ends the run of two 429s
    assert await second.note_success("shopify:main") == 0  # nothing left to end
    assert await second.note_throttled("shopify:main") == 1  # a new run starts from one
    assert await first.note_success("etsy:main") == 1


# ---- what only the Redis bucket promises ---------------------------------------------------------


@pytest.mark.redis
async def test_the_state_is_a_hash_under_the_namespace_stamped_with_redis_time(
    redis_client: Redis, redis_namespace: str
) -> None:
    bucket = RedisTokenBucket(redis_client, redis_namespace)
    limit = RateLimitConfig(capacity=5, refill_per_second=5)
    assert await bucket.reserve(KEY, 2, limit) == 0.0
    seconds, microseconds = await redis_client.time()
    state = await redis_client.hgetall(redis_keys.bucket(redis_namespace, KEY))
    assert float(state[b"tokens"]) == pytest.approx(3, abs=0.1)
    assert float(state[b"blocked_until"]) == 0
    assert float(state[b"ts"]) == pytest.approx(seconds + microseconds / 1e6, abs=1.0)
    # Expiry: the bucket is full again 1 s after empty; one minute of margin on top.
    assert 60_000 < await redis_client.pttl(redis_keys.bucket(redis_namespace, KEY)) <= 61_000


@pytest.mark.redis
async def test_the_clock_is_redis_time_not_the_callers(
    redis_client: Redis, redis_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "redis.call('TIME')" in redis_bucket._BUCKET_LUA
    limit = RateLimitConfig(capacity=1, refill_per_second=10)
    bucket = RedisTokenBucket(redis_client, redis_namespace)
    await redis_client.ping()  # connect while connection timeouts still have a clock to run on
    # This process's clocks stop, on a date years off. asyncio.sleep would never wake up now, so
    # the test sleeps with time.sleep.
    monkeypatch.setattr(time, "time", lambda: 1_000_000_000.0)
    monkeypatch.setattr(time, "monotonic", lambda: 42.0)
    local = InProcessTokenBucket(clock=time.monotonic)  # on the caller's clock, for contrast
    for each in (bucket, local):
        assert await each.reserve(KEY, 1, limit) == 0.0
        assert 0 < await each.reserve(KEY, 1, limit) <= 0.1
    time.sleep(0.15)  # noqa: ASYNC251 - the event loop's clock is frozen on purpose
    assert await bucket.reserve(KEY, 1, limit) == 0.0  # Redis saw the time pass...
    assert await local.reserve(KEY, 1, limit) > 0  # ...a bucket on the caller's clock did not
    seconds, microseconds = await redis_client.time()
    state = await redis_client.hgetall(redis_keys.bucket(redis_namespace, KEY))
    assert float(state[b"ts"]) == pytest.approx(seconds + microseconds / 1e6, abs=1.0)


@pytest.mark.redis
async def test_reserve_at_returns_the_redis_time_of_the_decision(
    redis_client: Redis, redis_namespace: str
) -> None:
    bucket = RedisTokenBucket(redis_client, redis_namespace)
    before = await redis_client.time()
    wait, decided = await bucket.reserve_at(KEY, 1, RateLimitConfig(5, 1))
    after = await redis_client.time()
    assert wait == 0.0
    assert before[0] + before[1] / 1e6 <= decided <= after[0] + after[1] / 1e6


@pytest.mark.redis
async def test_namespaces_keep_deployments_apart(redis_client: Redis, redis_namespace: str) -> None:
    # A sub-namespace of the fixture's, so its keys are cleaned up with the fixture's.
    mine = RedisTokenBucket(redis_client, redis_namespace)
    theirs = RedisTokenBucket(redis_client, f"{redis_namespace}:other")
    limit = RateLimitConfig(capacity=2, refill_per_second=0.01)
    await mine.reserve(KEY, 2, limit)
    await mine.penalize(KEY, 60)
    await mine.note_throttled("shopify:main")
    assert await theirs.reserve(KEY, 2, limit) == 0.0
    assert await theirs.note_success("shopify:main") == 0
    assert await mine.reserve(KEY, 1, limit) == pytest.approx(60, abs=1)
    names = (redis_keys.bucket(redis_namespace, KEY), redis_keys.bucket(f"{redis_namespace}:other", KEY))
    assert await redis_client.exists(*names) == 2


@pytest.mark.redis
async def test_keys_expire_when_the_bucket_would_be_full_anyway(
    redis_client: Redis, redis_namespace: str
) -> None:
    bucket = RedisTokenBucket(redis_client, redis_namespace)
    name = redis_keys.bucket(redis_namespace, KEY)
    # A daily quota keeps its key for a day: expiring earlier would hand out a fresh quota.
    await bucket.reserve(KEY, 1, RateLimitConfig.daily(10))
    assert await redis_client.pttl(name) > 86_400_000
    # A penalty knows no limit, yet keeps both the pause and the refill time it learnt before.
    fast = RateLimitConfig(capacity=5, refill_per_second=5)
    await bucket.reserve("fast", 1, fast)
    await bucket.penalize("fast", 120)
    assert 180_000 < await redis_client.pttl(redis_keys.bucket(redis_namespace, "fast")) <= 181_000
    counter = redis_keys.throttle_counter(redis_namespace, "shopify:main")
    await bucket.note_throttled("shopify:main")
    assert 0 < await redis_client.ttl(counter) <= 3600


@pytest.mark.redis
async def test_reading_the_level_writes_nothing(redis_client: Redis, redis_namespace: str) -> None:
    bucket = RedisTokenBucket(redis_client, redis_namespace)
    assert await bucket.level(KEY, RateLimitConfig(7, 1)) == 7  # a missing bucket is a full one
    assert await redis_client.exists(redis_keys.bucket(redis_namespace, KEY)) == 0


@pytest.mark.redis
async def test_a_penalty_on_a_bucket_never_used_blocks_it(redis_client: Redis, redis_namespace: str) -> None:
    bucket = RedisTokenBucket(redis_client, redis_namespace)
    await bucket.penalize(KEY, 10)
    assert await bucket.reserve(KEY, 1, RateLimitConfig(5, 1)) == pytest.approx(10, abs=1)


@pytest.mark.redis
async def test_the_script_is_loaded_again_after_redis_forgets_it(
    redis_client: Redis, redis_namespace: str
) -> None:
    bucket = RedisTokenBucket(redis_client, redis_namespace)
    limit = RateLimitConfig(capacity=3, refill_per_second=0.01)
    assert await bucket.reserve(KEY, 1, limit) == 0.0
    await redis_client.script_flush()  # what a Redis restart does to the script cache
    assert await bucket.reserve(KEY, 1, limit) == 0.0
    assert await bucket.level(KEY, limit) == pytest.approx(1, abs=0.01)


@pytest.mark.redis
async def test_a_client_that_decodes_responses_works_too(redis_url: str, redis_namespace: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        bucket = RedisTokenBucket(client, redis_namespace)
        limit = RateLimitConfig(capacity=1, refill_per_second=0.5)
        assert await bucket.reserve(KEY, 1, limit) == 0.0
        assert await bucket.reserve(KEY, 1, limit) == pytest.approx(2, abs=0.1)
        assert await bucket.note_throttled("shopify:main") == 1
        assert await bucket.note_success("shopify:main") == 1
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_limit_that_never_refills_is_refused(redis_client: Redis, redis_namespace: str) -> None:
    bucket = RedisTokenBucket(redis_client, redis_namespace)
    with pytest.raises(ValueError, match="positive capacity and refill"):
        await bucket.reserve(KEY, 1, RateLimitConfig(capacity=5, refill_per_second=0))
