"""Rate-limit utilisation: N worker processes sharing one Shopify budget, against per-worker limiters.

ISSUE target: "the sandbox enforcing Shopify's real limits scaled by a time factor; 1 and 4 worker
processes; achieved request rate / allowed rate, and the 429 count; beside it, in the same run, a
baseline of per-worker limiters (what a per-worker `rate_limit` in a typical task queue does).
Goal: >= 0.9 utilisation with 0 429s for Nexus."

One run (a mode, N processes, C push rounds in flight per process):

1. A ShopifySandbox with Shopify's Standard GraphQL limits (bucket 2000 points, restore 100
   points/s, x --time-scale, default 1) that answers THROTTLED with HTTP 429 and a Retry-After header, seeded
   with --skus single-variant products and served on loopback in this process's event loop.
2. A fresh PostgreSQL database (created for the run, dropped after it) and a Redis namespace of
   its own (its keys deleted after it). Set-up, not measured: items, then `import_channel`, with
   the sandbox's and Nexus's buckets lifted; the sandbox's bucket is full again afterwards.
3. N worker processes, each with C push rounds, started from a generated nexus.toml whose channel
   carries the documented limits (`rate_limit = {capacity = 2000, refill_per_second = 100 x
   time_scale}`) and a small `batch_size` (--batch-size, default 5), so that the catalog holds
   far more requests than the window allows and the workers never run out of work. Once every
   process is up, this process calls `catalog().sync_all()`, which marks every listing dirty.
4. Measured at the sandbox, which wraps its GraphQL handler to log (arrival time, executed
   mutations, THROTTLED answers, items applied) per request: the window is D = --duration seconds
   from the first request's arrival, t0.

       allowed     = (L0 + restore x time_scale x D) / 10    L0: the sandbox bucket's level at t0
       achieved    = inventorySetQuantities executed by the sandbox in [t0, t0 + D]
       utilisation = achieved / allowed                      429s = THROTTLED answers in the window
       2nd half    = achieved in [t0 + D/2, t0 + D] / (restore x time_scale x D/2 / 10)

   L0 is 2000 (a full bucket): the allowance is the burst plus what the bucket restores in D.
   An executed mutation spends 10 points whether or not it applies (a userError still costs);
   THROTTLED answers spend nothing and are not counted as achieved. Every point not spent is
   still in the store's bucket at t0 + D (unless it overflowed), so `bucket D` (computed from
   the recorded levels) accounts for the shortfall; `2nd half` is the sustained share of the
   restore rate once the burst is spent (above 1 while the burst is still being drained).

Modes, each run for every --processes count, one after the other, in the same invocation:

- nexus: `nexus worker --config nexus.toml --concurrency C` (the real CLI) with `redis_url` set,
  so every process shares one RedisTokenBucket and re-syncs it from Shopify's throttleStatus.
- per-worker (the baseline): the same workers, run by this file's own `--worker` entry point as
  `Nexus(settings, bucket=FixedRateBucket(2000, restore))` without Redis: each process has its own
  bucket at the channel's full documented rate (what a task queue's per-worker `rate_limit`
  gives: every worker believes it has the whole budget), ignores throttleStatus (no observe, no
  refund), and after a 429 pauses only itself for the Retry-After the sandbox sends (whole
  seconds, at least 1) before the driver retries, as a task retried with that countdown would.
  It is kinder than a Celery `rate_limit`, whose bucket holds 1 token and so never uses the burst.
- divided: the same, with 1/N of the budget per process (capacity 2000/N, restore/N); only for
  N > 1, where it differs from per-worker. It needs N known in advance and wastes an idle
  process's share (see docs/benchmarks.md).

The limit must bind, not our own speed: every run reports whether work remained when the window
closed, the store's unspent points at D/2 and D, and the median push time in the audit rows
(which includes the wait for the bucket). Draining the 200-request burst takes a push rate above
restore/10 + 200/D requests/s; on 2 shared cores four processes did not always manage 33/s
(time scale 2, D = 15 s), hence the defaults: real limits (time scale 1) and D = 20 s, which
need 20/s. Nexus's own ceiling is measured with a time scale at which the bucket never binds.

    .venv/bin/python benchmarks/rate_limit_utilisation.py                    # 1 and 4 processes
    .venv/bin/python benchmarks/rate_limit_utilisation.py --modes nexus --time-scale 50   # own ceiling

A run killed with SIGKILL leaves its database (nexus_bench_rl_*) behind; its workers die with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import math
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from quiet import quiet_logs
from sqlalchemy import select, update

from nexus.config import NexusSettings, RateLimitOverride, load_settings
from nexus.domain.catalog import ItemSpec
from nexus.drivers.contract import RateLimitConfig
from nexus.engine import Nexus
from nexus.ratelimit.bucket import InProcessTokenBucket
from nexus.sandbox.shopify import ShopifySandbox, ean13
from nexus.storage.models import ChannelMapping, SyncJob

CHANNEL = "shopify-bench"
BUCKET_POINTS = 2000.0  # Shopify Standard plan: a 2000-point bucket ...
RESTORE_PER_SECOND = 100.0  # ... restored at 100 points/s (times --time-scale here)
MUTATION_COST = 10  # inventorySetQuantities, whatever the number of items
UNLIMITED = 1e12
NEXUS_CLI = Path(sys.executable).with_name("nexus")
THIS_FILE = Path(__file__).resolve()
READY_LINE = "nexus running"  # logged by nexus.runtime.serve_forever once the workers run
MODES = ("nexus", "per-worker", "divided")
DEFAULT_POSTGRES = os.environ.get("NEXUS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DEFAULT_REDIS = os.environ.get("NEXUS_TEST_REDIS", "redis://127.0.0.1:6379/15")


# -- the baseline's bucket -----------------------------------------------------------------------


class FixedRateBucket(InProcessTokenBucket):
    """One process's own bucket at a fixed rate, deaf to the channel's throttleStatus.

    The configured limit the driver passes in is ignored in favour of this process's share, and
    `observe`/`refund` do nothing: a task queue's rate limiter counts its own calls and knows
    nothing of the store's answers. A 429 pauses this process only, for the Retry-After the
    sandbox sends: its formula, max(1, ceil(seconds until the request fits)), applied to the
    driver's own estimate of those seconds.
    """

    def __init__(self, capacity: float, refill_per_second: float) -> None:
        super().__init__()
        self.share = RateLimitConfig(capacity=capacity, refill_per_second=refill_per_second)

    async def reserve(self, key: str, cost: float, limit: RateLimitConfig) -> float:
        return await super().reserve(key, cost, self.share)

    async def penalize(self, key: str, seconds: float) -> None:
        await super().penalize(key, max(1.0, math.ceil(seconds)))

    async def refund(self, key: str, tokens: float, limit: RateLimitConfig) -> None:
        return None

    async def observe(
        self,
        key: str,
        limit: RateLimitConfig,
        *,
        available: float,
        capacity: float | None = None,
        refill_per_second: float | None = None,
    ) -> None:
        return None

    async def level(self, key: str, limit: RateLimitConfig) -> float:
        return await super().level(key, self.share)


def worker_main(config: Path, capacity: float, refill: float, concurrency: int) -> None:
    """A baseline worker process: `nexus worker`, but with a FixedRateBucket and no Redis."""
    from nexus.runtime import serve_forever

    settings, source = load_settings(config)
    settings = settings.model_copy(update={"redis_url": None})
    _configure_worker_logs(settings.log_level)

    async def go() -> None:
        async with Nexus(settings, source=source, bucket=FixedRateBucket(capacity, refill)) as nexus:
            await serve_forever(nexus, web=False, workers=True, host="", port=0, concurrency=concurrency)

    asyncio.run(go())


def _configure_worker_logs(level: str) -> None:
    import structlog

    logging.basicConfig(level=level.upper(), format="%(message)s")
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
    )


# -- what the sandbox saw --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # time.monotonic() when the request reached the GraphQL handler
    level: float  # the sandbox bucket's points just before it
    done: float  # time.monotonic() when the handler returned ...
    level_after: float  # ... and the bucket's points then
    executed: int  # inventorySetQuantities executed (they spent points)
    throttled: int
    items: int


class Recorder:
    """Wraps the sandbox's GraphQL handler (synchronous, so counter deltas belong to one request)."""

    def __init__(self, sandbox: ShopifySandbox) -> None:
        self.sandbox = sandbox
        self.restore = sandbox.bucket.restore_rate
        self.maximum = sandbox.bucket.maximum_available
        self.armed = False
        self.arrivals: list[Arrival] = []
        self.first = asyncio.Event()
        original = sandbox.graphql.handle

        def handle(payload: Any) -> Any:
            if not self.armed:
                return original(payload)
            stats = sandbox.stats
            at, level = time.monotonic(), sandbox.bucket.currently_available()
            before = (stats.mutations, stats.throttled, stats.quantities_set)
            reply = original(payload)
            self.arrivals.append(
                Arrival(
                    at,
                    level,
                    time.monotonic(),
                    sandbox.bucket.currently_available(),
                    stats.mutations - before[0],
                    stats.throttled - before[1],
                    stats.quantities_set - before[2],
                )
            )
            self.first.set()
            return reply

        sandbox.graphql.handle = handle  # type: ignore[method-assign]

    def level_at(self, moment: float) -> float:
        """The sandbox bucket's points at `moment`, from the last request answered before it."""
        last = None
        for arrival in self.arrivals:
            if arrival.done > moment:
                break
            last = arrival
        if last is None:
            return self.maximum
        return min(self.maximum, last.level_after + self.restore * (moment - last.done))


