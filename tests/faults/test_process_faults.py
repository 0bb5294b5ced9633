"""Faults of the processes Nexus depends on, with real processes: a `nexus serve` process (web
app, push worker, webhook processor) whose PostgreSQL is stopped and started mid-run, and
`nexus worker` processes in scaled mode whose Redis is stopped and started mid-run. The servers
are the test's own, on ports of their own (never the machine's 5432 or 6379).

A worker killed with SIGKILL mid-push is tests/scaled/test_worker_processes.py
(`test_a_worker_killed_mid_batch_loses_nothing_and_nothing_is_pushed_twice`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from nexus.config import NexusSettings
from nexus.engine import Nexus
from nexus.sandbox.shopify import ShopifySandbox
from nexus.web.server import serve_app
from tests.faults.faults_kit import (
    CHANNEL,
    TOPICS,
    Truth,
    add_and_import,
    assert_converged_and_ledger_adds_up,
    converge,
    fault_seeds,
    free_port,
    private_postgres,
    private_redis,
    shopify_channel,
    truth,
)

pytestmark = pytest.mark.slow

NEXUS = Path(sys.executable).with_name("nexus")
SEEDS = fault_seeds()


@asynccontextmanager
async def nexus_process(
    command: str, settings: NexusSettings, workdir: Path, *args: str
) -> AsyncIterator[Any]:
    """`nexus <command>` from a real configuration file; killed at the end if still running."""
    config = workdir / f"nexus-{command}.toml"
    config.write_text(settings.to_toml(), encoding="utf-8")
    log = (workdir / f"nexus-{command}-{time.monotonic_ns()}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(NEXUS),
        command,
        "--config",
        str(config),
        *args,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NEXUS_CONFIG": str(config)},
    )
    log.close()
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def output(workdir: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(workdir.glob("*.log")))


async def wait_for_port(port: int, process: Any, workdir: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"nexus did not start listening: {output(workdir)}") from None
            await asyncio.sleep(0.1)


async def sales_for(known: Truth, sandbox: ShopifySandbox, seconds: float) -> None:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        await known.sell(sandbox, 2)
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("seed", SEEDS)
async def test_the_database_restarted_mid_run(tmp_path: Path, seed: int) -> None:
    known = truth(30, seed)
    sandbox = ShopifySandbox(seed=seed, webhook_retry_base_seconds=0.25, webhook_concurrency=4)
    sandbox.seed_catalog(30, quantity=10)
    port = free_port()
    with private_postgres() as postgres:
        async with serve_app(sandbox.app) as store:
            settings = NexusSettings(
                database_url=postgres.url,
                channels={CHANNEL: shopify_channel(sandbox, store.base_url, batch_size=5)},
                worker={"poll_interval": 0.1, "backoff_base": 0.1, "backoff_max": 1.0, "lease_seconds": 5},
            )
            try:
                async with Nexus(settings) as nexus:
                    await nexus.migrate()
                    await add_and_import(nexus, known)
                    async with nexus_process("serve", settings, tmp_path, "--port", str(port)) as served:
                        await wait_for_port(port, served, tmp_path, timeout=90)
                        for topic in TOPICS:
                            sandbox.subscribe(topic, f"http://127.0.0.1:{port}/nexus/webhooks/{CHANNEL}")
                        await known.counter(nexus, 10)
                        await sales_for(known, sandbox, 1.0)

                        postgres.stop("fast")  # connections cut, the server gone
                        await sales_for(known, sandbox, 1.5)  # their webhooks cannot be stored
                        postgres.start()

                        await known.counter(nexus, 10)  # the pool reconnects
                        await sales_for(known, sandbox, 1.0)
                        await converge(nexus, sandbox, timeout=60)
                        assert served.returncode is None, output(tmp_path)
                        assert sandbox.stats.webhook_attempts_failed > 0, "no webhook met the outage"
                        await assert_converged_and_ledger_adds_up(nexus, sandbox, known)
            finally:
                await sandbox.aclose()


@pytest.mark.parametrize("seed", SEEDS)
async def test_redis_restarted_mid_run_in_scaled_mode(postgres_url: str, tmp_path: Path, seed: int) -> None:
    known = truth(100, seed)
    # Slow answers keep pushes in flight when Redis goes away.
    sandbox = ShopifySandbox(seed=seed, response_latency=0.2, maximum_available=20000, restore_rate=10000)
    sandbox.seed_catalog(100, quantity=10)
    with private_redis() as redis:
        async with serve_app(sandbox.app) as store:
            settings = NexusSettings(
                database_url=postgres_url,
                redis_url=redis.url,
                redis_namespace=f"faults-{seed}",
                channels={CHANNEL: shopify_channel(sandbox, store.base_url, batch_size=10)},
                worker={"poll_interval": 0.5, "backoff_base": 0.1, "backoff_max": 1.0, "lease_seconds": 5},
            )
            try:
                async with Nexus(settings.model_copy(update={"redis_url": None})) as nexus:
                    await nexus.migrate()
                    await add_and_import(nexus, known)  # every listing needs a push
                    async with (
                        nexus_process("worker", settings, tmp_path, "--concurrency", "2") as first,
                        nexus_process("worker", settings, tmp_path, "--concurrency", "2") as second,
                    ):
                        deadline = time.monotonic() + 30
                        while sandbox.stats.mutations < 4:
                            assert time.monotonic() < deadline, output(tmp_path)
                            await asyncio.sleep(0.02)

                        redis.stop()  # mid-push: the shared buckets and wake-ups are gone
                        await known.counter(nexus, 10)
                        await asyncio.sleep(1.5)
                        redis.start()  # empty: no buckets, no keys

                        await known.counter(nexus, 10)
                        await converge(nexus, sandbox, timeout=60)
                        for process in (first, second):
                            assert process.returncode is None, output(tmp_path)
                        await assert_converged_and_ledger_adds_up(nexus, sandbox, known)
                        counts = sandbox.stats.set_count_by_sku
                        # Each listing is pushed for the catalog, and at most once more for each
                        # counter change: never the same change twice.
                        extra = {sku: n for sku, n in counts.items() if n > 1 + known.changes[sku]}
                        assert extra == {}, f"pushed more often than changed: {extra}"
            finally:
                await sandbox.aclose()
