"""Eight OS processes share one Redis bucket: together they get the rate, and never more.

Each process connects and waits at a barrier for the others; once all are there, the test sets
a start time and says go. Each then reserves one token at a time until a common deadline,
sleeping whatever wait the bucket answers, and reports the Redis time of every grant, as the
bucket's script read it when it decided.

The bound: over any span of Redis time [t0, t1], a bucket of burst B and rate R can grant at
most B + R * (t1 - t0): at most B tokens were there at t0, R * (t1 - t0) came in since, and each
grant took one. With t0 and t1 the first and last grant, the bound holds exactly; the + 1 allows
for float rounding and for the one clock tick a grant may be early by (see `_BUCKET_LUA`).
Client-side timestamps would not do: a reply arrives some time after Redis decided, and that
delay differs between the first grant and the last, so the span they measure can be shorter
than the real one. The lower bound, 95 % of B + R * t, says the processes really got the rate:
a bucket that sends callers to sleep for too long, or lets tokens go to waste, fails it.

The processes come from a "forkserver": fresh processes like "spawn" ones (no inherited event
loop, connections or threads), but forked from a server that imported Nexus once. Eight spawned
interpreters importing Nexus each take longer, on two cores, than the test itself.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier, Event

import pytest
from redis.asyncio import Redis

from nexus.ratelimit import RedisTokenBucket
from nexus.ratelimit.config import RateLimitConfig

PROCESSES = 8
RATE = 100.0  # tokens per second
BURST = 20.0  # capacity
DURATION = 4.0  # seconds of hammering
KEY = "shop:hammered"


@dataclass
class Together:
    """What the processes share with the test: they meet at `ready`, and start at `start` when
    `go` is set; each puts its grants (or its error) on `results`."""

    ready: Barrier
    go: Event
    start: Synchronized[float]
    results: Queue[dict[str, list[float]] | str]


async def hammer(url: str, namespace: str, together: Together) -> dict[str, list[float]]:
    """One process's part: reserve until the deadline; the Redis and the client time of each grant."""
    client = Redis.from_url(url)
    try:
        bucket = RedisTokenBucket(client, namespace)
        limit = RateLimitConfig(capacity=BURST, refill_per_second=RATE)
        await client.ping()  # connected before the start, so no process starts late
        await asyncio.to_thread(together.ready.wait, 60)
        if not await asyncio.to_thread(together.go.wait, 10):
            raise TimeoutError("no start signal")
        start = together.start.value
        deadline = start + DURATION
        await asyncio.sleep(max(0.0, start - time.time()))
        redis_times: list[float] = []
        client_times: list[float] = []
        while (now := time.time()) < deadline:
            wait, decided = await bucket.reserve_at(KEY, 1, limit)
            if wait == 0:
                redis_times.append(decided)
                client_times.append(time.time())
            else:
                await asyncio.sleep(min(wait, deadline - now))
        return {"redis": redis_times, "client": client_times}
    finally:
        await client.aclose()


def hammer_process(url: str, namespace: str, together: Together) -> None:
    try:
        together.results.put(asyncio.run(hammer(url, namespace, together)))
    except BaseException as exc:
        together.ready.abort()  # nobody waits a minute for a process that is gone
        together.results.put(f"{type(exc).__name__}: {exc}")
        raise


@pytest.mark.redis
@pytest.mark.slow
def test_eight_processes_on_one_bucket_get_the_rate_and_never_more(
    redis_url: str, redis_namespace: str
) -> None:
    context = multiprocessing.get_context("forkserver")
    # What the processes import, except this module: the forkserver of Python 3.11 imports with
    # the default sys.path, which does not hold the tests' directories.
    context.set_forkserver_preload(["pytest", "redis.asyncio", "nexus.ratelimit"])
    together = Together(
        ready=context.Barrier(PROCESSES + 1),
        go=context.Event(),
        start=context.Value("d", 0.0),
        results=context.Queue(),
    )
    processes = [
        context.Process(target=hammer_process, args=(redis_url, redis_namespace, together))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        together.ready.wait(timeout=60)  # every process is connected...
        together.start.value = time.time() + 0.1  # ...so a start shortly from now is fair to all
        together.go.set()
        # Drain the queue before joining: a process exits only once its result is written.
        outcomes = [together.results.get(timeout=DURATION + 30) for _ in processes]
        for process in processes:
            process.join(timeout=10)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    assert [outcome for outcome in outcomes if isinstance(outcome, str)] == []
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    reports = [outcome for outcome in outcomes if isinstance(outcome, dict)]

    grants = sorted(moment for report in reports for moment in report["redis"])
    span = grants[-1] - grants[0]
    bound = BURST + RATE * span
    client_grants = sorted(moment for report in reports for moment in report["client"])
    print(
        f"\n{PROCESSES} processes, burst {BURST:g}, rate {RATE:g}/s: {len(grants)} granted in "
        f"{span:.3f} s of Redis time ({client_grants[-1] - client_grants[0]:.3f} s on the clients), "
        f"bound B + R*t = {bound:.1f}, ratio {len(grants) / bound:.4f}, "
        f"per process {[len(report['redis']) for report in reports]}"
    )
    assert all(report["redis"] for report in reports), "a process was never granted a token"
    assert len(grants) <= bound + 1
    assert len(grants) >= 0.95 * bound
