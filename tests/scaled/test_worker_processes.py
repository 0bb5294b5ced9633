"""Several `nexus worker` processes against the real PostgreSQL and Redis, pushing to a Shopify
sandbox over loopback: work is shared without double pushes, the shared bucket keeps the store
from ever answering THROTTLED, wake-ups cross processes, and a worker killed mid-batch loses
nothing and causes no second push of the same quantity."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from scaled_kit import CHANNEL, deployment, desired_levels, wait_until_converged
from sqlalchemy import select

from nexus.engine import Nexus
from nexus.sandbox.shopify import ShopifySandbox
from nexus.storage.models import ChannelMapping, SyncJob

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


async def test_four_worker_processes_push_each_listing_once_per_change_and_never_get_throttled(
    postgres_url: str, redis_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    # A small store bucket: 1,000 points, 150 restored per second, 10 points per 25-item push. The
    # catalog needs 200 pushes (2,000 points), so four processes that did not share one bucket
    # would each believe they may spend 1,000 at once and run into THROTTLED.
    sandbox = ShopifySandbox(seed=3, maximum_available=1000, restore_rate=150, throttled_status=429)
    async with (
        deployment(
            skus=5000,
            database_url=postgres_url,
            redis_url=redis_url,
            namespace=redis_namespace,
            workdir=tmp_path,
            sandbox=sandbox,
            channel={"batch_size": 25, "rate_limit": {"capacity": 1000, "refill_per_second": 150}},
            worker={"lease_seconds": 30, "poll_interval": 2.0, "backoff_base": 0.0},
        ) as deployed,
        Nexus(deployed.settings()) as nexus,
    ):
        await nexus.connect()
        workers = await deployed.start_workers(4, concurrency=2)
        await nexus.catalog().sync_all([CHANNEL])
        await wait_until_converged(nexus, deployed, timeout=120)

        counts = sandbox.stats.set_count_by_sku
        assert len(counts) == 5000
        assert set(counts.values()) == {1}, "a listing was pushed twice for one change"
        assert sandbox.stats.throttled == 0
        pushers = await _owners_that_pushed(nexus)
        assert len(pushers) >= 2, f"the work was not shared between processes: {pushers}"

        # Phase 2: stock changes made here (a web node, say) must wake the idle workers,
        # whose poll interval is 2 s, through Redis; each changed listing goes once more.
        changed = [f"SKU-{i:06d}" for i in range(1, 5001, 10)]
        started = time.monotonic()
        for sku in changed:
            await nexus.product(sku).adjust(-1, reason="sale", reference="counter")
        await wait_until_converged(nexus, deployed, timeout=60)
        assert time.monotonic() - started < 60
        for sku in changed:
            assert counts[sku] == 2, sku
        assert sum(counts.values()) == 5000 + len(changed)
        assert sandbox.stats.throttled == 0
        assert sandbox.levels() == await desired_levels(nexus)

        # SIGTERM: every worker stops cleanly, holding no lease.
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
        codes = await asyncio.wait_for(asyncio.gather(*(w.process.wait() for w in workers)), 30)
        assert codes == [0, 0, 0, 0], [w.output()[-2000:] for w in workers]
        assert await _leased(nexus) == []


async def test_a_worker_killed_mid_batch_loses_nothing_and_nothing_is_pushed_twice(
    postgres_url: str, redis_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    # Slow answers (the change is applied, the answer takes 0.6 s) keep each worker's pushes in
    # flight most of the time, so a kill lands between "applied by the store" and "recorded".
    sandbox = ShopifySandbox(seed=5, maximum_available=20000, restore_rate=10000, response_latency=0.6)
    async with (
        deployment(
            skus=1200,
            database_url=postgres_url,
            redis_url=redis_url,
            namespace=redis_namespace,
            workdir=tmp_path,
            sandbox=sandbox,
            channel={"batch_size": 20},
            worker={"lease_seconds": 4, "poll_interval": 0.5, "backoff_base": 0.0, "shutdown_grace": 20},
        ) as deployed,
        Nexus(deployed.settings()) as nexus,
    ):
        await nexus.connect()
        victim, stopped, survivor = await deployed.start_workers(3, concurrency=2)
        await nexus.catalog().sync_all([CHANNEL])
        await _until(lambda: sandbox.stats.mutations >= 12, timeout=60, what="pushes to start")

        victim.process.kill()  # kill -9: no cleanup of any kind
        await victim.process.wait()
        orphans = await _orphans(nexus, sandbox, victim.pid)
        assert orphans, "the kill did not land while a push was in flight; nothing was tested"

        # A graceful stop of a second worker, also mid-push: it finishes what is in flight.
        await _until(lambda: sandbox.stats.mutations >= 20, timeout=60, what="more pushes")
        stopped.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(stopped.process.wait(), 40) == 0, stopped.output()[-3000:]
        assert not [row for row in await _leased(nexus) if f":{stopped.pid}:" in row]

        await wait_until_converged(nexus, deployed, timeout=120, workers=[survivor])

        counts = sandbox.stats.set_count_by_sku
        assert len(counts) == 1200
        twice = sorted(sku for sku, count in counts.items() if count > 1)
        assert twice == [], f"pushed twice for the same quantity: {twice[:10]}"
        for sku in orphans:  # pushed by the dead worker, settled by a read, not pushed again
            assert counts[sku] == 1
        assert "orphaned pushes already on the channel" in survivor.output() + stopped.output()


async def _owners_that_pushed(nexus: Nexus) -> set[str]:
    """The processes (host:pid) named by the push audit rows."""
    async with nexus.db.read() as session:
        payloads = (await session.execute(select(SyncJob.payload))).scalars().all()
    return {":".join(str(p["worker"]).split(":")[:2]) for p in payloads}


async def _leased(nexus: Nexus) -> list[str]:
    async with nexus.db.read() as session:
        statement = select(ChannelMapping.lease_owner).where(ChannelMapping.lease_owner.is_not(None))
        return [str(owner) for owner in (await session.execute(statement)).scalars()]


async def _orphans(nexus: Nexus, sandbox: ShopifySandbox, pid: int) -> list[str]:
    """SKUs the killed process had sent and the store had applied, but it never recorded."""
    async with nexus.db.read() as session:
        rows = (
            await session.execute(
                select(ChannelMapping.sku, ChannelMapping.sending_qty, ChannelMapping.lease_owner).where(
                    ChannelMapping.lease_owner.is_not(None)
                )
            )
        ).all()
    levels = sandbox.levels()
    return [sku for sku, sending, owner in rows if f":{pid}:" in owner and levels.get(sku) == sending]


async def _until(condition: object, *, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