# -- one run ---------------------------------------------------------------------------------------


@dataclass
class Options:
    skus: int
    batch_size: int
    duration: float
    time_scale: float
    processes: list[int]
    concurrency: int
    modes: list[str]
    postgres: str
    redis: str
    headroom: float | None = None  # None: the configuration's default
    keep_logs: Path | None = None

    @property
    def restore(self) -> float:
        return RESTORE_PER_SECOND * self.time_scale


@dataclass
class RunResult:
    mode: str
    processes: int
    concurrency: int
    window_seconds: float
    bucket_at_start: float  # L0, points
    allowed: float
    achieved: int
    throttled: int  # THROTTLED answers (HTTP 429) in the window
    throttled_total: int  # ... until the workers were stopped
    items_pushed: int  # in the window
    unpushed_at_end: int  # listings not yet applied when the window closed
    bucket_at_half: float  # the sandbox bucket's points at t0 + D/2 ...
    bucket_at_end: float  # ... and at t0 + D: points nobody spent (the shortfall, but for overflow)
    steady_achieved: int  # executed in the window's second half
    steady_allowed: float  # what the restore rate alone allows in that half
    push_ms_median: float | None  # audit rows: one push, bucket wait included
    processes_that_pushed: int
    work_ran_out: bool
    busy_seconds: float  # t0 to the window's last executed request (< the window if work ran out)

    @property
    def utilisation(self) -> float:
        return self.achieved / self.allowed if self.allowed > 0 else 0.0

    @property
    def steady_ratio(self) -> float:
        """The second half's rate / the restore rate: the sustained share once the burst is spent
        (above 1 while the burst is still being drained: see bucket_at_half)."""
        return self.steady_achieved / self.steady_allowed if self.steady_allowed > 0 else 0.0

    @property
    def requests_per_second(self) -> float:
        """Achieved rate while there was work: Nexus's own ceiling when the bucket does not bind."""
        return self.achieved / self.busy_seconds if self.busy_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "utilisation": self.utilisation,
            "steady_ratio": self.steady_ratio,
            "requests_per_second": self.requests_per_second,
        }


