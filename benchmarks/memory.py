"""Memory: N SKUs x 4 channels linked, the Nexus process's peak RSS and CPU per listing per channel.

ISSUE 13 point 4: "100,000 SKUs x 4 channels linked (sandboxes in another process): peak RSS of the
Nexus process through import, a full catalog sync and an hour-equivalent of sales." Target:
< 200 MiB peak RSS for the Nexus process.

1. A separate process (this file with `--serve-sandboxes`) holds a Shopify, a WooCommerce, an
   Amazon and an Etsy sandbox, each seeded with the same N SKUs (available 10) and with limits that
   do not bind (Shopify bucket and restore 1e9; WooCommerce has none; Amazon's usage plans and feed
   processing time-scaled x1000; Etsy 1e6 requests/s and 1e9/day), served on loopback by
   `nexus.web.server.serve_app`. It also makes the sales and delivers their webhooks.
2. This process runs Nexus alone, on SQLite in a temp dir (Nexus's own buckets lifted too), and
   reads its own peak RSS (VmHWM in /proc/self/status; ru_maxrss where there is no /proc) and CPU
   time (getrusage) at the end of each phase:
       start      the interpreter with nexus, SQLAlchemy, FastAPI and the drivers imported
       items      N items added
       import     `import_channel` for each of the 4 channels (every listing linked)
       serve      `nexus.runtime.running` (workers and web app) started, and the heap frozen as
                  `nexus serve` does once started (`freeze_startup_heap`: here it holds what the
                  import left alive too)
       sync       `catalog().sync_all()` with `nexus.runtime.running` (workers and web app) until no
                  listing is dirty (every store then shows Nexus's level: on_hand 11..40, not 10)
       sales      --sales sales at --sales-rate per second, round-robin over the Shopify,
                  WooCommerce and Etsy stores (their webhooks delivered to Nexus's web app; the
                  Amazon store is not subscribed: its SNS certificates would have to be fetched
                  from the sandbox's own process), then until nothing is dirty or unprocessed
   CPU per listing per channel = the sync phase's CPU seconds / (N x 4).

    .venv/bin/python benchmarks/memory.py --skus 100000
    .venv/bin/python benchmarks/memory.py --skus 10000 --sales 3000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quiet import quiet_logs
from sandbox_process import SandboxProcess
from sqlalchemy import func, select

THIS_FILE = Path(__file__).resolve()
KINDS = ("shopify", "woocommerce", "amazon", "etsy")
SELLING = ("shopify", "woocommerce", "etsy")
UNLIMITED = 1e9
TARGET_MIB = 200.0


# -- the sandbox process ------------------------------------------------------------------------


def build_sandbox(kind: str, skus: int) -> tuple[Any, tuple[str, ...]]:
    """A store of `kind` with N SKUs and limits that do not bind, and the topics Nexus wants."""
    if kind == "shopify":
        from nexus.sandbox.shopify import ShopifySandbox

        sandbox: Any = ShopifySandbox(
            seed=1, maximum_available=UNLIMITED, restore_rate=UNLIMITED, webhook_concurrency=4
        )
        topics: tuple[str, ...] = ("orders/create", "inventory_levels/update")
    elif kind == "woocommerce":
        from nexus.sandbox.woocommerce import WooCommerceSandbox

        sandbox = WooCommerceSandbox(seed=1, webhook_concurrency=4)
        topics = ("order.created", "product.updated")
    elif kind == "amazon":
        from nexus.sandbox.amazon import AmazonSandbox

        sandbox = AmazonSandbox(seed=1, time_scale=1000.0, feed_processing_seconds=1.0)
        topics = ()
    else:
        from nexus.sandbox.etsy import EtsySandbox

        sandbox = EtsySandbox(seed=1, requests_per_second=1_000_000, requests_per_day=1_000_000_000)
        topics = ("order.paid",)
    sandbox.seed_catalog(skus, quantity=10)
    return sandbox, topics


def channel_config(kind: str, sandbox: Any, base_url: str) -> dict[str, Any]:
    if kind == "shopify":
        credentials = {"access_token": sandbox.access_token, "webhook_secret": sandbox.webhook_secret}
        settings: dict[str, Any] = {"location_id": str(sandbox.location_id), "variants_per_product": 1}
    elif kind == "woocommerce":
        credentials = {
            "consumer_key": sandbox.consumer_key,
            "consumer_secret": sandbox.consumer_secret,
            "webhook_secret": sandbox.webhook_secret,
        }
        settings = {}
    elif kind == "amazon":
        credentials = sandbox.credentials()
        settings = {**sandbox.channel_settings(base_url), "feed_poll_interval": 0.05}
    else:
        credentials = sandbox.credentials()
        # The driver's own per-second and daily limiters, lifted like the store's.
        settings = {**sandbox.settings(base_url), "requests_per_second": 1_000_000, "requests_per_day": 10**9}
    return {
        "driver": kind,
        "base_url": base_url,
        "credentials": credentials,
        "settings": settings,
        "rate_limit": {"capacity": UNLIMITED, "refill_per_second": UNLIMITED},
    }


async def serve_sandboxes(config: dict[str, Any]) -> None:
    feed_messages = config.get("amazon_feed_messages")
    from nexus.web.server import serve_app

    built = {kind: build_sandbox(kind, config["skus"]) for kind in KINDS}

    def reply(body: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(body) + "\n")
        sys.stdout.flush()

    async with contextlib.AsyncExitStack() as stack:
        channels = {}
        for kind, (sandbox, _) in built.items():
            url = (await stack.enter_async_context(serve_app(sandbox.app))).base_url
            channels[kind] = channel_config(kind, sandbox, url)
            if kind == "amazon" and feed_messages:
                channels[kind]["settings"]["max_feed_messages"] = feed_messages
        reply({"channels": channels})
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "subscribe":
                for kind, address in command["addresses"].items():
                    sandbox, topics = built[kind]
                    for topic in topics:
                        sandbox.subscribe(topic, address)
                reply({"ok": True})
            elif command["cmd"] == "sales":
                reply(await _sell(built, command["count"], command["rate"], config["skus"]))
            elif command["cmd"] == "pending":
                reply({"pending": sum(s.deliveries.pending for s, _ in built.values())})
            elif command["cmd"] == "quit":
                break
        for sandbox, _ in built.values():
            await sandbox.aclose()


async def _sell(built: dict[str, Any], count: int, rate: float, skus: int) -> dict[str, Any]:
    rng = random.Random(3)
    start, made = time.monotonic(), 0
    for k in range(count):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sandbox, _ = built[SELLING[k % len(SELLING)]]
        if await sandbox.simulate_sale(f"SKU-{rng.randint(1, skus):06d}") is not None:
            made += 1
    return {"made": made, "seconds": time.monotonic() - start}


# -- the Nexus process ---------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident set so far (VmHWM), in MiB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class PeakTracer:
    """--trace: tracemalloc from the import on, and a snapshot whenever Python's traced memory
    reaches a new high (10 % above the last snapshot's), so the allocation sites at the peak can be
    printed. Tracing costs CPU and memory of its own: its runs measure *where*, not how much RSS."""

    def __init__(self, frames: int = 8) -> None:
        self.frames = frames
        self.snapshot: Any = None
        self.snapshot_mib = 0.0
        self.phase = ""
        self.snapshot_phase = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        import tracemalloc

        tracemalloc.start(self.frames)
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        import tracemalloc

        while True:
            current, _ = tracemalloc.get_traced_memory()
            if current > self.snapshot_mib * 1.1 * 2**20:
                self.snapshot = tracemalloc.take_snapshot()
                self.snapshot_mib = current / 2**20
                self.snapshot_phase = self.phase
            await asyncio.sleep(0.2)

    def report(self, top: int = 25) -> None:
        import tracemalloc

        if self._task is not None:
            self._task.cancel()
        if self.snapshot is None:
            return
        _, peak = tracemalloc.get_traced_memory()
        print(
            f"  tracemalloc: peak traced {peak / 2**20:.1f} MiB; "
            f"largest snapshot {self.snapshot_mib:.1f} MiB "
            f"(taken in phase {self.snapshot_phase!r}); its top allocation sites:"
        )
        snapshot = self.snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        for stat in snapshot.statistics("lineno")[:top]:
            frame = stat.traceback[0]
            print(f"    {stat.size / 2**20:7.2f} MiB {stat.count:>8} blocks  {frame.filename}:{frame.lineno}")
        print("  by caller chain (top 6):")
        for stat in snapshot.statistics("traceback")[:6]:
            print(f"    {stat.size / 2**20:7.2f} MiB {stat.count:>8} blocks")
            for line in stat.traceback.format(limit=self.frames):
                print(f"      {line}")
        tracemalloc.stop()


@dataclass
class Phase:
    name: str
    seconds: float
    cpu_seconds: float
    rss_mib: float  # at the phase's end
    peak_rss_mib: float  # the process's peak so far


def lift_amazon_usage_plans() -> None:
    """Nexus's own SP-API usage plans, scaled like the Amazon sandbox's (time_scale 1000).

    The driver paces each operation by Amazon's published plans (createFeed: one per two
    minutes after a burst of 15), whatever the store answers, so a 100,000-listing sync would
    spend most of an hour waiting for createFeed, and the import waiting for
    searchListingsItems: pacing, not memory. The other channels' own buckets are lifted the
    same way (`channel_config`)."""
    from nexus.channels.amazon import client
    from nexus.ratelimit.config import RateLimitConfig

    client.USAGE_PLANS = {  # type: ignore[misc]
        name: RateLimitConfig(capacity=plan.capacity * 1000, refill_per_second=plan.refill_per_second * 1000)
        for name, plan in client.USAGE_PLANS.items()
    }


async def run(
    skus: int,
    sales: int,
    sales_rate: float,
    timeout: float,
    tracer: PeakTracer | None = None,
    amazon_feed_messages: int | None = None,
) -> tuple[list[Phase], dict[str, Any]]:
    from nexus.config import NexusSettings
    from nexus.domain.catalog import ItemSpec
    from nexus.engine import Nexus
    from nexus.runtime import freeze_startup_heap, running
    from nexus.sandbox.shopify import ean13
    from nexus.storage.models import ChannelMapping, DeadLetter, WebhookLog

    phases: list[Phase] = []
    clock = [time.monotonic(), cpu_seconds()]

    def phase(name: str) -> None:
        now, cpu = time.monotonic(), cpu_seconds()
        phases.append(Phase(name, now - clock[0], cpu - clock[1], rss_mib(), peak_rss_mib()))
        clock[:] = [now, cpu]
        done = phases[-1]
        print(
            f"  [{time.strftime('%H:%M:%S')}] {name} done: {done.seconds:.1f} s, "
            f"cpu {done.cpu_seconds:.1f} s, "
            f"rss {done.rss_mib:.1f} MiB, peak {done.peak_rss_mib:.1f} MiB",
            file=sys.stderr,
            flush=True,
        )
        if tracer is not None:
            tracer.phase = f"after {name}"

    phase("start")
    lift_amazon_usage_plans()
    facts: dict[str, Any] = {"amazon_feed_messages": amazon_feed_messages or "the driver's default"}
    with tempfile.TemporaryDirectory(prefix="nexus-bench-mem-") as tmp:
        sandbox_config = {"skus": skus, "amazon_feed_messages": amazon_feed_messages}
        async with SandboxProcess.start(THIS_FILE, sandbox_config) as (stores, hello):
            clock[:] = [time.monotonic(), cpu_seconds()]  # the stores' seeding is not Nexus's time
            settings = NexusSettings(
                database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'nexus.db'}",
                log_level="warning",
                channels={f"{kind}-bench": config for kind, config in hello["channels"].items()},
                worker={"lease_seconds": 120, "shutdown_grace": 5.0},
            )
            rng = random.Random(7)
            async with Nexus(settings, source="benchmark") as nexus:
                await nexus.migrate()
                await nexus.add_items(
                    ItemSpec(
                        f"SKU-{i:06d}", title=f"Product {i}", barcode=ean13(i), on_hand=rng.randint(11, 40)
                    )
                    for i in range(1, skus + 1)
                )
                phase("items")
                if tracer is not None:
                    tracer.start()
                for kind in KINDS:
                    report = await nexus.import_channel(f"{kind}-bench")
                    if report.linked != skus:
                        raise RuntimeError(f"{kind}: import linked {report.linked} of {skus} listings")
                phase("import")

                async def waiting() -> tuple[int, int]:
                    async with nexus.db.read() as session:
                        dirty = (
                            await session.execute(
                                select(func.count())
                                .select_from(ChannelMapping)
                                .where(ChannelMapping.dirty_since.is_not(None))
                            )
                        ).scalar_one()
                        received = (
                            await session.execute(
                                select(func.count())
                                .select_from(WebhookLog)
                                .where(WebhookLog.status == "received")
                            )
                        ).scalar_one()
                    return int(dirty), int(received)

                async def quiet(limit: float) -> tuple[int, int]:
                    end, left = time.monotonic() + limit, (-1, -1)
                    while time.monotonic() < end:
                        left = await waiting()
                        if left == (0, 0):
                            break
                        await asyncio.sleep(1.0)
                    return left

                async with running(nexus, port=0) as service:
                    freeze_startup_heap()  # as `nexus serve` does once started
                    phase("serve")
                    await nexus.catalog().sync_all()
                    facts["left_after_sync"] = await quiet(timeout)
                    phase("sync")
                    base = f"{service.base_url}{settings.webhook_base_path}"
                    await stores.ask(
                        {"cmd": "subscribe", "addresses": {kind: f"{base}/{kind}-bench" for kind in SELLING}}
                    )
                    if sales:
                        facts["sales"] = await stores.ask(
                            {"cmd": "sales", "count": sales, "rate": sales_rate}
                        )
                        await asyncio.sleep(1.0)
                        facts["left_after_sales"] = await quiet(timeout)
                    phase("sales")
                async with nexus.db.read() as session:
                    facts["dead_letters"] = (
                        await session.execute(select(func.count()).select_from(DeadLetter))
                    ).scalar_one()
    return phases, facts


def report(skus: int, sales: int, phases: list[Phase], facts: dict[str, Any]) -> dict[str, Any]:
    by_name = {p.name: p for p in phases}
    sync = by_name["sync"]
    listings = skus * len(KINDS)
    peak = max(p.peak_rss_mib for p in phases)
    baseline = by_name["start"].rss_mib
    print(
        f"memory: {skus} SKUs x {len(KINDS)} channels ({', '.join(KINDS)}) = {listings} listings, "
        f"sandboxes in their own process, Nexus embedded (SQLite) alone in this one; {sales} sales; "
        f"Amazon max_feed_messages: {facts.get('amazon_feed_messages')}"
    )
    print(f"  {'phase':<7} {'wall s':>8} {'cpu s':>8} {'rss MiB':>8} {'peak MiB':>9}")
    for p in phases:
        print(
            f"  {p.name:<7} {p.seconds:>8.1f} {p.cpu_seconds:>8.1f} {p.rss_mib:>8.1f} {p.peak_rss_mib:>9.1f}"
        )
    per_listing_ms = sync.cpu_seconds / listings * 1000 if listings else 0.0
    print(
        f"  full catalog sync: {sync.cpu_seconds:.1f} s CPU = {per_listing_ms:.3f} ms CPU per listing "
        f"per channel; left dirty / unprocessed after sync {tuple(facts.get('left_after_sync', ()))}, "
        f"after sales {tuple(facts.get('left_after_sales', ()))}; dead letters {facts.get('dead_letters')}"
    )
    print(
        f"  peak RSS {peak:.1f} MiB; baseline (the process with everything imported, no data) "
        f"{baseline:.1f} MiB; growth {peak - baseline:.1f} MiB; "
        f"ratio peak / target {TARGET_MIB:.0f} MiB = {peak / TARGET_MIB:.2f}"
    )
    return {
        "skus": skus,
        "listings": listings,
        "phases": [asdict(p) for p in phases],
        "peak_rss_mib": peak,
        "baseline_rss_mib": baseline,
        "cpu_ms_per_listing_per_channel": per_listing_ms,
        "facts": facts,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=100_000, help="SKUs, each listed on 4 channels (100000)")
    parser.add_argument("--sales", type=int, default=3000, help="sales after the sync (3000)")
    parser.add_argument("--sales-rate", type=float, default=50.0, help="sales per second (50)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="max seconds to wait for a phase (3600)"
    )
    parser.add_argument(
        "--amazon-feed-messages",
        type=int,
        help="the Amazon channel's max_feed_messages (its push round); default: the driver's default",
    )
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    parser.add_argument(
        "--trace",
        action="store_true",
        help="tracemalloc from the import on: print the allocation sites at the traced peak "
        "(slower, and its RSS figures include tracemalloc's own memory)",
    )
    parser.add_argument("--serve-sandboxes", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from nexus import eventloop

    args = parse_args(argv)
    tracer = PeakTracer() if args.trace else None
    phases, facts = eventloop.run(  # as `nexus serve` runs: uvloop where installed
        run(args.skus, args.sales, args.sales_rate, args.timeout, tracer, args.amazon_feed_messages)
    )
    summary = report(args.skus, args.sales, phases, facts)
    if tracer is not None:
        tracer.report()
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
