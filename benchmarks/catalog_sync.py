"""Full catalog sync against a Shopify sandbox with Shopify's real GraphQL limits.

DESIGN target: "a full catalog sync takes no longer than 1.1 x the channels' own limits allow
(request budget x items per request), with zero 429s / THROTTLED; a per-SKU, one-request-per-listing
design is the baseline it must beat by orders of magnitude".

One repetition:

1. A ShopifySandbox (bucket 2000 points, restore 100/s, times --time-scale) seeded with N
   single-variant products, served on loopback in this event loop (as `nexus demo` does).
2. Nexus on SQLite in a temp dir: N items, then `import_channel` links the N listings. The import
   is set-up, not measured: it runs with the sandbox's and Nexus's buckets lifted, and both
   buckets start full for the measured part.
3. Measured: `nexus.catalog().sync_all()` with the push worker running
   (`nexus.runtime.running(web=False)`), until `BatchCompleted`. Requests, THROTTLED answers and
   items applied come from `sandbox.stats`.
4. Baseline, same run: a second sandbox with the same limits and catalog, and the Shopify driver
   of a second Nexus (its own token bucket, same limits) pushing one request per listing, one
   after the other (`driver.push_inventory([one_update])`), for the first --baseline-listings
   listings with exactly the updates the worker sent. When that is fewer than N the time for N
   is extrapolated, and labelled so: max(measured time + the remaining listings at the pace of
   the subset's last half, the bucket's own minimum for N one-listing requests). That is a lower
   bound for the baseline, so the ratio errs in the baseline's favour.

Limit-allowed minimum (bucket starts full, mutation costs 10 points, 250 items per request):
    time_min = max(0, (requests * 10 - 2000) / (100 * time_scale))
When the bucket never empties (N <= 50,000 items at 250 per request) time_min is 0 and the bound
is the server's and Nexus's own speed: the ratio is then reported as n/a and items/s is the figure.

--latency-ms L1,L2,...: each case again with the sandboxes adding that network latency per
request (`latency_ms` of every sandbox: half before the store sees a request, half before its
answer starts), as a remote store would; the set-up (import) runs without it. A pusher with one
request in flight cannot beat requests x latency ("one in flight" in the output); the limit-allowed
minimum does not change with latency, so a pipelined pusher can still reach it.

    .venv/bin/python benchmarks/catalog_sync.py                       # N = 5000, real limits
    .venv/bin/python benchmarks/catalog_sync.py --latency-ms 0,150    # both cases in one run
    .venv/bin/python benchmarks/catalog_sync.py --skus 100000 --repeat 1     # the bucket empties
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import itertools
import json
import math
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quiet import quiet_logs
from sqlalchemy import select

from nexus import eventloop
from nexus.config import ChannelConfig, NexusSettings, RateLimitOverride, WorkerConfig
from nexus.domain.catalog import ItemSpec
from nexus.drivers.dto import NexusInventoryUpdate, PushStatus
from nexus.engine import Nexus
from nexus.events import BatchCompleted
from nexus.runtime import freeze_startup_heap, rounds_in_flight, running
from nexus.sandbox.shopify import ShopifySandbox, ean13
from nexus.storage.models import ChannelMapping
from nexus.sync.outcomes import OutcomeWriter
from nexus.sync.queue import ListingQueue
from nexus.sync.worker import PushWorker
from nexus.web.server import LoopbackServer, serve_app

CHANNEL = "shopify-bench"
BUCKET_POINTS = 2000.0  # Shopify's standard plan: 2000-point bucket ...
RESTORE_PER_SECOND = 100.0  # ... refilled at 100 points/s
MUTATION_COST = 10  # inventorySetQuantities
# What a channel gets unless its configuration says otherwise: rate_limit.headroom_seconds.
DEFAULT_HEADROOM = RateLimitOverride().headroom_seconds
ITEMS_PER_REQUEST = 250
UNLIMITED = 1e12
THIS_FILE = str(Path(__file__).resolve())


class DatabaseClock:
    """Wall time inside the worker's two database steps of a round, claim and record (what each
    awaits, so with several rounds in flight it includes waiting for SQLite's one writer)."""

    def __init__(self) -> None:
        self.claims = 0
        self.claim_seconds = 0.0
        self.records = 0
        self.record_seconds = 0.0
        # The sandbox's own GraphQL execution (same process, same GIL), without its HTTP stack.
        self.sandbox_requests = 0
        self.sandbox_seconds = 0.0
        self.cpu_seconds = 0.0  # this process's CPU time (every thread) during the sync
        # The sync's timeline, in seconds from sync_all(): where the time above the limit goes.
        self.started = 0.0
        self.marked = 0.0  # sync_all() returned: every listing marked for the batch
        self.first_sent = math.inf  # the first push request left
        self.last_answered = 0.0  # the last push request's answer came back

    def watch(self, sandbox: ShopifySandbox) -> None:
        handle = sandbox.graphql.handle

        def timed_handle(payload: Any) -> Any:
            started = time.perf_counter()
            try:
                return handle(payload)
            finally:
                self.sandbox_requests += 1
                self.sandbox_seconds += time.perf_counter() - started

        sandbox.graphql.handle = timed_handle  # type: ignore[method-assign]

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        claim, record, push = ListingQueue.claim, OutcomeWriter.record, PushWorker._push
        clock = self

        async def timed_push(worker: PushWorker, *args: Any, **kwargs: Any) -> Any:
            clock.first_sent = min(clock.first_sent, time.perf_counter() - clock.started)
            try:
                return await push(worker, *args, **kwargs)
            finally:
                clock.last_answered = max(clock.last_answered, time.perf_counter() - clock.started)

        async def timed_claim(queue: ListingQueue, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await claim(queue, *args, **kwargs)
            finally:
                clock.claims += 1
                clock.claim_seconds += time.perf_counter() - started

        async def timed_record(writer: OutcomeWriter, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await record(writer, *args, **kwargs)
            finally:
                clock.records += 1
                clock.record_seconds += time.perf_counter() - started

        ListingQueue.claim = timed_claim  # type: ignore[method-assign]
        OutcomeWriter.record = timed_record  # type: ignore[method-assign]
        PushWorker._push = timed_push  # type: ignore[method-assign]
        try:
            yield
        finally:
            ListingQueue.claim = claim  # type: ignore[method-assign]
            OutcomeWriter.record = record  # type: ignore[method-assign]
            PushWorker._push = push  # type: ignore[method-assign]


@dataclass
class Run:
    skus: int
    time_scale: float
    latency_ms: float
    sandbox_process: bool
    in_flight: int  # push rounds in flight per channel (the driver's own when not forced)
    headroom: float  # seconds of the store's refill Nexus's own bucket leaves unused
    nexus_seconds: float
    requests: int
    throttled: int
    items_applied: int
    out_of_sync: int
    baseline_listings: int
    baseline_measured_seconds: float
    baseline_requests: int
    baseline_throttled: int
    baseline_seconds: float  # for all `skus` listings (extrapolated when the subset is smaller)
    claim_ms: float = 0.0  # per claim that found listings or not (every claim the worker made)
    record_ms: float = 0.0  # per recorded round
    rounds: int = 0
    sandbox_ms: float = 0.0  # the sandbox's GraphQL execution per request
    cpu_seconds: float = 0.0  # this process's CPU time during the sync
    marked: float = 0.0  # seconds from sync_all() until it returned (every listing marked)
    first_sent: float = 0.0  # ... until the first push request left
    last_answered: float = 0.0  # ... until the last push request's answer came back

    @property
    def extrapolated(self) -> bool:
        return self.baseline_listings < self.skus

    @property
    def time_min(self) -> float:
        return limit_minimum(self.requests, self.time_scale)

    @property
    def items_per_second(self) -> float:
        return self.skus / self.nexus_seconds

    @property
    def ratio_to_minimum(self) -> float | None:
        return self.nexus_seconds / self.time_min if self.time_min > 0 else None

    @property
    def speedup(self) -> float:
        return self.baseline_seconds / self.nexus_seconds


def limit_minimum(requests: int, time_scale: float, headroom: float = 0.0) -> float:
    """Seconds the channel's bucket forces on `requests` mutations, starting full; with
    `headroom`, the seconds Nexus's own bucket forces, which leaves that many seconds of the
    refill unused (`rate_limit.headroom_seconds`; the margin `BoundLimiter.margin`, as long as no
    round trip is slower)."""
    refill = RESTORE_PER_SECOND * time_scale
    burst = BUCKET_POINTS - min(BUCKET_POINTS / 2, refill * headroom)
    return max(0.0, (requests * MUTATION_COST - burst) / (RESTORE_PER_SECOND * time_scale))


@contextlib.contextmanager
def lifted(sandbox: ShopifySandbox) -> Iterator[None]:
    """Set-up traffic (the import) does not wait for the bucket nor for the network latency;
    afterwards the bucket is full again."""
    bucket = sandbox.bucket
    rate = bucket.restore_rate
    bucket.restore_rate = UNLIMITED
    latency = sandbox.network.ms
    sandbox.network.set_ms(0)
    try:
        yield
    finally:
        bucket.currently_available()  # refills to the maximum at the lifted rate
        bucket.restore_rate = rate
        sandbox.network.set_ms(latency)


@contextlib.asynccontextmanager
async def loopback(app: Any, *, nodelay: bool) -> AsyncIterator[LoopbackServer]:
    """`serve_app`, as shipped; with `nodelay`, TCP_NODELAY on the listener (accepted sockets inherit it).

    serve_app's socket is created with proto 0, so asyncio does not set TCP_NODELAY on the accepted
    connections: uvicorn writes the headers and the body of a response separately and, on a
    keep-alive connection, the body waits ~40 ms for the client's delayed ACK (Nagle).
    """
    async with serve_app(app) as server:
        if nodelay:
            for listener in server.server.servers:
                for sock in listener.sockets:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        yield server


class Store:
    """The measured sandbox as the benchmark drives it: in this process (as `nexus demo` runs
    it), or, with --sandbox-process, in a process of its own, as a remote store is (`Child`)."""

    base_url: str
    access_token: str
    webhook_secret: str
    location_id: int

    def lifted(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def counters(self) -> tuple[int, int, int]:
        """Requests, THROTTLED answers, quantities set so far."""
        raise NotImplementedError

    async def levels(self) -> dict[str, int]:
        raise NotImplementedError


class Local(Store):
    def __init__(self, sandbox: ShopifySandbox, base_url: str) -> None:
        self.sandbox = sandbox
        self.base_url = base_url
        self.access_token = sandbox.access_token
        self.webhook_secret = sandbox.webhook_secret
        self.location_id = sandbox.location_id

    @contextlib.asynccontextmanager
    async def lifted(self) -> AsyncIterator[None]:
        with lifted(self.sandbox):
            yield

    async def counters(self) -> tuple[int, int, int]:
        stats = self.sandbox.stats
        return stats.requests, stats.throttled, stats.quantities_set

    async def levels(self) -> dict[str, int]:
        return self.sandbox.levels()


class Child(Store):
    """A sandbox served by `catalog_sync.py --serve-sandbox` in a child process, driven by one
    JSON line per command on its stdin (lift, restore, counters, levels, quit)."""

    def __init__(self, process: asyncio.subprocess.Process, hello: dict[str, Any]) -> None:
        self.process = process
        self.base_url = hello["base_url"]
        self.access_token = hello["access_token"]
        self.webhook_secret = hello["webhook_secret"]
        self.location_id = hello["location_id"]

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, skus: int, time_scale: float, latency_ms: float, nodelay: bool
    ) -> AsyncIterator[Child]:
        options = json.dumps(
            {"skus": skus, "time_scale": time_scale, "latency_ms": latency_ms, "nodelay": nodelay}
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            THIS_FILE,
            "--serve-sandbox",
            options,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,
        )
        try:
            assert process.stdout is not None
            child = cls(process, json.loads(await process.stdout.readline()))
            yield child
            await child.ask("quit")
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()

    async def ask(self, command: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process ended")
        return json.loads(line)

    @contextlib.asynccontextmanager
    async def lifted(self) -> AsyncIterator[None]:
        await self.ask("lift")
        try:
            yield
        finally:
            await self.ask("restore")

    async def counters(self) -> tuple[int, int, int]:
        requests, throttled, applied = await self.ask("counters")
        return int(requests), int(throttled), int(applied)

    async def levels(self) -> dict[str, int]:
        levels: dict[str, int] = await self.ask("levels")
        return levels


async def serve_sandbox(options: dict[str, Any]) -> None:
    """The child of --sandbox-process: serve one sandbox and answer commands until "quit"."""
    sandbox = make_sandbox(options["skus"], options["time_scale"], options["latency_ms"])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    lift: contextlib.ExitStack | None = None

    def say(value: Any) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    try:
        async with loopback(sandbox.app, nodelay=options["nodelay"]) as shop:
            say(
                {
                    "base_url": shop.base_url,
                    "access_token": sandbox.access_token,
                    "webhook_secret": sandbox.webhook_secret,
                    "location_id": sandbox.location_id,
                }
            )
            while line := (await reader.readline()).decode().strip():
                if line == "quit":
                    say("bye")
                    break
                if line == "lift":
                    lift = contextlib.ExitStack()
                    lift.enter_context(lifted(sandbox))
                    say("ok")
                elif line == "restore":
                    if lift is not None:
                        lift.close()
                        lift = None
                    say("ok")
                elif line == "counters":
                    stats = sandbox.stats
                    say([stats.requests, stats.throttled, stats.quantities_set])
                elif line == "levels":
                    say(sandbox.levels())
                else:
                    say({"error": f"unknown command {line!r}"})
    finally:
        await sandbox.aclose()


def make_sandbox(skus: int, time_scale: float, latency_ms: float = 0.0) -> ShopifySandbox:
    sandbox = ShopifySandbox(
        seed=1,
        maximum_available=BUCKET_POINTS,
        restore_rate=RESTORE_PER_SECOND,
        time_scale=time_scale,
        latency_ms=latency_ms,
    )
    sandbox.seed_catalog(skus, quantity=10)
    return sandbox


def settings_for(
    database: Path,
    base_url: str,
    sandbox: ShopifySandbox | Store,
    *,
    capacity: float,
    refill: float,
    in_flight: int | None = None,
    headroom: float = DEFAULT_HEADROOM,
) -> NexusSettings:
    return NexusSettings(
        database_url=f"sqlite+aiosqlite:///{database}",
        channels={
            CHANNEL: ChannelConfig(
                driver="shopify",
                base_url=base_url,
                credentials={"access_token": sandbox.access_token, "webhook_secret": sandbox.webhook_secret},
                settings={"location_id": str(sandbox.location_id), "variants_per_product": 1},
                rate_limit=RateLimitOverride(
                    capacity=capacity, refill_per_second=refill, headroom_seconds=headroom
                ),
            )
        },
        # in_flight None: the Shopify driver's own max_in_flight.
        worker=WorkerConfig(lease_seconds=120, concurrency=in_flight),
    )


async def prepare(database: Path, store: Store, skus: int) -> None:
    """Items and an import, with every bucket lifted."""
    rng = random.Random(7)
    settings = settings_for(database, store.base_url, store, capacity=UNLIMITED, refill=UNLIMITED)
    async with store.lifted(), Nexus(settings, source="benchmark set-up") as nexus:
        await nexus.migrate()
        await nexus.add_items(
            # The sandbox shows 10 of everything; Nexus wants 0..40, so nearly every push changes it.
            ItemSpec(f"SKU-{i:06d}", title=f"Product {i}", barcode=ean13(i), on_hand=rng.randint(0, 40))
            for i in range(1, skus + 1)
        )
        report = await nexus.import_channel(CHANNEL)
        if report.linked != skus:
            raise RuntimeError(f"import linked {report.linked} of {skus} listings")


async def planned_updates(database: Path, limit: int, settings: NexusSettings) -> list[NexusInventoryUpdate]:
    """The updates the worker will send for the first `limit` listings (captured before it runs)."""
    async with Nexus(settings) as nexus, nexus.db.read() as session:
        rows = (
            await session.execute(select(ChannelMapping).order_by(ChannelMapping.id).limit(limit))
        ).scalars()
        return [
            NexusInventoryUpdate(
                listing_id=row.id,
                sku=row.sku,
                remote_id=row.remote_id,
                quantity=row.desired_qty,
                change_from=row.remote_qty,
                inventory_id=row.remote_inventory_id,
                channel_meta=dict(row.channel_meta or {}),
            )
            for row in rows
        ]


@contextlib.asynccontextmanager
async def _frozen_heap() -> AsyncIterator[None]:
    """The start-up heap frozen, as `nexus worker` does once started; unfrozen after, so that
    the baseline and later runs measure as before."""
    freeze_startup_heap()
    try:
        yield
    finally:
        gc.unfreeze()


async def measure_nexus(
    settings: NexusSettings, store: Store, clock: DatabaseClock, profile: Path | None = None
) -> tuple[float, int, int]:
    """Seconds from sync_all() to BatchCompleted, listings whose store level is not the desired
    one, and the push rounds in flight per channel. With `profile`, the measured part runs under
    cProfile (CPU time) and its statistics are written there (the timings then include its overhead)."""
    async with Nexus(settings) as nexus:
        done = asyncio.Event()
        nexus.events.listen(BatchCompleted, lambda _event: done.set())
        in_flight = rounds_in_flight(nexus, CHANNEL)
        async with running(nexus, web=False), _frozen_heap():
            profiler = cProfile.Profile(time.process_time) if profile is not None else None
            started = clock.started = time.perf_counter()
            cpu = time.process_time()
            if profiler is not None:
                profiler.enable()
            with clock.installed():
                batch_id = await nexus.catalog().sync_all([CHANNEL])
                clock.marked = time.perf_counter() - started
                await done.wait()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            elapsed = time.perf_counter() - started
            clock.cpu_seconds = time.process_time() - cpu
        status = await nexus.batch(batch_id).status()
        if status.failed or status.processed != status.total:
            raise RuntimeError(f"catalog batch did not complete cleanly: {status}")
        async with nexus.db.read() as session:
            rows = await session.execute(select(ChannelMapping.sku, ChannelMapping.desired_qty))
            desired = dict(rows.all())
    levels = await store.levels()
    return elapsed, sum(1 for sku, qty in desired.items() if levels.get(sku) != qty), in_flight


async def measure_baseline(
    updates: list[NexusInventoryUpdate],
    time_scale: float,
    skus: int,
    workdir: Path,
    nodelay: bool,
    latency_ms: float = 0.0,
) -> tuple[float, float, int, int]:
    """One request per listing, in a loop.

    Returns (measured seconds, seconds for `skus` listings, requests, THROTTLED answers)."""
    sandbox = make_sandbox(len(updates), time_scale, latency_ms)
    try:
        async with loopback(sandbox.app, nodelay=nodelay) as shop:
            refill = RESTORE_PER_SECOND * time_scale
            settings = settings_for(
                workdir / "baseline.db", shop.base_url, sandbox, capacity=BUCKET_POINTS, refill=refill
            )
            async with Nexus(settings) as nexus:
                driver = nexus.channel(CHANNEL).driver
                # The same listings on the second store, found by SKU.
                mapped = []
                for update in updates:
                    variant_id, item_id = sandbox.variant_ids(update.sku)
                    mapped.append(
                        NexusInventoryUpdate(
                            listing_id=update.listing_id,
                            sku=update.sku,
                            remote_id=str(variant_id),
                            quantity=update.quantity,
                            change_from=update.change_from,
                            inventory_id=str(item_id),
                        )
                    )
                finished: list[float] = []
                started = time.perf_counter()
                for update in mapped:
                    [result] = await driver.push_inventory([update])
                    if result.status is not PushStatus.OK:
                        raise RuntimeError(f"baseline push failed: {result}")
                    finished.append(time.perf_counter() - started)
    finally:
        await sandbox.aclose()
    measured = finished[-1]
    total = measured
    remaining = skus - len(updates)
    if remaining > 0:
        # The rest at the pace of the subset's last half, and never faster than the bucket allows.
        half = len(finished) // 2
        tail_seconds = finished[-1] - finished[half - 1] if half else measured
        per_listing = tail_seconds / (len(finished) - half) if half else measured / len(finished)
        total = max(measured + remaining * per_listing, limit_minimum(skus, time_scale))
    return measured, total, sandbox.stats.requests, sandbox.stats.throttled


async def run_once(
    skus: int,
    time_scale: float,
    baseline_listings: int,
    nodelay: bool = False,
    latency_ms: float = 0.0,
    in_flight: int | None = None,
    sandbox_process: bool = False,
    profile: Path | None = None,
    headroom: float = DEFAULT_HEADROOM,
) -> Run:
    baseline_listings = max(1, min(baseline_listings, skus))
    with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
        workdir = Path(tmp)
        database = workdir / "nexus.db"
        clock = DatabaseClock()
        async with contextlib.AsyncExitStack() as stack:
            store: Store
            if sandbox_process:
                store = await stack.enter_async_context(Child.start(skus, time_scale, latency_ms, nodelay))
            else:
                sandbox = make_sandbox(skus, time_scale, latency_ms)
                stack.push_async_callback(sandbox.aclose)
                shop = await stack.enter_async_context(loopback(sandbox.app, nodelay=nodelay))
                store = Local(sandbox, shop.base_url)
                clock.watch(sandbox)
            await prepare(database, store, skus)
            real = settings_for(
                database,
                store.base_url,
                store,
                capacity=BUCKET_POINTS,
                refill=RESTORE_PER_SECOND * time_scale,
                in_flight=in_flight,
                headroom=headroom,
            )
            updates = await planned_updates(database, baseline_listings, real)
            before = await store.counters()
            clock.sandbox_requests, clock.sandbox_seconds = 0, 0.0  # the sync's requests only
            elapsed, out_of_sync, rounds = await measure_nexus(real, store, clock, profile)
            after = await store.counters()
            requests, throttled, applied = (a - b for a, b in zip(after, before, strict=True))
        measured, baseline_total, base_requests, base_throttled = await measure_baseline(
            updates, time_scale, skus, workdir, nodelay, latency_ms
        )
    return Run(
        skus=skus,
        time_scale=time_scale,
        latency_ms=latency_ms,
        sandbox_process=sandbox_process,
        in_flight=rounds,
        headroom=headroom,
        nexus_seconds=elapsed,
        requests=requests,
        throttled=throttled,
        items_applied=applied,
        out_of_sync=out_of_sync,
        baseline_listings=baseline_listings,
        baseline_measured_seconds=measured,
        baseline_requests=base_requests,
        baseline_throttled=base_throttled,
        baseline_seconds=baseline_total,
        claim_ms=1000 * clock.claim_seconds / max(1, clock.claims),
        record_ms=1000 * clock.record_seconds / max(1, clock.records),
        rounds=clock.records,
        sandbox_ms=1000 * clock.sandbox_seconds / max(1, clock.sandbox_requests),
        cpu_seconds=clock.cpu_seconds,
        marked=clock.marked,
        first_sent=clock.first_sent,
        last_answered=clock.last_answered,
    )


def _fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "n/a (the bucket never empties: time_min = 0)"


def report(runs: list[Run], *, nodelay: bool = False) -> dict[str, Any]:
    first = runs[0]
    median = statistics.median
    nexus_s = median(r.nexus_seconds for r in runs)
    baseline_s = median(r.baseline_seconds for r in runs)
    ideal_requests = math.ceil(first.skus / ITEMS_PER_REQUEST)
    time_min = limit_minimum(first.requests, first.time_scale)
    floor = limit_minimum(first.requests, first.time_scale, first.headroom)
    summary: dict[str, Any] = {
        "skus": first.skus,
        "time_scale": first.time_scale,
        "repeat": len(runs),
        "latency_ms": first.latency_ms,
        "in_flight": first.in_flight,
        "sandbox_process": first.sandbox_process,
        "claim_ms": median(r.claim_ms for r in runs),
        "record_ms": median(r.record_ms for r in runs),
        "rounds": first.rounds,
        "sandbox_ms": median(r.sandbox_ms for r in runs),
        "cpu_seconds": median(r.cpu_seconds for r in runs),
        # One request in flight at a time cannot finish sooner than this (the round trips alone).
        "one_in_flight_seconds": first.requests * first.latency_ms / 1000,
        "tcp_nodelay": nodelay,
        "nexus_seconds": nexus_s,
        "items_per_second": first.skus / nexus_s,
        "requests": first.requests,
        "ideal_requests": ideal_requests,
        "throttled": sum(r.throttled for r in runs),
        "out_of_sync": sum(r.out_of_sync for r in runs),
        "time_min": time_min,
        # Once the bucket is empty the channel allows restore/cost requests/s of 250 items each.
        "budget_items_per_second": ITEMS_PER_REQUEST * RESTORE_PER_SECOND * first.time_scale / MUTATION_COST,
        "ratio_to_minimum": nexus_s / time_min if time_min > 0 else None,
        "headroom": first.headroom,
        "headroom_floor": floor,
        "ratio_to_floor": nexus_s / floor if floor > 0 else None,
        "baseline_listings": first.baseline_listings,
        "baseline_extrapolated": first.extrapolated,
        "baseline_measured_seconds": median(r.baseline_measured_seconds for r in runs),
        "baseline_seconds": baseline_s,
        "baseline_throttled": sum(r.baseline_throttled for r in runs),
        "baseline_time_min": limit_minimum(first.skus, first.time_scale),
        "speedup": baseline_s / nexus_s,
    }
    print(
        f"catalog sync: {first.skus} SKUs, Shopify sandbox bucket {BUCKET_POINTS:.0f} points, "
        f"restore {RESTORE_PER_SECOND:.0f}/s x time_scale {first.time_scale:g} "
        f"= {RESTORE_PER_SECOND * first.time_scale:g}/s; added network latency "
        f"{first.latency_ms:g} ms per request; {first.in_flight} push round(s) in flight; sandbox "
        + ("in a process of its own" if first.sandbox_process else "in this process and event loop")
        + "; loopback server: "
        + ("serve_app + TCP_NODELAY workaround" if nodelay else "serve_app as shipped")
    )
    for n, run in enumerate(runs, start=1):
        print(
            f"  run {n}: nexus {run.nexus_seconds:.3f} s ({run.items_per_second:,.0f} items/s, "
            f"{run.requests} requests, {run.throttled} THROTTLED, {run.items_applied} items applied, "
            f"{run.out_of_sync} out of sync) | baseline {run.baseline_listings} listings "
            f"{run.baseline_measured_seconds:.3f} s, {run.baseline_throttled} THROTTLED"
            + (f", {run.baseline_seconds:.1f} s extrapolated to {run.skus}" if run.extrapolated else "")
            + f" | ratio {run.speedup:.1f}x | database per round: claim {run.claim_ms:.1f} ms, "
            f"record {run.record_ms:.1f} ms ({run.rounds} rounds); sandbox GraphQL {run.sandbox_ms:.1f} ms "
            f"a request; process CPU {run.cpu_seconds:.2f} s "
            f"({run.cpu_seconds / run.nexus_seconds:.0%} of the time) | timeline: marked "
            f"{run.marked:.3f} s, first push sent {run.first_sent:.3f} s, last answered "
            f"{run.last_answered:.3f} s, batch completed {run.nexus_seconds:.3f} s"
        )
    print(f"median of {len(runs)}:")
    print(
        f"  nexus:     {nexus_s:.3f} s, {summary['items_per_second']:,.0f} items/s, "
        f"{first.requests} requests (ideal {ideal_requests}), THROTTLED {summary['throttled']}, "
        f"out of sync {summary['out_of_sync']}"
    )
    budget = summary["budget_items_per_second"]
    print(
        f"  the bucket's steady rate allows {budget:,.0f} items/s; nexus pushed at "
        f"{summary['items_per_second'] / budget:.0%} of it"
    )
    print(
        f"  limit-allowed minimum: {time_min:.3f} s -> measured/minimum = "
        f"{_fmt_ratio(summary['ratio_to_minimum'])} (target <= 1.1)"
    )
    if first.headroom and floor > 0:
        print(
            f"  nexus's own floor with rate_limit.headroom_seconds {first.headroom:g} (that much refill "
            f"left unused): {floor:.3f} s = {floor / time_min:.2f}x the minimum -> measured/floor = "
            f"{summary['ratio_to_floor']:.2f}"
        )
    if first.latency_ms > 0:
        one = summary["one_in_flight_seconds"]
        print(
            f"  one request in flight at a time needs >= {one:.3f} s for {first.requests} requests at "
            f"{first.latency_ms:g} ms -> measured / that = {nexus_s / one:.2f}"
        )
    label = f"extrapolated from the first {first.baseline_listings}" if first.extrapolated else "measured"
    print(
        f"  baseline (one request per listing): {baseline_s:.2f} s for {first.skus} listings ({label}; "
        f"its own limit-allowed minimum {summary['baseline_time_min']:.2f} s), "
        f"THROTTLED {summary['baseline_throttled']}"
    )
    print(f"  ratio baseline_time / nexus_time = {summary['speedup']:.1f}x")
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=5000, help="catalog size N (default 5000)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="the sandbox refills its bucket this many times faster (and Nexus is told so); default 1",
    )
    parser.add_argument(
        "--baseline-listings",
        type=int,
        default=500,
        help="listings the one-request-per-listing baseline really pushes; the rest is extrapolated",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument(
        "--latency-ms",
        default="0",
        help="network latency the sandboxes add per request, in ms; comma-separated for several "
        "cases in one run (e.g. 0,150); default 0",
    )
    parser.add_argument(
        "--in-flight",
        default="auto",
        help="push rounds in flight per channel (worker.concurrency); comma-separated for several "
        "cases in one run (e.g. 1,auto: sequential rounds beside the driver's own max_in_flight); "
        "default auto",
    )
    parser.add_argument(
        "--sandbox-process",
        action="store_true",
        help="serve the measured sandbox from a process of its own (as a remote store: its CPU is "
        "not Nexus's); default: in this event loop, as `nexus demo` does",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write cProfile statistics of the measured sync (the last run's) to this file",
    )
    parser.add_argument("--serve-sandbox", help=argparse.SUPPRESS)  # the child of --sandbox-process
    parser.add_argument(
        "--headroom",
        default=f"{DEFAULT_HEADROOM:g}",
        help="the channel's rate_limit.headroom_seconds: the seconds of the store's refill Nexus "
        "leaves unused; "
        f"comma-separated for several cases in one run (e.g. {DEFAULT_HEADROOM:g},0); default "
        f"{DEFAULT_HEADROOM:g}, the configuration's",
    )
    parser.add_argument(
        "--tcp-nodelay",
        action="store_true",
        help="work around serve_app's missing TCP_NODELAY (see `loopback`); default: serve_app as shipped",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The summary of the first --latency-ms case, with every case's summary under "cases"."""
    args = parse_args(argv)
    if args.serve_sandbox:
        asyncio.run(serve_sandbox(json.loads(args.serve_sandbox)))
        return {}
    latencies = [float(value) for value in args.latency_ms.split(",") if value.strip()]
    widths = [None if value.strip() == "auto" else int(value) for value in args.in_flight.split(",")]
    headrooms = [float(value) for value in args.headroom.split(",") if value.strip()]
    cases = []
    for latency_ms, in_flight, headroom in itertools.product(latencies, widths, headrooms):
        runs = [
            eventloop.run(  # as `nexus worker` runs: uvloop where installed
                run_once(
                    args.skus,
                    args.time_scale,
                    args.baseline_listings,
                    args.tcp_nodelay,
                    latency_ms,
                    in_flight,
                    args.sandbox_process,
                    args.profile,
                    headroom,
                )
            )
            for _ in range(args.repeat)
        ]
        cases.append(report(runs, nodelay=args.tcp_nodelay))
    if len(cases) > 1:
        print("by latency (same run):")
        base = cases[0]
        for case in cases:
            ratio = case["ratio_to_minimum"]
            print(
                f"  {case['latency_ms']:g} ms, {case['in_flight']} in flight, headroom {case['headroom']:g}: "
                f"nexus {case['nexus_seconds']:.3f} s "
                f"({case['nexus_seconds'] / base['nexus_seconds']:.2f}x the first case), "
                f"{case['items_per_second']:,.0f} items/s, measured/min "
                + (f"{ratio:.2f}" if ratio is not None else "n/a")
                + f", THROTTLED {case['throttled']}, out of sync {case['out_of_sync']}, "
                f"baseline {case['baseline_seconds']:.1f} s, ratio baseline / nexus {case['speedup']:.1f}x"
            )
    return {**cases[0], "cases": cases}


if __name__ == "__main__":
    quiet_logs()
    main(sys.argv[1:])