def settings_for(
    options: Options,
    *,
    database_url: str,
    base_url: str,
    sandbox: ShopifySandbox,
    namespace: str,
    redis: bool,
    capacity: float = BUCKET_POINTS,
    refill: float | None = None,
) -> NexusSettings:
    """What the workers run with (the channel's documented limits, scaled like the sandbox)."""
    return NexusSettings(
        database_url=database_url,
        redis_url=options.redis if redis else None,
        redis_namespace=namespace,
        log_level="info",  # READY_LINE is an info line
        channels={
            CHANNEL: {
                "driver": "shopify",
                "base_url": base_url,
                "credentials": {
                    "access_token": sandbox.access_token,
                    "webhook_secret": sandbox.webhook_secret,
                },
                "settings": {"location_id": str(sandbox.location_id), "variants_per_product": 1},
                "batch_size": options.batch_size,
                "rate_limit": {
                    "capacity": capacity,
                    "refill_per_second": refill or options.restore,
                    **({"headroom_seconds": options.headroom} if options.headroom is not None else {}),
                },
            }
        },
        # Baseline workers have no Redis wake-ups and find the work by polling: poll often, so
        # that they start within a fraction of a second of Nexus's workers. A short grace: the
        # window is over when they are stopped.
        worker={"poll_interval": 0.2, "lease_seconds": 60, "shutdown_grace": 2.0},
    )


