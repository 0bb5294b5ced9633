"""Scale-out: pushes/s with 1, 2 and 4 `nexus worker` processes on PostgreSQL + Redis, when no
channel's limit binds, and where the bound then is.

ISSUE 13 point 5: "pushes/s with 1, 2 and 4 worker processes on PostgreSQL + Redis when the
channel's limit does not bind (many channels), showing where the database becomes the bound."

One run per process count P, one after the other in the same invocation:

1. A separate process (this file with `--serve-sandboxes`) holds --channels (8) ShopifySandboxes
   whose limits never bind (bucket and restore 1e9), each seeded with the same --skus (4000)
   single-variant products at 10 available, served on loopback. Between runs it sets every level
   back to 10, so every run has the whole catalog to push.
2. A fresh PostgreSQL database (created for the run, dropped after it) and a Redis namespace of its
   own (its keys deleted after it). Set-up, not measured: items (on hand 11..40, so every listing
   needs a push), `import_channel` for each channel, then every listing marked clean.
   Each process count runs once per --triggers: "batch" (`catalog().sync_all()`: a catalog batch,
   whose progress row every push round updates) and "dirty" (every listing marked dirty with one
   UPDATE and the workers woken, as stock changes leave them: no batch row).
3. P processes of the real CLI, `nexus worker --config nexus.toml --concurrency C` (C = 2 push
   rounds in flight per channel per process), with `batch_size` --batch-size (25) and the
   channels' own buckets lifted. Once all are up, `catalog().sync_all()` marks every listing dirty
   and Redis wakes the workers.
4. After a warm-up (--warmup, 3 s), a window of --duration (15) seconds:
       pushes/s    listings the stores applied in the window / its length (the stores count them:
                   `quantities_set`), and requests/s (inventorySetQuantities calls)
       ratio       pushes/s / the 1-process run's pushes/s (the baseline, same invocation)
       CPU         seconds of CPU in the window (/proc/<pid>/stat) of: the worker processes; the
                   PostgreSQL backends serving this run's database (pg_stat_activity); every
                   postgres process on the machine (the server is shared: other sessions' work is
                   in that figure); redis-server; the sandbox process; and the whole machine's
                   busy share (/proc/stat, 2 cores here, everyone's work included)
       database    from pg_stat_database (this database): commits and rows updated per push, and
                   pg_stat_activity sampled every 0.1 s: the mean number of this run's backends
                   running a statement, and what the waiting ones wait on (Lock, LWLock, IO, ...)
   `work left` says whether listings were still unpushed when the window closed (it must: else the
   workers ran out of work and the rate is not their ceiling).

    .venv/bin/python benchmarks/scale_out.py                          # 1, 2 and 4 processes
    .venv/bin/python benchmarks/scale_out.py --processes 1,4 --batch-size 250

A run killed with SIGKILL leaves its database (nexus_bench_so_*) behind; its workers die with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cpu import busy_share, machine_busy, process_cpu
from quiet import quiet_logs
from rate_limit_utilisation import (
    DEFAULT_POSTGRES,
    DEFAULT_REDIS,
    NEXUS_CLI,
    Fleet,
    temporary_database,
    temporary_namespace,
)
from sandbox_process import SandboxProcess
from sqlalchemy import update

THIS_FILE = Path(__file__).resolve()
UNLIMITED = 1e9
# batch: `catalog().sync_all()`, a catalog batch whose progress every round records; dirty: every
# listing marked dirty with one UPDATE and the workers woken, as stock changes leave them (no batch)
TRIGGERS = ("batch", "dirty")


# -- the sandbox process ------------------------------------------------------------------------


async def serve_sandboxes(config: dict[str, Any]) -> None:
    from nexus.sandbox.shopify import ShopifySandbox
    from nexus.web.server import serve_app

    sandboxes = []
    for _ in range(config["channels"]):
        sandbox = ShopifySandbox(seed=1, maximum_available=UNLIMITED, restore_rate=UNLIMITED)
        sandbox.seed_catalog(config["skus"], quantity=10)
        sandboxes.append(sandbox)

    def reply(body: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(body) + "\n")
        sys.stdout.flush()

    async with contextlib.AsyncExitStack() as stack:
        channels = {}
        for index, sandbox in enumerate(sandboxes):
            url = (await stack.enter_async_context(serve_app(sandbox.app))).base_url
            channels[f"shop-{index}"] = {
                "driver": "shopify",
                "base_url": url,
                "credentials": {
                    "access_token": sandbox.access_token,
                    "webhook_secret": sandbox.webhook_secret,
                },
                "settings": {"location_id": str(sandbox.location_id), "variants_per_product": 1},
            }
        reply({"channels": channels, "pid": os.getpid()})
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)["cmd"]
            if command == "stats":
                reply(
                    {
                        "applied": sum(s.stats.quantities_set for s in sandboxes),
                        "requests": sum(s.stats.requests for s in sandboxes),
                        "throttled": sum(s.stats.throttled for s in sandboxes),
                    }
                )
            elif command == "reset":
                for sandbox in sandboxes:  # no subscriptions: no webhook is sent
                    for sku in sandbox.levels():
                        await sandbox.set_available(sku, 10)
                reply({"ok": True})
            elif command == "quit":
                break
        for sandbox in sandboxes:
            await sandbox.aclose()


# -- CPU accounting ------------------------------------------------------------------------------


def pids_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
    return found


@dataclass
class CpuSnapshot:
    per_pid: dict[int, float]
    machine: tuple[float, float]
    at: float


def cpu_snapshot(pids: set[int]) -> CpuSnapshot:
    per_pid = {}
    for pid in pids:
        value = process_cpu(pid)
        if value is not None:
            per_pid[pid] = value
    return CpuSnapshot(per_pid, machine_busy(), time.monotonic())


def cpu_between(before: CpuSnapshot, after: CpuSnapshot, pids: set[int]) -> float:
    """CPU seconds `pids` used between the snapshots (processes present in both)."""
    return sum(
        after.per_pid[p] - before.per_pid[p] for p in pids if p in before.per_pid and p in after.per_pid
    )


# -- one run ---------------------------------------------------------------------------------------


@dataclass
class Options:
    channels: int
    skus: int
    batch_size: int
    concurrency: int
    processes: list[int]
    warmup: float
    duration: float
    postgres: str
    redis: str
    keep_logs: Path | None = None
    triggers: list[str] = field(default_factory=lambda: list(TRIGGERS))


@dataclass
class RunResult:
    processes: int
    trigger: str
    window_seconds: float
    applied: int
    requests: int
    throttled: int
    unpushed_at_end: int
    cpu_workers: float
    cpu_pg_backends: float
    cpu_pg_all: float
    cpu_redis: float
    cpu_sandboxes: float
    machine_busy_share: float  # of all cores, everyone's work included
    commits: int
    rows_updated: int
    # Connections to this run's database opened in the window: their backends' CPU is missed
    # (only the backends present when the window opens are watched).
    connections_opened: int
    backends_active_mean: float  # this run's backends running a statement, mean over the samples
    waits: dict[str, float] = field(default_factory=dict)  # wait_event_type -> mean backends waiting
    # "type:event" -> mean backends waiting on it; the statements the waiting backends ran (their
    # first 90 characters) -> mean backends waiting in them
    wait_events: dict[str, float] = field(default_factory=dict)
    waiting_statements: dict[str, float] = field(default_factory=dict)
    loadavg: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the window's start and end

    @property
    def pushes_per_second(self) -> float:
        return self.applied / self.window_seconds

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.window_seconds

    def per_thousand(self, seconds: float) -> float:
        return seconds / self.applied * 1000 if self.applied else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "pushes_per_second": self.pushes_per_second,
            "requests_per_second": self.requests_per_second,
        }


def settings_for(
    options: Options, channels: dict[str, Any], *, database_url: str, namespace: str, redis: bool
) -> Any:
    from nexus.config import NexusSettings

    return NexusSettings(
        database_url=database_url,
        redis_url=options.redis if redis else None,
        redis_namespace=namespace,
        log_level="info",  # the fleet waits for the "nexus running" info line
        channels={
            name: {
                **config,
                "batch_size": options.batch_size,
                "rate_limit": {"capacity": UNLIMITED, "refill_per_second": UNLIMITED},
            }
            for name, config in channels.items()
        },
        worker={"poll_interval": 0.2, "lease_seconds": 60, "shutdown_grace": 2.0},
    )


async def prepare(settings: Any, skus: int, channels: list[str]) -> None:
    from nexus.domain.catalog import ItemSpec
    from nexus.engine import Nexus
    from nexus.sandbox.shopify import ean13
    from nexus.storage.models import ChannelMapping

    rng = random.Random(7)
    async with Nexus(settings, source="benchmark set-up") as nexus:
        await nexus.migrate()
        await nexus.add_items(
            # The stores show 10 of everything; Nexus wants 11..40, so every listing needs a push.
            ItemSpec(f"SKU-{i:06d}", title=f"Product {i}", barcode=ean13(i), on_hand=rng.randint(11, 40))
            for i in range(1, skus + 1)
        )
        for channel in channels:
            report = await nexus.import_channel(channel)
            if report.linked != skus:
                raise RuntimeError(f"{channel}: import linked {report.linked} of {skus} listings")
        # Clean: the work starts for every process at once, with sync_all once all are up.
        async with nexus.db.transaction() as session:
            await session.execute(update(ChannelMapping).values(dirty_since=None))


def asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def run_one(
    processes: int, trigger: str, options: Options, stores: SandboxProcess, hello: dict[str, Any]
) -> RunResult:
    import asyncpg  # type: ignore[import-untyped]

    from nexus.engine import Nexus
    from nexus.storage.models import ChannelMapping, utcnow

    await stores.ask({"cmd": "reset"})
    applied_before = (await stores.ask({"cmd": "stats"}))["applied"]  # the stores' counters run across runs
    channels: dict[str, Any] = hello["channels"]
    with tempfile.TemporaryDirectory(prefix="nexus-bench-so-") as tmp:
        workdir = Path(tmp)
        fleet = Fleet(workdir)
        async with (
            temporary_database(options.postgres, prefix="nexus_bench_so_") as database_url,
            temporary_namespace(options.redis, prefix="nexus-bench-so-") as namespace,
        ):
            settings = settings_for(
                options, channels, database_url=database_url, namespace=namespace, redis=True
            )
            setup = settings_for(
                options, channels, database_url=database_url, namespace=namespace, redis=False
            )
            await prepare(setup, options.skus, list(channels))
            config = workdir / "nexus.toml"
            config.write_text(settings.to_toml(), encoding="utf-8")
            database = database_url.rsplit("/", 1)[1]
            stats_db = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
            try:
                await fleet.start(
                    [
                        str(NEXUS_CLI),
                        "worker",
                        "--config",
                        str(config),
                        "--concurrency",
                        str(options.concurrency),
                    ],
                    processes,
                )
                await fleet.wait_ready(timeout=180)
                async with Nexus(settings) as nexus:
                    if trigger == "batch":
                        await nexus.catalog().sync_all()
                    else:
                        async with nexus.db.transaction() as session:
                            await session.execute(update(ChannelMapping).values(dirty_since=utcnow()))
                        nexus.notify()
                        await asyncio.sleep(0.2)  # the wake-up's publish, before the engine closes
                await asyncio.sleep(options.warmup)
                fleet.check_alive()
                result = await window(
                    processes, options, stores, fleet, stats_db, database, hello["pid"], applied_before
                )
                result.trigger = trigger
            finally:
                await stats_db.close()
                await fleet.stop()
                if options.keep_logs is not None:
                    _keep_logs(workdir, options.keep_logs / f"{trigger}-{processes}")
    return result


def _keep_logs(workdir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("worker-*.log"):
        (target / log.name).write_bytes(log.read_bytes())


async def window(
    processes: int,
    options: Options,
    stores: SandboxProcess,
    fleet: Fleet,
    stats_db: Any,
    database: str,
    sandbox_pid: int,
    applied_before: int,
) -> RunResult:
    own_backend = await stats_db.fetchval("SELECT pg_backend_pid()")

    async def backends() -> set[int]:
        rows = await stats_db.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
        return {row["pid"] for row in rows} - {own_backend}

    async def db_counters() -> tuple[int, int, int]:
        row = await stats_db.fetchrow(
            "SELECT xact_commit, tup_updated, sessions FROM pg_stat_database WHERE datname = $1", database
        )
        return int(row["xact_commit"]), int(row["tup_updated"]), int(row["sessions"])

    workers = {process.pid for process, _ in fleet.processes}
    pg_all = set(pids_named("postgres"))
    redis = set(pids_named("redis-server"))
    mine = await backends()
    watched = workers | pg_all | redis | mine | {sandbox_pid}

    await stats_db.execute("SELECT pg_stat_clear_snapshot()")
    start_db = await db_counters()
    start_stores = await stores.ask({"cmd": "stats"})
    start_cpu = cpu_snapshot(watched)
    load_start = os.getloadavg()[0]
    samples, active, waits = 0, 0, Counter[str]()
    events, statements = Counter[str](), Counter[str]()
    end = start_cpu.at + options.duration
    while time.monotonic() < end:
        rows = await stats_db.fetch(
            "SELECT state, wait_event_type, wait_event, left(query, 90) AS query"
            " FROM pg_stat_activity WHERE datname = $1 AND pid <> $2",
            database,
            own_backend,
        )
        samples += 1
        for row in rows:
            if row["state"] == "active":
                active += 1
                if row["wait_event_type"] and row["wait_event_type"] != "Client":
                    waits[row["wait_event_type"]] += 1
                    events[f"{row['wait_event_type']}:{row['wait_event']}"] += 1
                    statements[" ".join(str(row["query"]).split())] += 1
        await asyncio.sleep(0.1)
    end_cpu = cpu_snapshot(watched)
    end_stores = await stores.ask({"cmd": "stats"})
    await stats_db.execute("SELECT pg_stat_clear_snapshot()")
    await asyncio.sleep(1.1)  # backends flush their counters to pg_stat_database within a second
    await stats_db.execute("SELECT pg_stat_clear_snapshot()")
    end_db = await db_counters()
    fleet.check_alive()
    elapsed = end_cpu.at - start_cpu.at
    busy = busy_share(start_cpu.machine, end_cpu.machine)
    total = options.channels * options.skus
    return RunResult(
        processes=processes,
        trigger="",
        window_seconds=elapsed,
        applied=end_stores["applied"] - start_stores["applied"],
        requests=end_stores["requests"] - start_stores["requests"],
        throttled=end_stores["throttled"] - start_stores["throttled"],
        unpushed_at_end=total - (end_stores["applied"] - applied_before),
        cpu_workers=cpu_between(start_cpu, end_cpu, workers),
        cpu_pg_backends=cpu_between(start_cpu, end_cpu, mine),
        cpu_pg_all=cpu_between(start_cpu, end_cpu, pg_all | mine),
        cpu_redis=cpu_between(start_cpu, end_cpu, redis),
        cpu_sandboxes=cpu_between(start_cpu, end_cpu, {sandbox_pid}),
        machine_busy_share=busy,
        commits=end_db[0] - start_db[0],
        rows_updated=end_db[1] - start_db[1],
        connections_opened=end_db[2] - start_db[2],
        backends_active_mean=active / samples if samples else 0.0,
        waits={kind: count / samples for kind, count in waits.most_common()} if samples else {},
        wait_events={k: n / samples for k, n in events.most_common(4)} if samples else {},
        waiting_statements={k: n / samples for k, n in statements.most_common(3)} if samples else {},
        loadavg=(load_start, os.getloadavg()[0]),
    )


# -- report ----------------------------------------------------------------------------------------


def report(options: Options, runs: list[RunResult]) -> dict[str, Any]:
    # Each trigger's runs against its own run with the fewest processes.
    bases = {r.trigger: r for r in sorted(runs, key=lambda r: r.processes, reverse=True)}
    cores = os.cpu_count() or 1
    print(
        f"scale-out: {options.channels} Shopify sandboxes x {options.skus} SKUs = "
        f"{options.channels * options.skus} listings, limits lifted; PostgreSQL + Redis; "
        f"`nexus worker --concurrency {options.concurrency}`, batch_size {options.batch_size}; "
        f"window {options.duration:g} s after {options.warmup:g} s of warm-up; {cores} cores"
    )
    head = (
        f"  {'trigger':<7} {'procs':>5} {'pushes/s':>9} {'ratio':>6} {'req/s':>6} {'429':>4} "
        f"{'work left':>9} "
        f"{'cpu/1k pushes (s): workers':>27} {'pg mine':>7} {'pg all':>6} {'redis':>5} {'stores':>6} "
        f"{'machine busy':>12} {'commits/push':>12} {'pg active':>9}  waits (mean backends)"
    )
    print(head)
    for run in runs:
        waits = ", ".join(f"{kind} {mean:.2f}" for kind, mean in run.waits.items()) or "-"
        base = bases[run.trigger]
        print(
            f"  {run.trigger:<7} {run.processes:>5} {run.pushes_per_second:>9,.0f} "
            f"{_ratio(run, base):>6} "
            f"{run.requests_per_second:>6,.0f} {run.throttled:>4} {run.unpushed_at_end:>9} "
            f"{run.per_thousand(run.cpu_workers):>27.2f} {run.per_thousand(run.cpu_pg_backends):>7.2f} "
            f"{run.per_thousand(run.cpu_pg_all):>6.2f} {run.per_thousand(run.cpu_redis):>5.2f} "
            f"{run.per_thousand(run.cpu_sandboxes):>6.2f} {run.machine_busy_share:>11.0%} "
            f"{run.commits / run.applied if run.applied else float('nan'):>12.3f} "
            f"{run.backends_active_mean:>9.2f}  {waits}"
        )
    print("  CPU in the window, seconds per second of wall time (cores in use):")
    for run in runs:
        seconds = run.window_seconds
        print(
            f"    {run.trigger}, {run.processes} process(es): workers {run.cpu_workers / seconds:.2f}, "
            f"postgres (this database's backends) {run.cpu_pg_backends / seconds:.2f}, all postgres "
            f"processes "
            f"{run.cpu_pg_all / seconds:.2f}, redis {run.cpu_redis / seconds:.2f}, sandboxes "
            f"{run.cpu_sandboxes / seconds:.2f}; machine busy {run.machine_busy_share * cores:.2f} of "
            f"{cores} cores; loadavg {run.loadavg[0]:.1f} -> {run.loadavg[1]:.1f}"
        )
    print("  what this run's waiting backends waited on (mean backends), and in which statements:")
    for run in runs:
        events = ", ".join(f"{kind} {mean:.2f}" for kind, mean in run.wait_events.items()) or "-"
        print(f"    {run.trigger}, {run.processes} process(es): {events}")
        for statement, mean in run.waiting_statements.items():
            print(f"      {mean:6.2f}  {statement}")
    for trigger, base in bases.items():
        ratios = ", ".join(f"{r.processes}: {_ratio(r, base)}" for r in runs if r.trigger == trigger)
        print(f"  {trigger}: ratio pushes/s against {base.processes} process(es) in the same run: {ratios}")
    ran_out = [(r.trigger, r.processes) for r in runs if r.unpushed_at_end <= 0]
    if ran_out:
        print(f"  WARNING: work ran out in the window with {ran_out} process(es): raise --skus")
    churned = [(r.trigger, r.processes, r.connections_opened) for r in runs if r.connections_opened]
    if churned:
        print(
            f"  WARNING: connections opened in the window (trigger, processes, count): {churned}; "
            "their backends' CPU is not in the pg columns"
        )
    return {"options": {**asdict(options), "keep_logs": None}, "runs": [r.as_dict() for r in runs]}


def _ratio(run: RunResult, base: RunResult) -> str:
    return f"{run.pushes_per_second / base.pushes_per_second:.2f}x" if base.applied else "n/a"


def _int_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def _triggers(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values or set(values) - set(TRIGGERS):
        raise argparse.ArgumentTypeError(f"any of {','.join(TRIGGERS)}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=8, help="Shopify sandboxes (8)")
    parser.add_argument("--skus", type=int, default=8000, help="SKUs, each listed on every channel (8000)")
    parser.add_argument("--batch-size", type=int, default=25, help="listings per push request (25)")
    parser.add_argument("--concurrency", type=int, default=2, help="push rounds per channel per process (2)")
    parser.add_argument("--processes", type=_int_list, default=[1, 2, 4], help="worker processes (1,2,4)")
    parser.add_argument(
        "--triggers",
        type=_triggers,
        default=list(TRIGGERS),
        help="batch (catalog().sync_all()) and/or dirty (listings marked dirty, no batch): both",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window (2)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured window in seconds (8)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin DSN (temporary databases)")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL (a temporary namespace)")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    parser.add_argument("--keep-logs", type=Path, help="copy each run's worker logs here")
    parser.add_argument("--serve-sandboxes", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def run_all(options: Options) -> list[RunResult]:
    runs = []
    config = {"channels": options.channels, "skus": options.skus}
    async with SandboxProcess.start(THIS_FILE, config) as (stores, hello):
        # Interleaved per process count, so that load on the shared machine hits the triggers alike.
        for processes in options.processes:
            for trigger in options.triggers:
                runs.append(await run_one(processes, trigger, options, stores, hello))
    return runs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    options = Options(
        channels=args.channels,
        skus=args.skus,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        processes=args.processes,
        warmup=args.warmup,
        duration=args.duration,
        postgres=args.postgres,
        redis=args.redis,
        keep_logs=args.keep_logs,
        triggers=args.triggers,
    )
    runs = asyncio.run(_stopped_by_sigterm(run_all(options)))
    summary = report(options, runs)
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


async def _stopped_by_sigterm(run: Coroutine[Any, Any, list[RunResult]]) -> list[RunResult]:
    """SIGTERM cancels the run as Ctrl-C does, so its finally blocks stop the workers and drop the
    database and the Redis keys."""
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


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    quiet_logs()
    if arguments.serve_sandboxes is not None:
        asyncio.run(serve_sandboxes(json.loads(arguments.serve_sandboxes)))
    else:
        try:
            main(sys.argv[1:])
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted: workers stopped, temporary database and Redis keys removed", file=sys.stderr)
            sys.exit(130)
