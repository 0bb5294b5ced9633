"""`nexus demo`: sandbox stores on loopback, a catalog synced to them, sales flowing back.

Everything real except the stores: SQLite, the HTTP drivers, signed webhooks, the token buckets.
By default one Shopify store; `--channels shopify,woocommerce,amazon,etsy` runs several sandboxes
that sell the same stock, so a sale on one lowers what the others show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from nexus.cli.ui import progress_bar, show_batch
from nexus.config import NexusSettings, WorkerConfig
from nexus.domain.catalog import ItemSpec
from nexus.domain.vocabulary import WebhookStatus
from nexus.engine import Nexus
from nexus.runtime import running
from nexus.sandbox.barcodes import ean13
from nexus.sandbox.demo_channels import KINDS, PLANS, PREFIX, DemoChannel, DemoSettings, build
from nexus.sandbox.demo_dashboard import keep_selling, leave_a_dead_letter, print_credentials, show_dashboard
from nexus.storage.models import ChannelMapping, Item, StockMovement, SyncJob, WebhookLog
from nexus.web.server import serve_app

__all__ = ["KINDS", "PLANS", "ChannelSummary", "DemoOptions", "DemoSummary", "run_demo"]


@dataclass
class DemoOptions:
    skus: int = 1000
    duration: float | None = None
    sales_per_second: float = 20.0
    local_share: float = 0.15  # share of ticks that are warehouse restocks or counter sales in Nexus
    port: int = 0
    database: Path = Path(".nexus/demo.db")
    seed: int = 7
    plan: str = "plus"
    channels: tuple[str, ...] = ("shopify",)
    time_scale: float = 10.0  # Amazon, Etsy, WooCommerce: their limits' and retries' clocks run faster
    latency_ms: float = 0.0  # network latency every sandbox adds per request
    quiet: bool = False


@dataclass
class ChannelSummary:
    name: str
    linked: int = 0
    unmatched: int = 0
    sales: int = 0
    units: int = 0
    denied: int = 0
    pushes: int = 0
    push_requests: int = 0
    requests: int = 0
    webhooks: int = 0
    throttled: int = 0
    oversold_units: int = 0
    out_of_sync_skus: list[str] = field(default_factory=list)

    @property
    def out_of_sync(self) -> int:
        return len(self.out_of_sync_skus)


@dataclass
class DemoSummary:
    skus: int = 0
    linked: int = 0
    unmatched: int = 0
    catalog_seconds: float = 0.0
    channel_sales: int = 0
    channel_units: int = 0
    denied_sales: int = 0
    local_sales: int = 0
    restocks: int = 0
    pushes: int = 0
    push_requests: int = 0
    channel_requests: int = 0
    webhooks: int = 0
    throttled: int = 0
    oversold_units: int = 0
    converge_seconds: float = 0.0
    ledger_mismatches: int = 0
    ledger_mismatch_skus: list[str] = field(default_factory=list)  # "SKU: Nexus N, truth M"
    out_of_sync: int = 0
    out_of_sync_skus: list[str] = field(default_factory=list)
    channels: dict[str, ChannelSummary] = field(default_factory=dict)


async def run_demo(options: DemoOptions, console: Console | None = None) -> DemoSummary:
    console = console or Console(quiet=options.quiet)
    rng = random.Random(options.seed)
    summary = DemoSummary(skus=options.skus)
    _fresh_database(options.database)

    settings = DemoSettings(options.skus, options.seed, options.plan, options.time_scale, options.latency_ms)
    demo_channels: list[DemoChannel] = []
    skus = [f"{PREFIX}{i:06d}" for i in range(1, options.skus + 1)]  # the sandboxes number from 1
    starting = {sku: rng.randint(0, 40) for sku in skus}

    async with AsyncExitStack() as stack:
        served: dict[str, str] = {}
        for kind in options.channels:
            channel = build(kind, settings)
            demo_channels.append(channel)
            stack.push_async_callback(channel.sandbox.aclose)
            served[channel.name] = (await stack.enter_async_context(serve_app(channel.sandbox.app))).base_url
            summary.channels[channel.name] = ChannelSummary(channel.name)
        nexus_settings = NexusSettings(
            database_url=f"sqlite+aiosqlite:///{options.database.resolve()}",
            channels={c.name: c.config(served[c.name]) for c in demo_channels},
            # probe_interval: a store whose credentials were restored reconnects within seconds.
            worker=WorkerConfig(
                poll_interval=0.25, backoff_base=0.2, backoff_max=5.0, lease_seconds=30, probe_interval=5.0
            ),
        )
        # The same configuration as a file, for other `nexus` commands against the running demo
        # (the sandbox credentials are throwaway values, not secrets).
        config_file = options.database.with_suffix(".toml")
        config_file.write_text(nexus_settings.to_toml())
        async with Nexus(nexus_settings, source="nexus demo") as nexus:
            for channel in demo_channels:
                channel.after_build(nexus)
            await nexus.migrate()
            await nexus.add_items(
                ItemSpec(sku=sku, title=f"Demo product {sku}", barcode=ean13(i), on_hand=starting[sku])
                for i, sku in enumerate(skus, start=1)
            )
            # Link first, with no worker running yet, so that the catalog batch is the one
            # push of every listing (a worker would otherwise push what the import found
            # dirty, and the batch would push it all again).
            for channel in demo_channels:
                console.print(f"[bold]{channel.label}[/] on {served[channel.name]}")
                await _import(nexus, channel, console, summary)
            async with running(nexus, port=options.port) as service:
                for channel in demo_channels:
                    channel.subscribe(f"{service.base_url}{nexus_settings.webhook_base_path}/{channel.name}")
                console.print(f"[bold]Nexus[/] on {service.base_url}")
                if options.duration is None and service.base_url:  # open it now: watch the sync
                    await show_dashboard(nexus, service.base_url, console)
                await _catalog_sync(nexus, [c.name for c in demo_channels], console, summary)
                local_deltas, sold = await _simulate(
                    nexus, demo_channels, skus, options, rng, console, summary
                )
                await _converge(nexus, demo_channels, console, summary)
                await _measure(nexus, demo_channels, starting, local_deltas, sold, summary)
                _print_summary(console, summary)
                if options.duration is None:
                    for channel in demo_channels:
                        command = sale_command(served[channel.name], skus[0])
                        print_commands(console, f"\nSell something on {channel.name}:\n  {command}")
                    first = demo_channels[0]
                    print_commands(
                        console,
                        f"\nChange a level behind Nexus's back, then see the reconciler find and fix it:\n"
                        f"  curl -X PUT '{served[first.name]}/_sandbox/levels/{skus[0]}?webhook=lost' "
                        f"-H 'content-type: application/json' -d '{{\"quantity\": 99}}'\n"
                        f"  nexus reconcile --dry-run -c {config_file}\n"
                        f"  nexus reconcile -c {config_file}",
                    )
                    print_credentials(console, demo_channels, served)
                    await leave_a_dead_letter(nexus, first, skus[0], console)
                    console.print(
                        "\nStill serving, with a few sales a second; watch them flow back. Ctrl-C to stop."
                    )
                    # Not the dead letter's SKU: a change of its stock would push it and resolve it.
                    await keep_selling(nexus, demo_channels, skus[1:], service.stop, seed=options.seed)
    return summary


def _fresh_database(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _import(nexus: Nexus, channel: DemoChannel, console: Console, summary: DemoSummary) -> None:
    with progress_bar(console) as progress:
        task = progress.add_task("Importing products", total=summary.skus + channel.extra_products)
        report = await nexus.import_channel(
            channel.name, on_page=lambda r: progress.update(task, completed=r.variants)
        )
    summary.channels[channel.name].linked = report.linked
    summary.channels[channel.name].unmatched = len(report.unmatched)
    summary.linked += report.linked
    summary.unmatched += len(report.unmatched)
    console.print(
        f"Imported {report.variants} variants from {channel.name}: {report.linked} linked, "
        f"{len(report.unmatched)} unmatched ({', '.join(sku or rid for rid, sku, _ in report.unmatched[:5])})"
    )


async def _catalog_sync(nexus: Nexus, channels: list[str], console: Console, summary: DemoSummary) -> None:
    started = time.perf_counter()
    batch_id = await nexus.catalog().sync_all(channels)
    with progress_bar(console) as progress:
        task = progress.add_task("Catalog sync", total=None)
        status = await nexus.batch(batch_id).wait(timeout=None, on_progress=show_batch(progress, task))
    summary.catalog_seconds = time.perf_counter() - started
    console.print(
        f"Catalog synced: {status.processed} pushed, {status.failed} failed in {summary.catalog_seconds:.2f}s"
    )


async def _simulate(
    nexus: Nexus,
    channels: list[DemoChannel],
    skus: list[str],
    options: DemoOptions,
    rng: random.Random,
    console: Console,
    summary: DemoSummary,
) -> tuple[Counter[str], Counter[str]]:
    """Sales on the stores, and restocks and counter sales in Nexus, for the demo's duration.

    Returns what the demo itself did, per SKU (Nexus-side deltas, units sold on the stores), so
    the summary can check Nexus's books against the ground truth."""
    local_deltas: Counter[str] = Counter()
    sold: Counter[str] = Counter()
    duration = options.duration if options.duration is not None else 20.0
    interval = 1.0 / options.sales_per_second
    deadline = time.perf_counter() + duration
    ticks = int(duration * options.sales_per_second)
    with progress_bar(console) as progress:
        task = progress.add_task("Simulating sales", total=ticks)
        next_tick = time.perf_counter()
        for _ in range(ticks):
            if time.perf_counter() > deadline:
                break
            sku = rng.choice(skus)
            if rng.random() < options.local_share:
                item = await nexus.product(sku).get()
                if rng.random() < 0.5 and item is not None and item.on_hand > 0:
                    await nexus.product(sku).adjust(-1, reason="sale", reference="counter sale")
                    local_deltas[sku] -= 1
                    summary.local_sales += 1
                else:
                    units = rng.randint(5, 20)
                    await nexus.product(sku).adjust(units, reason="restock", reference="delivery")
                    local_deltas[sku] += units
                    summary.restocks += 1
            else:
                quantity = rng.choice((1, 1, 1, 2))
                channel = channels[0] if len(channels) == 1 else rng.choice(channels)
                stats = summary.channels[channel.name]
                if await channel.sandbox.simulate_sale(sku, quantity) is None:
                    stats.denied += 1
                else:
                    stats.sales += 1
                    stats.units += quantity
                    sold[sku] += quantity
            progress.advance(task)
            next_tick += interval
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    return local_deltas, sold


