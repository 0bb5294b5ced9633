"""Set-up for the scaled-mode tests: a Shopify sandbox on loopback, a catalog linked in PostgreSQL,
and `nexus worker` processes started from a real configuration file.

A plain module with a unique name (not conftest.py): pytest puts this directory on sys.path for
the test files in it, so they import it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from nexus.config import NexusSettings
from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.sandbox.shopify import ShopifySandbox, ean13
from nexus.storage.models import ChannelMapping
from nexus.web.server import serve_app

CHANNEL = "shop"
NEXUS = Path(sys.executable).with_name("nexus")
UNLIMITED = 1e12


@dataclass
class Deployment:
    """Everything a scaled-mode test shares: the store, the database, Redis, the config file."""

    sandbox: ShopifySandbox
    base_url: str
    database_url: str
    redis_url: str
    namespace: str
    workdir: Path
    channel: dict[str, Any]
    worker: dict[str, Any]
    processes: list[WorkerProcess] = field(default_factory=list)

    def settings(self, *, redis: bool = True, **channel_overrides: Any) -> NexusSettings:
        return NexusSettings(
            database_url=self.database_url,
            redis_url=self.redis_url if redis else None,
            redis_namespace=self.namespace,
            channels={CHANNEL: {**self.channel, **channel_overrides}},
            worker=self.worker,
        )

    def write_config(self) -> Path:
        path = self.workdir / "nexus.toml"
        settings = self.settings()
        path.write_text(settings.to_toml(), encoding="utf-8")
        return path

    async def start_workers(self, count: int, concurrency: int) -> list[WorkerProcess]:
        config = self.write_config()
        started = []
        for index in range(len(self.processes), len(self.processes) + count):
            log = self.workdir / f"worker-{index}.log"
            handle = log.open("wb")
            process = await asyncio.create_subprocess_exec(
                str(NEXUS),
                "worker",
                "--config",
                str(config),
                "--concurrency",
                str(concurrency),
                stdout=handle,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "NEXUS_CONFIG": str(config)},
            )
            handle.close()
            started.append(WorkerProcess(process, log))
        self.processes.extend(started)
        return started

    async def stop_all(self) -> None:
        for worker in self.processes:
            if worker.process.returncode is None:
                worker.process.kill()
                await worker.process.wait()


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextlib.asynccontextmanager
async def deployment(
    *,
    skus: int,
    database_url: str,
    redis_url: str,
    namespace: str,
    workdir: Path,
    sandbox: ShopifySandbox,
    channel: dict[str, Any],
    worker: dict[str, Any],
) -> AsyncIterator[Deployment]:
    """The sandbox served on loopback, seeded and imported into a migrated PostgreSQL database."""
    async with serve_app(sandbox.app) as server:
        deployed = Deployment(
            sandbox=sandbox,
            base_url=server.base_url,
            database_url=database_url,
            redis_url=redis_url,
            namespace=namespace,
            workdir=workdir,
            channel={
                "driver": "shopify",
                "base_url": server.base_url,
                "credentials": {
                    "access_token": sandbox.access_token,
                    "webhook_secret": sandbox.webhook_secret,
                },
                "settings": {"location_id": str(sandbox.location_id), "variants_per_product": 1},
                **channel,
            },
            worker=worker,
        )
        await _seed(deployed, skus)
        try:
            yield deployed
        finally:
            await deployed.stop_all()
            await sandbox.aclose()


async def _seed(deployed: Deployment, skus: int) -> None:
    """Items and an import, with every bucket lifted (set-up is not what the tests measure)."""
    deployed.sandbox.seed_catalog(skus, quantity=10)
    bucket = deployed.sandbox.bucket
    rate, bucket.restore_rate = bucket.restore_rate, UNLIMITED
    maximum, bucket.maximum_available = bucket.maximum_available, 2000.0  # a page of 250 costs more than 300
    rng = random.Random(11)
    settings = deployed.settings(
        redis=False, rate_limit={"capacity": UNLIMITED, "refill_per_second": UNLIMITED}
    )
    try:
        async with Nexus(settings) as nexus:
            await nexus.migrate()
            await nexus.add_items(
                # The store shows 10 of everything; Nexus has 11..40, so every listing needs a push.
                ItemSpec(f"SKU-{i:06d}", title=f"Product {i}", barcode=ean13(i), on_hand=rng.randint(11, 40))
                for i in range(1, skus + 1)
            )
            report = await nexus.import_channel(CHANNEL)
            assert report.linked == skus, report
    finally:
        bucket.maximum_available = maximum
        bucket.currently_available()  # refills to the maximum at the lifted rate
        bucket.restore_rate = rate


async def desired_levels(nexus: Nexus) -> dict[str, int]:
    async with nexus.db.read() as session:
        rows = await session.execute(select(ChannelMapping.sku, ChannelMapping.desired_qty))
        return {sku: qty for sku, qty in rows.all()}


async def pending(nexus: Nexus) -> int:
    """Listings still dirty or leased."""
    async with nexus.db.read() as session:
        statement = select(func.count()).where(
            (ChannelMapping.dirty_since.is_not(None)) | (ChannelMapping.lease_owner.is_not(None))
        )
        return int((await session.execute(statement)).scalar_one())


async def wait_until_converged(
    nexus: Nexus, deployed: Deployment, *, timeout: float, workers: list[WorkerProcess] | None = None
) -> None:
    """Until nothing is pending and the store shows every desired quantity."""
    deadline = time.monotonic() + timeout
    while True:
        if await pending(nexus) == 0:
            desired = await desired_levels(nexus)
            if deployed.sandbox.levels() == desired:
                return
        for worker in workers or deployed.processes:
            if worker.process.returncode not in (None, -signal.SIGKILL, 0):
                raise AssertionError(f"worker {worker.pid} exited: {worker.output()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(w.output()[-1500:] for w in deployed.processes)
            raise AssertionError(f"not converged after {timeout} s: {await pending(nexus)} pending\n{logs}")
        await asyncio.sleep(0.1)
