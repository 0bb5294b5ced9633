"""Propagation latency: a sale on one channel, until every other channel holds the new level.

ISSUE 13 point 3: "two or more sandbox channels with limits that do not bind; sales on channel A at
10, 100 and 500 per second; for every sale, the time from the sale's webhook reaching Nexus to the
other channels acknowledging the new level. Report p50 / p99 / max and the backlog. Baseline in the
same run: the same engine with wake-ups off (poll only)."

One run (a variant, then each rate in turn):

1. A separate process (this file with `--serve-sandboxes`) holds --channels ShopifySandboxes with
   limits that never bind (bucket and restore rate 1e9), each seeded with the same S single-variant
   products (available 1000) and served on loopback by `nexus.web.server.serve_app`. It also makes
   the sales (`simulate_sale` on channel A, paced to the rate by an absolute schedule) and delivers
   their webhooks (`orders/create` and `inventory_levels/update` from every store, so the other
   stores' echoes of Nexus's own pushes arrive too) with --webhook-concurrency delivery workers.
   So this process runs Nexus alone.
2. This process: Nexus on SQLite in a temp dir (embedded mode), its items (on_hand 1000, equal to the
   stores), `import_channel` for every channel, then `nexus.runtime.running` (web app on loopback,
   one push worker per channel, the webhook processor). Nexus's own token bucket is lifted.
   Scaled mode (--modes scaled): PostgreSQL + Redis (a temporary database and Redis namespace);
   this process serves the web app and processes the webhooks (`running(workers=False)`), and
   --workers (2) `nexus worker` processes push, woken through Redis.
3. Each rate R uses its own R x D SKUs, each sold once (D = --duration seconds of sales), so a sale
   is known by its SKU. Per sale:
       arrival  = the earliest `received_at` of channel A's WebhookLog rows for that SKU (the order
                  names the SKU, the level its inventory item), set by the receiver on arrival;
       acked    = embedded: when the last other channel's `AfterInventorySync` for that SKU was
                  dispatched (the store answered the push that carries the new level); scaled: when
                  the last other store applied the new level (the sandbox process records it: the
                  event fires in the worker processes);
       latency  = acked - arrival  (Nexus's part);  end-to-end = acked - the sale in the store.
   After the sales, up to --drain seconds for everything to arrive; a sale not acknowledged by then
   is counted as "missing" and its latency as infinite (so p99/max read "inf").
   Backlog, sampled every 0.25 s during the sales and the drain: rows stored but not yet
   processed (WebhookLog status 'received'), dirty listings, and (from the sandbox process) the
   deliveries the stores have queued but not yet delivered. `all` counts every channel's
   deliveries in the window (the other stores' echoes of our pushes too), `retried` those that
   needed more than one attempt (deferred while a push to their listing was in flight or its
   report due, or failed once).

Variants, each with its own sandbox process and database, in the same invocation:

- nexus: as shipped (a stored stock change calls `Nexus.notify`, which wakes the channel's push
  workers at once).
- poll (the baseline): the same engine with `Nexus.notify` replaced by a no-op on the instance
  (scaled: in the web process, so no wake-up reaches Redis either), so push workers find work only
  by polling, every `worker.poll_interval` (--baseline-poll, default
  the configuration's default, 1 s). Deliveries are still processed on arrival (the receiver hands
  them to the processor directly, not through a wake-up).

    .venv/bin/python benchmarks/propagation.py                        # 10, 100, 500 sales/s, 10 s each
    .venv/bin/python benchmarks/propagation.py --rates 100 --duration 20
    .venv/bin/python benchmarks/propagation.py --modes embedded,scaled     # both modes, same run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cpu import busy_share, machine_busy, process_cpu
from quiet import quiet_logs
from sandbox_process import SandboxProcess
from sqlalchemy import func, select

THIS_FILE = Path(__file__).resolve()
UNLIMITED = 1e9
STOCK = 1000
TOPICS = ("orders/create", "inventory_levels/update")
VARIANTS = ("nexus", "poll")
MODES = ("embedded", "scaled")
DEFAULT_POSTGRES = os.environ.get("NEXUS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DEFAULT_REDIS = os.environ.get("NEXUS_TEST_REDIS", "redis://127.0.0.1:6379/15")


# -- the sandbox process ------------------------------------------------------------------------


async def serve_sandboxes(config: dict[str, Any]) -> None:
    """Serve the stores; obey JSON commands on stdin, answer one JSON line each on stdout."""
    from nexus.sandbox.shopify import ShopifySandbox
    from nexus.web.server import serve_app

    sandboxes = []
    for index in range(config["channels"]):
        sandbox = ShopifySandbox(
            seed=index + 1,
            shop_domain=f"bench-{index}.myshopify.com",
            maximum_available=UNLIMITED,
            restore_rate=UNLIMITED,
            webhook_concurrency=config["webhook_concurrency"],
        )
        sandbox.seed_catalog(config["skus"], quantity=STOCK)
        sandboxes.append(sandbox)
    first = sandboxes[0]
    # (store index, SKU) -> when a push set that store's level to STOCK - 1, the level after the
    # one sale each SKU gets: the other stores sell nothing, so only Nexus's pushes change them.
    applied: dict[str, dict[str, float]] = {}
    for index, sandbox in enumerate(sandboxes[1:], start=1):
        _record_pushes(sandbox, applied.setdefault(str(index), {}))
    items = {str(first.variant_ids(sku)[1]): sku for sku in first.levels()}

    def reply(body: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(body) + "\n")
        sys.stdout.flush()

    async with contextlib.AsyncExitStack() as stack:
        urls = [(await stack.enter_async_context(serve_app(s.app))).base_url for s in sandboxes]
        reply(
            {
                "urls": urls,
                "location_ids": [s.location_id for s in sandboxes],
                "items": items,
                "pid": os.getpid(),
            }
        )
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "subscribe":
                for sandbox, address in zip(sandboxes, command["addresses"], strict=True):
                    for topic in TOPICS:
                        sandbox.subscribe(topic, address)
                reply({"ok": True})
            elif command["cmd"] == "sales":
                reply(await _sell(sandboxes, command["skus"], command["rate"]))
            elif command["cmd"] == "pending":
                reply({"pending": sum(s.deliveries.pending for s in sandboxes)})
            elif command["cmd"] == "applied":
                reply({"applied": applied})
            elif command["cmd"] == "quit":
                break
        for sandbox in sandboxes:
            await sandbox.aclose()


def _record_pushes(sandbox: Any, into: dict[str, float]) -> None:
    """Wrap the store's level-changed hook: the first time a SKU's level reads STOCK - 1."""
    store = sandbox.store
    original = sandbox._level_changed

    def changed(level: Any) -> None:
        if level.available == STOCK - 1:
            sku = store.items[level.item_id].sku
            if sku is not None and sku not in into:
                into[sku] = time.time()
        original(level)

    sandbox._level_changed = changed


async def _sell(sandboxes: list[Any], skus: list[str], rate: float) -> dict[str, Any]:
    """Sell one of each SKU on the first store, sale k at start + k / rate."""
    store = sandboxes[0]
    sold: dict[str, float] = {}
    max_pending = 0
    start = time.monotonic()
    for k, sku in enumerate(skus):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif k % 20 == 0:
            await asyncio.sleep(0)  # let the deliveries go out even when behind schedule
        await store.simulate_sale(sku)
        sold[sku] = time.time()
        max_pending = max(max_pending, sum(s.deliveries.pending for s in sandboxes))
    took = time.monotonic() - start
    return {"sold": sold, "seconds": took, "max_pending": max_pending}


# -- the Nexus process ---------------------------------------------------------------------------


@dataclass
class Options:
    rates: list[float]
    duration: float
    channels: int
    webhook_concurrency: int
    drain: float
    variants: list[str]
    baseline_poll: float | None
    modes: list[str] = field(default_factory=lambda: ["embedded"])
    workers: int = 2  # scaled mode: `nexus worker` processes
    postgres: str = ""
    redis: str = ""
    profile: Path | None = None  # embedded, the nexus variant: cProfile (CPU time) of the rates


@dataclass
class RateResult:
    variant: str
    rate: float
    sales: int
    selling_seconds: float  # how long the store took to make them (above D: the store fell behind)
    acked: int
    missing: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    e2e_p50_ms: float
    e2e_p99_ms: float
    processed_p50_ms: float  # arrival -> the first of the sale's deliveries processed (stock changed)
    max_received_backlog: int  # WebhookLog rows stored, not yet processed
    max_dirty: int  # listings waiting for a push
    max_store_pending: int  # deliveries queued in the stores, not yet delivered (seen at each sale)
    deliveries: int  # WebhookLog rows for this rate's window
    cpu_seconds: float  # this process, during the sales and the drain
    mode: str = "embedded"
    all_deliveries: int = 0  # every channel's rows in the window (shop-a's, and the echoes)
    retried: int = 0  # of those, rows attempted more than once (deferred while a push was due)
    stores_cpu_seconds: float = 0.0  # the sandbox process (selling, delivering, serving pushes)
    machine_busy: float = 0.0  # share of all cores busy in the window, everyone's work included
    rounds: int = 0  # push rounds (requests to the channels) in the window
    listings_per_round: float = 0.0  # their mean size


def channel_name(index: int) -> str:
    return f"shop-{chr(ord('a') + index)}"


def settings_for(
    database: Path | str,
    hello: dict[str, Any],
    options: Options,
    *,
    variant: str,
    redis_url: str | None = None,
    namespace: str = "nexus",
    log_level: str = "warning",
) -> Any:
    """Embedded: `database` is the SQLite file; scaled: an SQLAlchemy URL, with Redis."""
    from nexus.config import NexusSettings

    worker: dict[str, Any] = {"lease_seconds": 60, "shutdown_grace": 5.0}
    if variant == "poll" and options.baseline_poll is not None:
        worker["poll_interval"] = options.baseline_poll
    url = database if isinstance(database, str) else f"sqlite+aiosqlite:///{database}"
    return NexusSettings(
        database_url=url,
        redis_url=redis_url,
        redis_namespace=namespace,
        log_level=log_level,
        channels={
            channel_name(i): {
                "driver": "shopify",
                "base_url": url,
                "credentials": {"access_token": "shpat_sandbox", "webhook_secret": "sandbox-webhook-secret"},
                "settings": {"location_id": str(hello["location_ids"][i]), "variants_per_product": 1},
                "rate_limit": {"capacity": UNLIMITED, "refill_per_second": UNLIMITED},
            }
            for i, url in enumerate(hello["urls"])
        },
        worker=worker,
    )


def sku_ranges(options: Options) -> list[list[str]]:
    ranges, next_index = [], 1
    for rate in options.rates:
        count = max(1, round(rate * options.duration))
        ranges.append([f"SKU-{i:06d}" for i in range(next_index, next_index + count)])
        next_index += count
    return ranges


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_variant(variant: str, options: Options) -> list[RateResult]:
    from nexus.domain.catalog import ItemSpec
    from nexus.engine import Nexus
    from nexus.events import AfterInventorySync
    from nexus.runtime import freeze_startup_heap, running
    from nexus.sandbox.shopify import ean13
    from nexus.storage.models import ChannelMapping, WebhookLog

    ranges = sku_ranges(options)
    total = sum(len(r) for r in ranges)
    config = {"channels": options.channels, "skus": total, "webhook_concurrency": options.webhook_concurrency}
    results: list[RateResult] = []
    with tempfile.TemporaryDirectory(prefix="nexus-bench-prop-") as tmp:
        async with SandboxProcess.start(THIS_FILE, config) as (stores, hello):
            settings = settings_for(Path(tmp) / "nexus.db", hello, options, variant=variant)
            items: dict[str, str] = hello["items"]
            others = [channel_name(i) for i in range(1, options.channels)]
            async with Nexus(settings, source="benchmark") as nexus:
                await nexus.migrate()
                await nexus.add_items(
                    ItemSpec(f"SKU-{i:06d}", title=f"Product {i}", barcode=ean13(i), on_hand=STOCK)
                    for i in range(1, total + 1)
                )
                for i in range(options.channels):
                    report = await nexus.import_channel(channel_name(i))
                    if report.linked != total:
                        raise RuntimeError(f"import linked {report.linked} of {total} listings")
                if variant == "poll":
                    nexus.notify = lambda channels=None: None  # type: ignore[method-assign]
                acked: dict[tuple[str, str], float] = {}

                def on_sync(event: AfterInventorySync) -> None:
                    acked.setdefault((event.channel, event.sku), time.time())

                nexus.events.listen(AfterInventorySync, on_sync)
                async with running(nexus, port=0) as service:
                    freeze_startup_heap()  # as `nexus serve` does once started
                    base = f"{service.base_url}{settings.webhook_base_path}"
                    await stores.ask(
                        {
                            "cmd": "subscribe",
                            "addresses": [f"{base}/{channel_name(i)}" for i in range(options.channels)],
                        }
                    )
                    await settle(nexus, stores, ChannelMapping, WebhookLog, timeout=120)
                    profiler = None
                    if options.profile is not None and variant == "nexus":
                        profiler = cProfile.Profile(time.process_time)
                        profiler.enable()
                    for rate, skus in zip(options.rates, ranges, strict=True):

                        async def in_process() -> dict[tuple[str, str], float]:
                            return acked

                        results.append(
                            await measure_rate(
                                nexus,
                                stores,
                                variant,
                                rate,
                                skus,
                                items,
                                others,
                                in_process,
                                options,
                                ChannelMapping,
                                WebhookLog,
                            )
                        )
                    if profiler is not None and options.profile is not None:
                        profiler.disable()
                        profiler.dump_stats(options.profile)
    return results


async def run_scaled(variant: str, options: Options) -> list[RateResult]:
    """PostgreSQL + Redis: this process serves the web app and processes the webhooks
    (`running(workers=False)`), `options.workers` `nexus worker` processes push. The
    acknowledgement is the moment each other store applied the new level (the sandbox process
    records it), since AfterInventorySync fires in the worker processes."""
    from rate_limit_utilisation import NEXUS_CLI, Fleet, temporary_database, temporary_namespace

    from nexus.domain.catalog import ItemSpec
    from nexus.engine import Nexus
    from nexus.runtime import freeze_startup_heap, running
    from nexus.sandbox.shopify import ean13
    from nexus.storage.models import ChannelMapping, WebhookLog

    ranges = sku_ranges(options)
    total = sum(len(r) for r in ranges)
    config = {"channels": options.channels, "skus": total, "webhook_concurrency": options.webhook_concurrency}
    results: list[RateResult] = []
    with tempfile.TemporaryDirectory(prefix="nexus-bench-prop-") as tmp:
        workdir = Path(tmp)
        fleet = Fleet(workdir)
        async with (
            SandboxProcess.start(THIS_FILE, config) as (stores, hello),
            temporary_database(options.postgres, prefix="nexus_bench_prop_") as database_url,
            temporary_namespace(options.redis, prefix="nexus-bench-prop-") as namespace,
        ):
            where = {"variant": variant, "redis_url": options.redis, "namespace": namespace}
            # The workers log at info: the fleet waits for their "nexus running" line.
            (workdir / "nexus.toml").write_text(
                settings_for(database_url, hello, options, **where, log_level="info").to_toml(),
                encoding="utf-8",
            )
            settings = settings_for(database_url, hello, options, **where)
            items: dict[str, str] = hello["items"]
            others = [channel_name(i) for i in range(1, options.channels)]
            try:
                async with Nexus(settings, source="benchmark") as nexus:
                    await nexus.migrate()
                    await nexus.add_items(
                        ItemSpec(f"SKU-{i:06d}", title=f"Product {i}", barcode=ean13(i), on_hand=STOCK)
                        for i in range(1, total + 1)
                    )
                    for i in range(options.channels):
                        report = await nexus.import_channel(channel_name(i))
                        if report.linked != total:
                            raise RuntimeError(f"import linked {report.linked} of {total} listings")
                    command = [str(NEXUS_CLI), "worker", "--config", str(workdir / "nexus.toml")]
                    await fleet.start(command, options.workers)
                    await fleet.wait_ready(timeout=180)
                    if variant == "poll":
                        # No wake-up leaves this process (nor Redis): the workers find work by polling.
                        nexus.notify = lambda channels=None: None  # type: ignore[method-assign]

                    async def from_stores() -> dict[tuple[str, str], float]:
                        fleet.check_alive()
                        applied = (await stores.ask({"cmd": "applied"}))["applied"]
                        return {
                            (channel_name(int(index)), sku): at
                            for index, by_sku in applied.items()
                            for sku, at in by_sku.items()
                        }

                    async with running(nexus, port=0, workers=False) as service:
                        freeze_startup_heap()  # as `nexus serve` does once started
                        base = f"{service.base_url}{settings.webhook_base_path}"
                        await stores.ask(
                            {
                                "cmd": "subscribe",
                                "addresses": [f"{base}/{channel_name(i)}" for i in range(options.channels)],
                            }
                        )
                        await settle(nexus, stores, ChannelMapping, WebhookLog, timeout=120)
                        for rate, skus in zip(options.rates, ranges, strict=True):
                            result = await measure_rate(
                                nexus,
                                stores,
                                variant,
                                rate,
                                skus,
                                items,
                                others,
                                from_stores,
                                options,
                                ChannelMapping,
                                WebhookLog,
                            )
                            result.mode = "scaled"
                            results.append(result)
            finally:
                await fleet.stop()
    return results


async def counts(nexus: Any, mapping: Any, log_model: Any) -> tuple[int, int]:
    async with nexus.db.read() as session:
        received = (
            await session.execute(
                select(func.count()).select_from(log_model).where(log_model.status == "received")
            )
        ).scalar_one()
        dirty = (
            await session.execute(
                select(func.count()).select_from(mapping).where(mapping.dirty_since.is_not(None))
            )
        ).scalar_one()
    return int(received), int(dirty)


async def settle(nexus: Any, stores: SandboxProcess, mapping: Any, log_model: Any, *, timeout: float) -> bool:
    """Until nothing is queued anywhere (twice in a row), or `timeout`."""
    end, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < end:
        received, dirty = await counts(nexus, mapping, log_model)
        pending = (await stores.ask({"cmd": "pending"}))["pending"]
        quiet = quiet + 1 if received == dirty == pending == 0 else 0
        if quiet >= 2:
            return True
        await asyncio.sleep(0.25)
    return False


async def measure_rate(
    nexus: Any,
    stores: SandboxProcess,
    variant: str,
    rate: float,
    skus: list[str],
    items: dict[str, str],
    others: list[str],
    acks: Callable[[], Awaitable[dict[tuple[str, str], float]]],
    options: Options,
    mapping: Any,
    log_model: Any,
) -> RateResult:
    from datetime import UTC, datetime

    from nexus.storage.models import SyncJob

    wanted = set(skus)
    window_start = datetime.now(UTC)
    cpu0 = cpu_seconds()
    stores_cpu0 = process_cpu(stores.process.pid) or 0.0
    machine0 = machine_busy()
    backlog: list[tuple[int, int]] = []
    selling = asyncio.create_task(stores.ask({"cmd": "sales", "skus": skus, "rate": rate}))

    def done(acked: dict[tuple[str, str], float]) -> bool:
        return all((channel, sku) in acked for sku in skus for channel in others)

    while not selling.done():
        backlog.append(await counts(nexus, mapping, log_model))
        await asyncio.wait({selling}, timeout=0.25)
    sales = selling.result()
    end = time.monotonic() + options.drain
    while time.monotonic() < end and not done(await acks()):
        backlog.append(await counts(nexus, mapping, log_model))
        await asyncio.sleep(0.25)
    cpu = cpu_seconds() - cpu0
    stores_cpu = (process_cpu(stores.process.pid) or 0.0) - stores_cpu0
    busy = busy_share(machine0, machine_busy())
    acked = await acks()
    await settle(nexus, stores, mapping, log_model, timeout=options.drain)  # before the next rate

    arrival: dict[str, float] = {}
    processed: dict[str, float] = {}
    deliveries = 0
    async with nexus.db.read() as session:
        rows = await session.execute(
            select(log_model.received_at, log_model.processed_at, log_model.topic, log_model.body).where(
                log_model.channel == channel_name(0), log_model.received_at >= window_start
            )
        )
        counted = await session.execute(
            select(func.count(), func.count().filter(log_model.attempts > 1)).where(
                log_model.received_at >= window_start
            )
        )
        all_deliveries, retried = counted.one()
        pushed = await session.execute(
            select(func.count(), func.coalesce(func.sum(SyncJob.count), 0)).where(
                SyncJob.created_at >= window_start
            )
        )
        rounds, listings_pushed = pushed.one()
        for received_at, processed_at, topic, body in rows:
            deliveries += 1
            payload = json.loads(body)
            if topic == "orders/create":
                sku = payload["line_items"][0]["sku"]
            else:
                sku = items.get(str(payload.get("inventory_item_id")), "")
            if sku in wanted:
                stamp = received_at.replace(tzinfo=UTC).timestamp()
                arrival[sku] = min(arrival.get(sku, stamp), stamp)
                if processed_at is not None:
                    done_at = processed_at.replace(tzinfo=UTC).timestamp()
                    processed[sku] = min(processed.get(sku, done_at), done_at)
    latencies, e2e, missing = [], [], 0
    for sku in skus:
        times = [acked.get((channel, sku)) for channel in others]
        if sku not in arrival or any(t is None for t in times):
            missing += 1
            latencies.append(math.inf)
            e2e.append(math.inf)
            continue
        last = max(t for t in times if t is not None)
        latencies.append((last - arrival[sku]) * 1000)
        e2e.append((last - sales["sold"][sku]) * 1000)
    return RateResult(
        variant=variant,
        rate=rate,
        sales=len(skus),
        selling_seconds=sales["seconds"],
        acked=len(skus) - missing,
        missing=missing,
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies),
        e2e_p50_ms=percentile(e2e, 0.5),
        e2e_p99_ms=percentile(e2e, 0.99),
        processed_p50_ms=percentile(
            [(processed[sku] - arrival[sku]) * 1000 for sku in skus if sku in processed and sku in arrival],
            0.5,
        ),
        max_received_backlog=max((b[0] for b in backlog), default=0),
        max_dirty=max((b[1] for b in backlog), default=0),
        max_store_pending=sales["max_pending"],
        deliveries=deliveries,
        all_deliveries=int(all_deliveries),
        retried=int(retried),
        cpu_seconds=cpu,
        stores_cpu_seconds=stores_cpu,
        machine_busy=busy,
        rounds=int(rounds),
        listings_per_round=int(listings_pushed) / int(rounds) if rounds else 0.0,
    )


# -- report --------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "inf" if math.isinf(value) else "nan" if math.isnan(value) else f"{value:.0f}"


def report(options: Options, results: list[RateResult]) -> dict[str, Any]:
    print(
        f"propagation: {options.channels} Shopify sandboxes (limits that never bind) in their own process; "
        f"sales on {channel_name(0)} for {options.duration:g} s per rate; latency = the last other "
        f"channel's acknowledgement - the sale's first webhook's received_at; e2e = from the sale in "
        f"the store; drain up to {options.drain:g} s"
    )
    if "embedded" in options.modes:
        print(
            "  embedded: Nexus (SQLite) alone in this process, web app + processor + push workers; "
            "acknowledgement = AfterInventorySync"
        )
    if "scaled" in options.modes:
        print(
            f"  scaled: PostgreSQL + Redis; this process serves the web app and processes webhooks, "
            f"{options.workers} `nexus worker` processes push; acknowledgement = the other store applied "
            f"the level (recorded by the sandbox process)"
        )
    print(
        f"  {'mode':<8} {'variant':<7} {'rate/s':>6} {'sales':>6} {'sold in':>7} {'acked':>6} {'missing':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'e2e p50':>8} {'e2e p99':>8} {'proc p50':>8} "
        f"{'rcvd q':>6} {'dirty':>6} {'store q':>7} {'dlvrs':>6} {'all':>6} {'retried':>7} {'rounds':>6} "
        f"{'per rnd':>7} {'cpu s':>6} {'stores':>6} {'busy':>5}"
    )
    for r in results:
        print(
            f"  {r.mode:<8} {r.variant:<7} {r.rate:>6g} {r.sales:>6} {r.selling_seconds:>6.1f}s {r.acked:>6} "
            f"{r.missing:>7} {_ms(r.p50_ms):>7} {_ms(r.p99_ms):>7} {_ms(r.max_ms):>7} {_ms(r.e2e_p50_ms):>8} "
            f"{_ms(r.e2e_p99_ms):>8} {_ms(r.processed_p50_ms):>8} {r.max_received_backlog:>6} "
            f"{r.max_dirty:>6} {r.max_store_pending:>7} {r.deliveries:>6} {r.all_deliveries:>6} "
            f"{r.retried:>7} {r.rounds:>6} {r.listings_per_round:>7.1f} "
            f"{r.cpu_seconds:>6.1f} {r.stores_cpu_seconds:>6.1f} {r.machine_busy:>5.0%}"
        )
    ratios: dict[str, Any] = {}
    for mode, rate in [(m, r) for m in options.modes for r in options.rates]:
        here = {r.variant: r for r in results if r.rate == rate and r.mode == mode}
        if "nexus" in here and "poll" in here:
            n, b = here["nexus"], here["poll"]

            def ratio(x: float, y: float) -> float | None:
                finite = math.isfinite(x) and math.isfinite(y) and y > 0
                return x / y if finite else None

            entry = {"p50": ratio(b.p50_ms, n.p50_ms), "p99": ratio(b.p99_ms, n.p99_ms)}
            ratios[f"{mode} {rate:g}"] = entry
            print(
                f"  {mode} {rate:g} sales/s: ratio poll / nexus  p50 "
                + (f"{entry['p50']:.1f}x" if entry["p50"] is not None else "n/a")
                + "  p99 "
                + (f"{entry['p99']:.1f}x" if entry["p99"] is not None else "n/a")
            )
    return {"options": asdict(options), "results": [asdict(r) for r in results], "ratios": ratios}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--rates", default="10,100,500", help="sales per second, comma-separated (10,100,500)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sales per rate (10)")
    parser.add_argument("--channels", type=int, default=2, help="sandbox channels, >= 2 (2)")
    parser.add_argument("--webhook-concurrency", type=int, default=16, help="delivery workers per store (16)")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to wait after the sales (60)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="nexus,poll (both)")
    parser.add_argument(
        "--baseline-poll", type=float, help="the poll variant's worker.poll_interval (default 1)"
    )
    parser.add_argument(
        "--modes",
        default="embedded",
        help="embedded (SQLite, one process) and/or scaled (PostgreSQL + Redis, --workers worker "
        "processes), comma-separated (embedded)",
    )
    parser.add_argument("--workers", type=int, default=2, help="scaled mode: worker processes (2)")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="scaled: admin DSN (temporary databases)"
    )
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="scaled: Redis URL (a temporary namespace)")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="embedded mode, nexus variant: write cProfile statistics (CPU time) of the measured "
        "rates to this file (the figures then include its overhead)",
    )
    parser.add_argument("--serve-sandboxes", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from nexus import eventloop

    args = parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(variants) - set(VARIANTS) or set(modes) - set(MODES) or args.channels < 2:
        raise SystemExit(f"variants are {', '.join(VARIANTS)}; modes {', '.join(MODES)}; at least 2 channels")
    options = Options(
        rates=[float(r) for r in args.rates.split(",") if r.strip()],
        duration=args.duration,
        channels=args.channels,
        webhook_concurrency=args.webhook_concurrency,
        drain=args.drain,
        variants=variants,
        baseline_poll=args.baseline_poll,
        modes=modes,
        workers=args.workers,
        postgres=args.postgres,
        redis=args.redis,
        profile=args.profile,
    )
    results: list[RateResult] = []
    for mode in modes:
        for variant in variants:
            run = run_variant if mode == "embedded" else run_scaled
            # On the loop `nexus serve` runs on (uvloop where installed); the sandboxes keep asyncio's.
            results.extend(eventloop.run(run(variant, options)))
    summary = report(options, results)
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    quiet_logs()
    if args.serve_sandboxes is not None:
        asyncio.run(serve_sandboxes(json.loads(args.serve_sandboxes)))
    else:
        main(sys.argv[1:])