async def prepare(settings: NexusSettings, sandbox: ShopifySandbox, skus: int) -> None:
    """Schema, items and an import, with every bucket lifted; the sandbox's is full afterwards.

    `settings` must be unlimited and without Redis (set-up is not what is measured)."""
    bucket = sandbox.bucket
    rate, bucket.restore_rate = bucket.restore_rate, UNLIMITED
    rng = random.Random(7)
    try:
        async with Nexus(settings, source="benchmark set-up") as nexus:
            await nexus.migrate()
            await nexus.add_items(
                # The store shows 10 of everything; Nexus wants 11..40, so every listing needs a push.
                ItemSpec(f"SKU-{i:06d}", title=f"Product {i}", barcode=ean13(i), on_hand=rng.randint(11, 40))
                for i in range(1, skus + 1)
            )
            report = await nexus.import_channel(CHANNEL)
            if report.linked != skus:
                raise RuntimeError(f"import linked {report.linked} of {skus} listings")
            # The import marks every listing whose level differs dirty, and each worker process
            # would start pushing as soon as it is up, one before the other. Clean them: the
            # work starts for all processes at once, with `sync_all` once every one is up.
            async with nexus.db.transaction() as session:
                await session.execute(update(ChannelMapping).values(dirty_since=None))
    finally:
        bucket.currently_available()  # refills to the maximum at the lifted rate
        bucket.restore_rate = rate


class _SignalNeutralServer(uvicorn.Server):
    """uvicorn's server, minus its SIGINT/SIGTERM capture.

    `serve_app`'s uvicorn.Server takes both signals for as long as it serves: a Ctrl-C would stop
    only the sandbox, the run would go on measuring a dead store, and the signal uvicorn raises
    again on its way out lands in serve_app's `suppress(CancelledError)`. Here the signals stay
    with asyncio.run, which cancels the run, so that its finally blocks clean up.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def loopback(app: Any) -> AsyncIterator[str]:
    """`nexus.web.server.serve_app` (TCP_NODELAY included), with `_SignalNeutralServer`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = _SignalNeutralServer(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the start-up error
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def temporary_database(admin_dsn: str, prefix: str = "nexus_bench_rl_") -> AsyncIterator[str]:
    """A fresh PostgreSQL database (an SQLAlchemy URL), dropped with its connections afterwards."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"{prefix}{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    await admin(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def temporary_namespace(redis_url: str, prefix: str = "nexus-bench-rl-") -> AsyncIterator[str]:
    """A Redis namespace of one's own; its keys are deleted afterwards."""
    from redis.asyncio import Redis

    namespace = f"{prefix}{uuid.uuid4().hex[:12]}"
    try:
        yield namespace
    finally:
        client = Redis.from_url(redis_url, socket_connect_timeout=5)
        try:
            keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the benchmark dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@dataclass
class Fleet:
    """The worker processes of one run. `stop` is always called (see `run_one`)."""

    workdir: Path
    processes: list[tuple[asyncio.subprocess.Process, Path]] = field(default_factory=list)

    async def start(self, command: Sequence[str], count: int) -> None:
        for index in range(count):
            log = self.workdir / f"worker-{index}.log"
            with log.open("wb") as handle:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    stdout=handle,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
            self.processes.append((process, log))

    async def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if all(READY_LINE in _read(log) for _, log in self.processes):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not up after {timeout:.0f} s:\n{self.tails()}")
            await asyncio.sleep(0.1)

    def check_alive(self) -> None:
        for process, _ in self.processes:
            if process.returncode is not None:
                raise RuntimeError(f"worker {process.pid} exited with {process.returncode}:\n{self.tails()}")

    def tails(self) -> str:
        return "\n".join(f"--- {log.name}\n{_read(log)[-2000:]}" for _, log in self.processes)

    async def stop(self) -> None:
        """SIGTERM (each releases its leases), then SIGKILL whatever is still running after 5 s."""
        running = [process for process, _ in self.processes if process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        if running:
            _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running], timeout=5)
            for process in running:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            for task in pending:
                await task


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def worker_command(mode: str, options: Options, config: Path, processes: int) -> list[str]:
    concurrency = str(options.concurrency)
    if mode == "nexus":
        return [str(NEXUS_CLI), "worker", "--config", str(config), "--concurrency", concurrency]
    share = processes if mode == "divided" else 1
    return [
        sys.executable,
        str(THIS_FILE),
        "--worker",
        str(config),
        "--bucket-capacity",
        repr(BUCKET_POINTS / share),
        "--bucket-refill",
        repr(options.restore / share),
        "--concurrency",
        concurrency,
    ]