async def _converge(
    nexus: Nexus, channels: list[DemoChannel], console: Console, summary: DemoSummary
) -> None:
    """Wait until webhooks are delivered and processed and no listing is dirty, three times in a row."""
    started = time.perf_counter()
    quiet_checks = 0
    with console.status("Waiting for every channel to converge..."):
        while time.perf_counter() - started < 180:
            for channel in channels:
                with contextlib.suppress(TimeoutError):  # deliveries still being retried: look again
                    await channel.sandbox.drain_webhooks(timeout=5)
            dirty = await nexus.queue.dirty()
            async with nexus.db.read() as session:
                pending = await session.scalar(
                    select(func.count())
                    .select_from(WebhookLog)
                    .where(WebhookLog.status == WebhookStatus.RECEIVED)
                )
            quiet_checks = quiet_checks + 1 if not dirty and not pending else 0
            if quiet_checks >= 3:
                break
            await asyncio.sleep(0.2)
    summary.converge_seconds = time.perf_counter() - started


async def _measure(
    nexus: Nexus,
    channels: list[DemoChannel],
    starting: dict[str, int],
    local_deltas: Counter[str],
    sold: Counter[str],
    summary: DemoSummary,
) -> None:
    async with nexus.db.read() as session:
        listings = list((await session.execute(select(ChannelMapping))).scalars())
        on_hand = dict((await session.execute(select(Item.sku, Item.on_hand))).all())
        pushes = dict(
            (
                await session.execute(
                    select(SyncJob.channel, func.sum(SyncJob.succeeded)).group_by(SyncJob.channel)
                )
            ).all()
        )
        push_requests = dict(
            (await session.execute(select(SyncJob.channel, func.count()).group_by(SyncJob.channel))).all()
        )
        webhooks = dict(
            (
                await session.execute(
                    select(WebhookLog.channel, func.count())
                    .where(WebhookLog.verified.is_(True))
                    .group_by(WebhookLog.channel)
                )
            ).all()
        )
        # Oversold: units a channel sold beyond the real stock (the sale took on hand below 0).
        oversold = dict(
            (
                await session.execute(
                    select(
                        StockMovement.channel,
                        func.sum(func.min(-StockMovement.delta, -StockMovement.on_hand_after)),
                    )
                    .where(StockMovement.reason == "sale", StockMovement.on_hand_after < 0)
                    .group_by(StockMovement.channel)
                )
            ).all()
        )
    for channel in channels:
        stats = summary.channels[channel.name]
        levels = channel.sandbox.levels()
        stats.out_of_sync_skus = sorted(
            row.sku
            for row in listings
            if row.channel == channel.name and levels.get(row.sku) != row.desired_qty
        )
        stats.pushes = int(pushes.get(channel.name) or 0)
        stats.push_requests = int(push_requests.get(channel.name) or 0)
        stats.webhooks = int(webhooks.get(channel.name) or 0)
        stats.oversold_units = int(oversold.get(channel.name) or 0)
        stats.requests = channel.sandbox.stats.requests
        stats.throttled = channel.sandbox.stats.throttled
    per_channel = list(summary.channels.values())
    summary.channel_sales = sum(c.sales for c in per_channel)
    summary.channel_units = sum(c.units for c in per_channel)
    summary.denied_sales = sum(c.denied for c in per_channel)
    summary.pushes = sum(c.pushes for c in per_channel)
    summary.push_requests = sum(c.push_requests for c in per_channel)
    summary.channel_requests = sum(c.requests for c in per_channel)
    summary.webhooks = sum(c.webhooks for c in per_channel)
    summary.throttled = sum(c.throttled for c in per_channel)
    # Counter sales in Nexus (no channel) check the stock first, so every oversold unit is a channel's.
    summary.oversold_units = sum(int(units or 0) for units in oversold.values())
    summary.out_of_sync_skus = [
        sku if len(per_channel) == 1 else f"{c.name}:{sku}" for c in per_channel for sku in c.out_of_sync_skus
    ]
    summary.out_of_sync = len(summary.out_of_sync_skus)
    # Every unit is accounted for: what we started with, what happened in Nexus, what sold on the stores.
    summary.ledger_mismatch_skus = [
        f"{sku}: Nexus {on_hand.get(sku)}, truth {start + local_deltas[sku] - sold[sku]}"
        for sku, start in starting.items()
        if on_hand.get(sku) != start + local_deltas[sku] - sold[sku]
    ]
    summary.ledger_mismatches = len(summary.ledger_mismatch_skus)


