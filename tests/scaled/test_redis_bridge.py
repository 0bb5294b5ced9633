"""Two engines on one Redis (two processes, as far as they can tell): shared buckets, wake-ups
and events cross between them through the real Redis server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from nexus import redis_keys
from nexus.engine import Nexus
from nexus.events import BatchProgressed, ChannelRecovered, ChannelThrottled
from nexus.ratelimit.redis_bucket import RedisTokenBucket

pytestmark = pytest.mark.redis

Pair = tuple[Nexus, Nexus]


class Driver:
    """Just enough of a driver for the channel runtime to be built."""

    name = "stub"

    def __init__(self, context: Any) -> None:
        from nexus.drivers.contract import DriverCapabilities

        self.context = context
        self.capabilities = DriverCapabilities(max_batch_size=10)

    def rate_limit_config(self) -> Any:
        from nexus.ratelimit.config import RateLimitConfig

        return RateLimitConfig(10, 1)


@pytest.fixture
async def pair(
    tmp_path: Path, redis_url: str, redis_namespace: str, make_settings: Callable[..., Any]
) -> AsyncIterator[Pair]:
    settings = make_settings(
        redis_url=redis_url,
        redis_namespace=redis_namespace,
        channels={"shop": {"driver": "stub"}},
        worker={"throttle_threshold": 3},
    )
    first, second = Nexus(settings), Nexus(settings)
    await first.migrate()
    for nexus in (first, second):
        nexus.extend("stub", Driver)  # type: ignore[arg-type]
        await nexus.connect()
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


async def test_with_a_redis_url_the_engine_uses_the_shared_redis_bucket(pair: Pair) -> None:
    first, second = pair
    assert isinstance(first.bucket, RedisTokenBucket)
    one, other = first.channel("shop").limiter, second.channel("shop").limiter
    await one.penalize(20)  # a 429 with Retry-After: 20 seen by the first process
    assert await other.bucket.reserve(other.key, 1, other.limit) > 19


async def test_a_change_in_one_process_wakes_the_workers_of_another(pair: Pair) -> None:
    first, second = pair
    woken = second.wakeup("shop")
    assert not woken.is_set()
    first.notify(["shop"])
    await asyncio.wait_for(woken.wait(), timeout=5)
    assert not first.wakeup("other").is_set() and not second.wakeup("other").is_set()


async def test_shared_events_reach_every_process_once(pair: Pair) -> None:
    first, second = pair
    seen: dict[str, list[object]] = {"first": [], "second": []}
    first.events.listen(BatchProgressed, seen["first"].append)
    second.events.listen(BatchProgressed, seen["second"].append)
    event = BatchProgressed("b-1", 10, 4, 1)

    await first.events.dispatch(event)
    await _eventually(lambda: seen["second"] == [event])
    await asyncio.sleep(0.2)  # time for a wrong echo back to the sender to show up
    assert seen == {"first": [event], "second": [event]}


async def test_channel_throttled_counts_429s_of_all_processes_and_fires_once(pair: Pair) -> None:
    first, second = pair
    seen: dict[str, list[object]] = {"first": [], "second": []}
    for name, nexus in (("first", first), ("second", second)):
        nexus.events.listen(ChannelThrottled, seen[name].append)
        nexus.events.listen(ChannelRecovered, seen[name].append)
    a, b = first.channel("shop").limiter, second.channel("shop").limiter

    await a.penalize(0)
    await b.penalize(0)
    await a.penalize(0)  # third consecutive 429, counted across both processes
    await b.penalize(0)
    throttled = ChannelThrottled("shop", 3, 0)
    await _eventually(lambda: seen["second"] == [throttled])
    assert seen["first"] == [throttled]

    await second.channel("shop").monitor.succeeded()
    recovered = ChannelRecovered("shop", 4, 0)
    await _eventually(lambda: seen["first"] == [throttled, recovered])
    assert seen["second"] == [throttled, recovered]


async def test_garbage_on_the_pub_sub_channels_is_ignored(
    pair: Pair, redis_url: str, redis_namespace: str
) -> None:
    _, second = pair
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.publish(redis_keys.wakeups(redis_namespace), b"\xff not json")
        await client.publish(
            redis_keys.events(redis_namespace), b'{"origin": "x", "type": "Nope", "fields": {}}'
        )
        await client.publish(redis_keys.wakeups(redis_namespace), b'{"origin": "x", "names": ["shop"]}')
    finally:
        await client.aclose()
    await asyncio.wait_for(second.wakeup("shop").wait(), timeout=5)


async def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.01)