async def run_one(mode: str, processes: int, options: Options) -> RunResult:
    sandbox = ShopifySandbox(
        seed=1,
        maximum_available=BUCKET_POINTS,
        restore_rate=RESTORE_PER_SECOND,
        time_scale=options.time_scale,
        throttled_status=429,
    )
    sandbox.seed_catalog(options.skus, quantity=10)
    recorder = Recorder(sandbox)
    with tempfile.TemporaryDirectory(prefix="nexus-bench-rl-") as tmp:
        workdir = Path(tmp)
        fleet = Fleet(workdir)
        try:
            async with (
                temporary_database(options.postgres) as database_url,
                temporary_namespace(options.redis) as namespace,
                loopback(sandbox.app) as base_url,
            ):
                where: dict[str, Any] = {
                    "database_url": database_url,
                    "base_url": base_url,
                    "sandbox": sandbox,
                    "namespace": namespace,
                }
                settings = settings_for(options, **where, redis=mode == "nexus")
                unlimited = settings_for(options, **where, redis=False, capacity=UNLIMITED, refill=UNLIMITED)
                await prepare(unlimited, sandbox, options.skus)
                config = workdir / "nexus.toml"
                config.write_text(settings.to_toml(), encoding="utf-8")
                try:
                    await fleet.start(worker_command(mode, options, config, processes), processes)
                    await fleet.wait_ready(timeout=120)
                    await measure(settings, sandbox, recorder, fleet, options)
                finally:
                    await fleet.stop()
                    if options.keep_logs is not None:
                        _keep_logs(workdir, options.keep_logs / f"{mode}-{processes}")
                push_ms, pushers = await audit(unlimited)
        finally:
            await sandbox.aclose()
    return summarise(mode, processes, options, recorder, push_ms, pushers)


async def measure(
    settings: NexusSettings, sandbox: ShopifySandbox, recorder: Recorder, fleet: Fleet, options: Options
) -> None:
    """Mark every listing dirty, then wait for the window to pass (the recorder measures)."""
    level = sandbox.bucket.currently_available()
    if level < BUCKET_POINTS:
        raise RuntimeError(f"the sandbox bucket holds {level} points before the window, not a full bucket")
    recorder.armed = True
    async with Nexus(settings) as nexus:
        # With Redis this wakes the Nexus workers at once; baseline workers find the work by polling.
        await nexus.catalog().sync_all([CHANNEL])
        try:
            await asyncio.wait_for(recorder.first.wait(), timeout=60)
        except TimeoutError:
            raise RuntimeError(f"no push reached the sandbox within 60 s:\n{fleet.tails()}") from None
        end = recorder.arrivals[0].at + options.duration
        while (now := time.monotonic()) < end:
            fleet.check_alive()
            await asyncio.sleep(min(0.25, end - now))
        await asyncio.sleep(0.1)  # the answers to the last requests in the window


async def audit(settings: NexusSettings) -> tuple[float | None, int]:
    """Median push time (its wait for the bucket included) and how many processes pushed."""
    async with Nexus(settings) as nexus, nexus.db.read() as session:
        durations = list((await session.execute(select(SyncJob.duration_ms))).scalars())
        payloads = (await session.execute(select(SyncJob.payload))).scalars().all()
    owners = {":".join(str(p.get("worker", "")).split(":")[:2]) for p in payloads}
    return (statistics.median(durations) if durations else None), len(owners)