def _print_summary(console: Console, summary: DemoSummary) -> None:
    if len(summary.channels) > 1:
        _print_channels(console, summary)
    table = Table(title="Nexus demo summary", show_header=False)
    rows = [
        ("SKUs", summary.skus),
        ("linked / unmatched", f"{summary.linked} / {summary.unmatched}"),
        ("catalog sync", f"{summary.catalog_seconds:.2f} s"),
        (
            "sales on the store (orders / units / refused)"
            if len(summary.channels) == 1
            else "sales on the stores (orders / units / refused)",
            f"{summary.channel_sales} / {summary.channel_units} / {summary.denied_sales}",
        ),
        ("counter sales / restocks in Nexus", f"{summary.local_sales} / {summary.restocks}"),
        ("pushes (listings acknowledged)", summary.pushes),
        ("push requests", summary.push_requests),
        (
            "requests seen by the store" if len(summary.channels) == 1 else "requests seen by the stores",
            summary.channel_requests,
        ),
        ("webhooks received", summary.webhooks),
        ("throttled requests", summary.throttled),
        ("oversold units", summary.oversold_units),
        ("time to converge", f"{summary.converge_seconds:.2f} s"),
        ("SKUs whose stock does not add up", summary.ledger_mismatches),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    if summary.out_of_sync_skus:
        console.print(f"out of sync: {', '.join(summary.out_of_sync_skus[:20])}")
    if summary.ledger_mismatch_skus:
        console.print(f"does not add up: {'; '.join(summary.ledger_mismatch_skus[:20])}")
    console.print(f"out_of_sync: {summary.out_of_sync}", markup=False, highlight=False)


def _print_channels(console: Console, summary: DemoSummary) -> None:
    table = Table(title="Per channel")
    table.add_column("")
    channels = list(summary.channels.values())
    for c in channels:
        table.add_column(c.name.removesuffix("-demo"), justify="right")
    rows = {
        "units sold / refused": [f"{c.units} / {c.denied}" for c in channels],
        "pushes / push requests": [f"{c.pushes} / {c.push_requests}" for c in channels],
        "requests seen": [str(c.requests) for c in channels],
        "webhooks received": [str(c.webhooks) for c in channels],
        "throttled": [str(c.throttled) for c in channels],
        "oversold units": [str(c.oversold_units) for c in channels],
        "out of sync": [str(c.out_of_sync) for c in channels],
    }
    for name, values in rows.items():
        table.add_row(name, *values)
    console.print(table)


def command(
    *,
    console: Console,
    skus: int,
    duration: float | None,
    sales_per_second: float,
    port: int,
    database: Path,
    seed: int,
    plan: str,
    channels: str,
    time_scale: float,
    latency_ms: float = 0.0,
) -> Callable[[], Awaitable[int]]:
    """`nexus demo` (the `nexus.commands` entry point): check the options, then return the run,
    whose exit code is 1 when the demo ends with anything out of sync or not adding up."""
    if plan not in PLANS:
        raise typer.BadParameter(f"choose one of {', '.join(PLANS)}", param_hint="--plan")
    kinds = tuple(dict.fromkeys(k.strip() for k in channels.split(",") if k.strip()))
    if not kinds or any(k not in KINDS for k in kinds):
        raise typer.BadParameter(f"choose among {', '.join(KINDS)}", param_hint="--channels")
    if time_scale <= 0:
        raise typer.BadParameter("must be positive", param_hint="--time-scale")
    if not latency_ms >= 0:
        raise typer.BadParameter("must be zero or more", param_hint="--latency-ms")
    options = DemoOptions(
        skus=skus,
        duration=duration,
        sales_per_second=sales_per_second,
        port=port,
        database=database,
        seed=seed,
        plan=plan,
        channels=kinds,
        time_scale=time_scale,
        latency_ms=latency_ms,
    )

    async def run() -> int:
        summary = await run_demo(options, console)
        return 1 if summary.out_of_sync or summary.ledger_mismatches else 0

    return run


def sale_command(base_url: str, sku: str) -> str:
    """The curl line that sells one `sku` on a sandbox served at `base_url`."""
    sale = json.dumps({"sku": sku, "quantity": 1})
    return f"curl -X POST {base_url}/_sandbox/sales -H 'content-type: application/json' -d '{sale}'"


def print_commands(console: Console, text: str) -> None:
    """Commands to paste: never wrapped (a line broken inside its quotes breaks when pasted),
    whatever the terminal's width, and printed as they are (no markup, no highlighting)."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)
