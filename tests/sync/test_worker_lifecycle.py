"""What the scaled mode asks of one worker: settle a dead worker's push by reading the channel,
give claimed listings back on cancellation, wait out a spent quota without using attempts, and
tell operators when a channel keeps answering 429 (in-process here; across processes in
tests/scaled)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from nexus.drivers.dto import PushResult
from nexus.errors import QuotaExhausted, TransientError
from nexus.events import (
    BatchCompleted,
    BatchProgressed,
    BeforeInventorySync,
    ChannelRecovered,
    ChannelThrottled,
)
from nexus.ratelimit.config import RateLimitConfig
from nexus.runtime import running
from nexus.storage.models import ChannelMapping
from nexus.testing import MemoryChannel
from tests.sync.sync_kit import Engine

MakeEngine = Callable[..., Any]


async def expire_leases(engine: Engine) -> None:
    async with engine.nexus.db.transaction() as session:
        await session.execute(
            update(ChannelMapping).values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )


async def crashed_mid_push(engine: Engine, sku: str) -> asyncio.Task[Any]:
    """A worker whose push reached the channel and then never answered (a process that died)."""
    driver = engine.driver()
    driver.gate = asyncio.Event()
    stuck = asyncio.create_task(engine.nexus.push_worker("m", owner="dead").run_once())
    await driver.entered.wait()
    driver.gate = None
    await expire_leases(engine)
    return stuck


# -- a dead worker's push -------------------------------------------------------------------------


async def test_a_push_that_landed_before_its_worker_died_is_settled_by_a_read_not_pushed_again(
    make_engine: MakeEngine,
) -> None:
    engine: Engine = await make_engine(driver={"reads_levels": True})
    await engine.seed({"S": 10, "T": 10})
    await engine.nexus.product("S").adjust(-2)
    await engine.nexus.product("T").adjust(-3)
    stuck = await crashed_mid_push(engine, "S")
    driver = engine.driver()
    assert driver.capabilities.reads_levels
    assert (driver.levels["m-S"], driver.levels["m-T"]) == (8, 7)  # the push landed

    round_ = await engine.nexus.push_worker("m", owner="next").run_once()

    assert round_ is not None and round_.ok == 2
    assert len(driver.push_calls) == 1, "the landed push was sent a second time"
    assert len(driver.read_calls) == 1 and len(driver.read_calls[0]) == 2
    for sku, quantity in (("S", 8), ("T", 7)):
        listing = await engine.listing(sku)
        assert (listing.remote_qty, listing.pushed_qty, listing.dirty_since) == (quantity, quantity, None)
        assert listing.lease_owner is None and listing.sending_qty is None
    # Nothing booked: the channel's level was our own push, not a sale.
    assert [m.reason for m in await engine.movements("S")] == ["restock", "adjustment"]
    stuck.cancel()


async def test_after_a_dead_worker_the_next_push_compares_against_the_level_it_read(
    make_engine: MakeEngine,
) -> None:
    engine: Engine = await make_engine(driver={"reads_levels": True})
    await engine.seed({"S": 10})
    await engine.nexus.product("S").adjust(-2)
    stuck = await crashed_mid_push(engine, "S")
    driver = engine.driver()
    await engine.nexus.product("S").adjust(-1, reason="sale", reference="pos")  # desired is now 7

    round_ = await engine.nexus.push_worker("m", owner="next").run_once()

    assert round_ is not None and round_.ok == 1
    second = driver.push_calls[1][0]
    assert (second.quantity, second.change_from) == (7, 8)  # from what the channel showed
    assert driver.levels["m-S"] == 7
    listing = await engine.listing("S")
    assert (listing.remote_qty, listing.dirty_since) == (7, None)
    assert await engine.on_hand("S") == 7
    stuck.cancel()


async def test_without_a_level_reader_a_dead_workers_listing_is_pushed_without_compare_and_set(
    make_engine: MakeEngine,
) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    await engine.nexus.product("S").adjust(-2)
    stuck = await crashed_mid_push(engine, "S")
    await engine.nexus.push_worker("m", owner="next").run_once()
    second = engine.driver().push_calls[1][0]
    assert (second.quantity, second.change_from) == (8, None)
    stuck.cancel()


# -- cancellation and shutdown ----------------------------------------------------------------------


async def test_a_round_cancelled_mid_push_leaves_its_listings_for_a_reading_worker(
    make_engine: MakeEngine,
) -> None:
    engine: Engine = await make_engine(driver={"reads_levels": True})
    await engine.seed({"S": 10})
    await engine.nexus.product("S").adjust(-2)
    driver = engine.driver()
    driver.gate = asyncio.Event()
    round_ = asyncio.create_task(engine.nexus.push_worker("m", owner="leaving").run_once())
    await driver.entered.wait()

    round_.cancel()
    await asyncio.gather(round_, return_exceptions=True)

    listing = await engine.listing("S")
    # Sent, fate unknown: still marked as the leaver's, with a lease already over.
    assert listing.lease_owner == "leaving" and listing.sending_qty == 8
    assert listing.lease_until is not None and listing.lease_until <= datetime.now(UTC)
    driver.gate = None
    await engine.nexus.push_worker("m", owner="next").run_once()
    assert len(driver.push_calls) == 1 and (await engine.listing("S")).dirty_since is None


async def test_a_round_cancelled_before_sending_frees_its_listings_at_once(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    await engine.nexus.product("S").adjust(-2)
    held = asyncio.Event()

    async def slow_listener(event: BeforeInventorySync) -> None:
        held.set()
        await asyncio.sleep(3600)

    engine.nexus.events.listen(BeforeInventorySync, slow_listener)
    round_ = asyncio.create_task(engine.nexus.push_worker("m", owner="leaving").run_once())
    await held.wait()
    round_.cancel()
    await asyncio.gather(round_, return_exceptions=True)

    listing = await engine.listing("S")
    assert (listing.lease_owner, listing.lease_until, listing.sending_qty) == (None, None, None)
    assert engine.driver().push_calls == []


async def test_concurrency_runs_that_many_push_rounds_per_channel(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(
        channels={"m": {"driver": "mem"}, "n": {"driver": "mem"}}, worker={"concurrency": 2}
    )
    async with running(engine.nexus, web=False) as service:
        names = sorted(task.get_name() for task in service.tasks)
    pushes = ["push:m:0", "push:m:1", "push:n:0", "push:n:1"]
    assert names == [*pushes, "reconcile:m", "reconcile:n", "retention", "webhooks"]  # reconcilers: 1 each
    async with running(engine.nexus, web=False, concurrency=3, channels=["m"]) as service:
        names = sorted(t.get_name() for t in service.tasks)
    assert names == ["push:m:0", "push:m:1", "push:m:2", "reconcile:m", "retention", "webhooks"]


async def test_shutdown_lets_a_push_in_flight_finish_and_records_it(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(worker={"shutdown_grace": 10, "poll_interval": 0.05})
    await engine.seed({"S": 10})
    driver = engine.driver()
    driver.gate = asyncio.Event()
    async with running(engine.nexus, web=False):
        await engine.nexus.product("S").adjust(-2)
        await driver.entered.wait()
        asyncio.get_running_loop().call_later(0.2, driver.gate.set)  # answers after stop was asked
    listing = await engine.listing("S")
    assert (listing.remote_qty, listing.dirty_since, listing.lease_owner) == (8, None, None)


# -- quotas -------------------------------------------------------------------------------------------


async def test_a_spent_daily_quota_reschedules_without_using_attempts(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(worker={"max_attempts": 1, "max_rate_wait": 60})
    await engine.seed({"S": 10})
    await engine.nexus.product("S").adjust(-2)
    driver = engine.driver()
    daily = driver.context.limiter("daily", RateLimitConfig.daily(1))
    original = driver.push_inventory

    async def push_with_quota(updates: Any) -> list[PushResult]:
        await daily.acquire(1)
        return await original(updates)

    driver.push_inventory = push_with_quota  # type: ignore[method-assign]
    await daily.acquire(1)  # the day's only request is spent elsewhere
    before = datetime.now(UTC)

    round_ = await engine.nexus.push_worker("m").run_once()

    assert round_ is not None and (round_.retried, round_.failed) == (1, 0)
    listing = await engine.listing("S")
    assert listing.attempts == 0 and listing.failed_at is None  # max_attempts=1 would have dead-lettered
    assert listing.next_attempt_at is not None
    assert listing.next_attempt_at - before > timedelta(hours=23)  # when the bucket has a token again
    assert driver.push_calls == []
    assert "allows the next request" in (listing.last_error or "")


async def test_quota_exhausted_is_transient_with_the_wait_as_retry_after() -> None:
    error = QuotaExhausted("spent", retry_after=12.5)
    assert isinstance(error, TransientError) and error.retry_after == 12.5


# -- ChannelThrottled -----------------------------------------------------------------------------------


async def test_channel_throttled_fires_once_after_n_429s_and_recovery_when_pushes_succeed(
    make_engine: MakeEngine,
) -> None:
    engine: Engine = await make_engine(worker={"throttle_threshold": 3})
    await engine.seed({"S": 10, "T": 10})
    await engine.nexus.product("S").adjust(-1)
    await engine.nexus.product("T").adjust(-1)
    seen: list[object] = []
    engine.nexus.events.listen(ChannelThrottled, seen.append)
    engine.nexus.events.listen(ChannelRecovered, seen.append)
    driver: MemoryChannel = engine.driver()
    rate = driver.context.rate

    for _ in range(2):
        await rate.penalize(0)
    assert seen == []
    for _ in range(3):  # the third 429 reaches the threshold; later ones do not repeat the event
        await rate.penalize(0)
    assert seen == [ChannelThrottled("m", 3, 2)]

    await engine.nexus.push_worker("m").run_once()
    assert seen[1:] == [ChannelRecovered("m", 5, 0)]
    await engine.nexus.product("S").adjust(-1)
    await engine.nexus.push_worker("m").run_once()
    assert len(seen) == 2  # no recovery without a throttling episode


async def test_channels_on_one_account_share_the_bucket_and_the_429_count(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(
        channels={
            "us": {"driver": "mem", "rate_limit": {"account": "acme"}},
            "ca": {"driver": "mem", "rate_limit": {"account": "acme"}},
            "eu": {"driver": "mem"},
        }
    )
    us, ca, eu = (engine.nexus.channel(name).limiter for name in ("us", "ca", "eu"))
    assert us.key == ca.key == "acme:default" and eu.key == "eu:default"
    await us.penalize(30)
    assert await ca.bucket.reserve(ca.key, 1, ca.limit) > 29  # "ca" waits out the 429 "us" got
    assert await eu.bucket.reserve(eu.key, 1, eu.limit) == 0


# -- batch progress ------------------------------------------------------------------------------------


async def test_every_round_reports_batch_progress(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({f"S{i}": 10 for i in range(7)}, remote=None)
    seen: list[object] = []
    engine.nexus.events.listen(BatchProgressed, seen.append)
    engine.nexus.events.listen(BatchCompleted, seen.append)
    batch_id = await engine.nexus.catalog().sync_all(["m"])
    while await engine.nexus.push_worker("m").run_once() is not None:
        pass
    assert seen == [
        BatchProgressed(batch_id, 7, 3, 0),
        BatchProgressed(batch_id, 7, 6, 0),
        BatchProgressed(batch_id, 7, 7, 0),
        BatchCompleted(batch_id, 7, 7, 0),
    ]


async def test_when_the_grace_runs_out_the_push_in_flight_is_released_as_unknown(
    make_engine: MakeEngine,
) -> None:
    engine: Engine = await make_engine(
        driver={"reads_levels": True}, worker={"shutdown_grace": 0.2, "poll_interval": 0.05}
    )
    await engine.seed({"S": 10})
    driver = engine.driver()
    driver.gate = asyncio.Event()  # the channel never answers
    async with running(engine.nexus, web=False):
        await engine.nexus.product("S").adjust(-2)
        await driver.entered.wait()
    listing = await engine.listing("S")
    assert listing.lease_owner is not None and listing.sending_qty == 8
    assert listing.lease_until is not None and listing.lease_until <= datetime.now(UTC)
    driver.gate = None
    round_ = await engine.nexus.push_worker("m", owner="next").run_once()  # at once, not after 60 s
    assert round_ is not None and round_.ok == 1 and len(driver.push_calls) == 1