def summarise(
    mode: str,
    processes: int,
    options: Options,
    recorder: Recorder,
    push_ms: float | None,
    pushers: int,
) -> RunResult:
    arrivals = recorder.arrivals
    t0 = arrivals[0].at
    half, end = t0 + options.duration / 2, t0 + options.duration
    window = [a for a in arrivals if a.at <= end]
    bucket_at_start = arrivals[0].level
    applied = sum(a.items for a in window)
    unpushed = options.skus - applied
    # Work "ran out" when fewer listings were left than the rounds in flight could take at once.
    in_flight = options.batch_size * options.concurrency * processes
    return RunResult(
        mode=mode,
        processes=processes,
        concurrency=options.concurrency,
        window_seconds=options.duration,
        bucket_at_start=bucket_at_start,
        allowed=(bucket_at_start + options.restore * options.duration) / MUTATION_COST,
        achieved=sum(a.executed for a in window),
        throttled=sum(a.throttled for a in window),
        throttled_total=sum(a.throttled for a in arrivals),
        items_pushed=applied,
        unpushed_at_end=unpushed,
        bucket_at_half=recorder.level_at(half),
        bucket_at_end=recorder.level_at(end),
        steady_achieved=sum(a.executed for a in window if a.at > half),
        steady_allowed=options.restore * (end - half) / MUTATION_COST,
        push_ms_median=push_ms,
        processes_that_pushed=pushers,
        work_ran_out=unpushed < in_flight,
        busy_seconds=max((a.at for a in window if a.executed), default=t0) - t0,
    )


def _keep_logs(workdir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("worker-*.log"):
        (target / log.name).write_bytes(log.read_bytes())
    (target / "nexus.toml").write_bytes((workdir / "nexus.toml").read_bytes())


# -- report ----------------------------------------------------------------------------------------


def effective_headroom(options: Options) -> float | None:
    """The headroom Nexus's workers ran with (None: a Nexus without the setting)."""
    if options.headroom is not None:
        return options.headroom
    default: float | None = getattr(RateLimitOverride(), "headroom_seconds", None)
    return default


def report(options: Options, runs: list[RunResult]) -> dict[str, Any]:
    restore = options.restore
    print(
        f"rate-limit utilisation: Shopify sandbox bucket {BUCKET_POINTS:.0f} points, restore "
        f"{RESTORE_PER_SECOND:.0f}/s x time_scale {options.time_scale:g} = {restore:g}/s "
        f"({restore / MUTATION_COST:g} requests/s of {MUTATION_COST} points), THROTTLED answered "
        f"with HTTP 429; {options.skus} SKUs, {options.batch_size} items per request, "
        f"window {options.duration:g} s from the first push, {options.concurrency} push round(s) "
        f"per process; nexus's rate_limit.headroom_seconds = {effective_headroom(options)}"
    )
    print(
        "  util = achieved / allowed over the window; 2nd half = its second half's requests / what "
        "the restore rate allows in it; req/s = achieved / time with work; bucket = the store's "
        "unspent points at D/2 and at D"
    )
    print(
        f"  {'mode':<10} {'procs':>5} {'conc':>4} {'allowed':>7} {'achieved':>8} {'util':>6} "
        f"{'2nd half':>8} {'req/s':>6} {'429s':>5} {'(all)':>5} {'items':>6} {'left':>5} {'pushers':>7} "
        f"{'bucket D/2':>10} {'bucket D':>8} {'push p50':>8}"
    )
    for run in runs:
        push = f"{run.push_ms_median:.0f} ms" if run.push_ms_median is not None else "-"
        print(
            f"  {run.mode:<10} {run.processes:>5} {run.concurrency:>4} {run.allowed:>7.1f} "
            f"{run.achieved:>8} {run.utilisation:>6.3f} {run.steady_ratio:>8.3f} "
            f"{run.requests_per_second:>6.1f} {run.throttled:>5} "
            f"{run.throttled_total:>5} {run.items_pushed:>6} {run.unpushed_at_end:>5} "
            f"{run.processes_that_pushed:>7} {run.bucket_at_half:>10.0f} {run.bucket_at_end:>8.0f} "
            f"{push:>8}"
            + (
                "  (work ran out before the window closed: the limit did not bind)"
                if run.work_ran_out
                else ""
            )
        )
    comparison: dict[str, Any] = {}
    for processes in options.processes:
        here = {run.mode: run for run in runs if run.processes == processes}
        nexus = here.get("nexus")
        entry: dict[str, Any] = {}
        parts = []
        for mode in ("per-worker", "divided"):
            other = here.get(mode)
            if nexus is None or other is None:
                continue
            ratio = nexus.utilisation / other.utilisation if other.utilisation > 0 else None
            entry[mode] = {"utilisation_ratio": ratio, "throttled": other.throttled}
            parts.append(
                f"nexus / {mode} utilisation = "
                + (f"{ratio:.2f}" if ratio is not None else "n/a")
                + f", 429s {nexus.throttled} vs {other.throttled}"
            )
        if parts:
            print(f"  {processes} process(es): " + "; ".join(parts))
        if entry:
            comparison[str(processes)] = entry
    nexus_runs = [run for run in runs if run.mode == "nexus"]
    goal_met: bool | None = None
    if nexus_runs:
        goal_met = all(
            run.utilisation >= 0.9 and run.throttled_total == 0 and not run.work_ran_out for run in nexus_runs
        )
        figures = ", ".join(
            f"{run.processes} proc: {run.utilisation:.3f} / {run.throttled_total} x 429" for run in nexus_runs
        )
        print(
            f"goal (nexus utilisation >= 0.9 with 0 x 429, every process count): {figures} -> "
            + ("PASS" if goal_met else "FAIL")
        )
    return {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "allowed_requests_per_second": restore / MUTATION_COST,
        "headroom": effective_headroom(options),
        "runs": [run.as_dict() for run in runs],
        "comparison": comparison,
        "goal_met": goal_met,
    }


# -- entry points ----------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def _modes(text: str) -> list[str]:
    modes = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(modes) - set(MODES)
    if not modes or unknown:
        raise argparse.ArgumentTypeError(f"modes are {', '.join(MODES)}")
    return modes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=5000, help="catalog size (default 5000)")
    parser.add_argument("--batch-size", type=int, default=5, help="items per request (default 5)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured window D in seconds (20)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="the sandbox restores this many times faster, and the workers are told so (1: real limits)",
    )
    parser.add_argument("--processes", type=_int_list, default=[1, 4], help="worker processes (1,4)")
    parser.add_argument("--concurrency", type=int, default=2, help="push rounds per process (2)")
    parser.add_argument("--modes", type=_modes, default=list(MODES), help=f"any of {','.join(MODES)} (all)")
    parser.add_argument(
        "--headroom",
        type=float,
        help="the channel's rate_limit.headroom_seconds for Nexus (default: the configuration's default)",
    )
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin DSN (temporary databases)")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL (a temporary namespace)")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    parser.add_argument("--keep-logs", type=Path, help="copy each run's worker logs and nexus.toml here")
    # The baseline's worker processes (internal).
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bucket-capacity", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--bucket-refill", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    options = Options(
        skus=args.skus,
        batch_size=args.batch_size,
        duration=args.duration,
        time_scale=args.time_scale,
        processes=args.processes,
        concurrency=args.concurrency,
        modes=args.modes,
        postgres=args.postgres,
        redis=args.redis,
        headroom=args.headroom,
        keep_logs=args.keep_logs,
    )
    runs: list[RunResult] = []
    # Interleaved per process count, so that load on the shared machine hits the modes alike.
    for processes in options.processes:
        for mode in options.modes:
            if mode == "divided" and processes == 1:
                continue  # 1/1 of the budget: the per-worker run again
            runs.append(asyncio.run(_stopped_by_sigterm(run_one(mode, processes, options))))
    summary = report(options, runs)
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary


async def _stopped_by_sigterm(run: Coroutine[Any, Any, RunResult]) -> RunResult:
    """SIGTERM cancels the run as Ctrl-C does, so that its finally blocks stop the workers and drop
    the database and the Redis keys."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)


def _entry(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker, args.bucket_capacity, args.bucket_refill, args.concurrency)
        return
    quiet_logs()
    try:
        main(argv)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: workers stopped, temporary database and Redis keys removed", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    _entry(sys.argv[1:])
