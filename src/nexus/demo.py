"""`nexus demo`: a Shopify sandbox store on loopback, a catalog synced to it, sales flowing back.

Everything real except the store: SQLite, the HTTP driver, signed webhooks, the token bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from nexus.cli.ui import progress_bar, show_batch
from nexus.config import ChannelConfig, NexusSettings, WorkerConfig
from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.runtime import running
from nexus.sandbox.server import serve_app
from nexus.sandbox.shopify import ShopifySandbox, ean13
from nexus.storage.models import ChannelMapping, Item, StockMovement, SyncJob, WebhookLog

CHANNEL = "shopify-demo"
# GraphQL Admin API restore rates per plan (shopify.dev, "GraphQL Admin API rate limits"); the
# bucket holds 20 seconds of restore, as the Standard plan's documented 2000 / 100 does.
PLANS = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0, "enterprise": 2000.0}
TOPICS = ("orders/create", "inventory_levels/update")


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
    quiet: bool = False


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
    out_of_sync: int = 0
    out_of_sync_skus: list[str] = field(default_factory=list)


async def run_demo(options: DemoOptions, console: Console | None = None) -> DemoSummary:
    console = console or Console(quiet=options.quiet)
    rng = random.Random(options.seed)
    summary = DemoSummary(skus=options.skus)
    _fresh_database(options.database)

    # Shopify retries a failed delivery after about a minute; the demo compresses that to seconds.
    # Shopify delivers webhooks in parallel and in no guaranteed order; so does the sandbox here.
    restore = PLANS[options.plan]
    sandbox = ShopifySandbox(
        seed=options.seed,
        maximum_available=restore * 20,
        restore_rate=restore,
        webhook_retry_base_seconds=0.5,
        webhook_concurrency=8,
    )
    prefix = "SKU-"
    sandbox.seed_catalog(options.skus, quantity=10, prefix=prefix)
    for n in range(3):  # products the merchant never created in Nexus: reported as unmatched
        sandbox.add_product(f"Unlisted gadget {n}", [{"sku": f"LEGACY-{n}", "price": "9.99", "quantity": 4}])
    skus = [f"{prefix}{i:06d}" for i in range(1, options.skus + 1)]  # the sandbox numbers from 1
    starting = {sku: rng.randint(0, 40) for sku in skus}

    try:
        async with serve_app(sandbox.app) as shop:
            settings = NexusSettings(
                database_url=f"sqlite+aiosqlite:///{options.database}",
                channels={
                    CHANNEL: ChannelConfig(
                        driver="shopify",
                        base_url=shop.base_url,
                        credentials={
                            "access_token": sandbox.access_token,
                            "webhook_secret": sandbox.webhook_secret,
                        },
                        # The demo products have one variant each, so pages can hold many products.
                        settings={"location_id": str(sandbox.location_id), "variants_per_product": 5},
                    )
                },
                worker=WorkerConfig(poll_interval=0.25, backoff_base=0.2, backoff_max=5.0, lease_seconds=30),
            )
            async with Nexus(settings, source="nexus demo") as nexus:
                await nexus.migrate()
                await nexus.add_items(
                    ItemSpec(sku=sku, title=f"Demo product {sku}", barcode=ean13(i), on_hand=starting[sku])
                    for i, sku in enumerate(skus, start=1)
                )
                # Link first, with no worker running yet, so that the catalog batch is the one
                # push of every listing (a worker would otherwise push what the import found
                # dirty, and the batch would push it all again).
                console.print(f"[bold]Shopify sandbox[/] on {shop.base_url}")
                await _import(nexus, console, summary)
                async with running(nexus, port=options.port) as service:
                    for topic in TOPICS:
                        sandbox.subscribe(topic, f"{service.base_url}{settings.webhook_base_path}/{CHANNEL}")
                    console.print(f"[bold]Nexus[/] on {service.base_url}")
                    await _catalog_sync(nexus, console, summary)
                    local_deltas, sold = await _simulate(nexus, sandbox, skus, options, rng, console, summary)
                    await _converge(nexus, sandbox, console, summary)
                    await _measure(nexus, sandbox, starting, local_deltas, sold, summary)
                    _print_summary(console, summary)
                    if options.duration is None:
                        sale = json.dumps({"sku": skus[0], "quantity": 1})
                        console.print(
                            f"\nStill serving. Sell something on the store:\n  curl -X POST "
                            f"{shop.base_url}/_sandbox/sales -H 'content-type: application/json' "
                            f"-d '{sale}'\n"
                            "and watch it flow back. Ctrl-C to stop."
                        )
                        await service.stop.wait()
    finally:
        await sandbox.aclose()
    return summary


def _fresh_database(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _import(nexus: Nexus, console: Console, summary: DemoSummary) -> None:
    with progress_bar(console) as progress:
        task = progress.add_task("Importing products", total=summary.skus + 3)
        report = await nexus.import_channel(
            CHANNEL, on_page=lambda r: progress.update(task, completed=r.variants)
        )
    summary.linked = report.linked
    summary.unmatched = len(report.unmatched)
    console.print(
        f"Imported {report.variants} variants from {CHANNEL}: {report.linked} linked, "
        f"{len(report.unmatched)} unmatched ({', '.join(sku or rid for rid, sku, _ in report.unmatched[:5])})"
    )


async def _catalog_sync(nexus: Nexus, console: Console, summary: DemoSummary) -> None:
    started = time.perf_counter()
    batch_id = await nexus.catalog().sync_all([CHANNEL])
    with progress_bar(console) as progress:
        task = progress.add_task("Catalog sync", total=None)
        status = await nexus.batch(batch_id).wait(timeout=None, on_progress=show_batch(progress, task))
    summary.catalog_seconds = time.perf_counter() - started
    console.print(
        f"Catalog synced: {status.processed} pushed, {status.failed} failed in {summary.catalog_seconds:.2f}s"
    )


async def _simulate(
    nexus: Nexus,
    sandbox: ShopifySandbox,
    skus: list[str],
    options: DemoOptions,
    rng: random.Random,
    console: Console,
    summary: DemoSummary,
) -> tuple[Counter[str], Counter[str]]:
    """Sales on the store, and restocks and counter sales in Nexus, for the demo's duration.

    Returns what the demo itself did, per SKU (Nexus-side deltas, units sold on the store), so
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
                order = await sandbox.simulate_sale(sku, rng.choice((1, 1, 1, 2)))
                if order is None:
                    summary.denied_sales += 1
                else:
                    units = sum(int(line["quantity"]) for line in order["line_items"])
                    summary.channel_sales += 1
                    summary.channel_units += units
                    sold[sku] += units
            progress.advance(task)
            next_tick += interval
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    return local_deltas, sold


async def _converge(nexus: Nexus, sandbox: ShopifySandbox, console: Console, summary: DemoSummary) -> None:
    """Wait until webhooks are delivered and processed and no listing is dirty, twice in a row."""
    started = time.perf_counter()
    quiet_checks = 0
    with console.status("Waiting for every channel to converge..."):
        while time.perf_counter() - started < 120:
            with contextlib.suppress(TimeoutError):  # deliveries still being retried: look again
                await sandbox.drain_webhooks(timeout=5)
            async with nexus.db.read() as session:
                dirty = await session.scalar(
                    select(func.count())
                    .select_from(ChannelMapping)
                    .where(ChannelMapping.dirty_since.is_not(None))
                )
                pending = await session.scalar(
                    select(func.count()).select_from(WebhookLog).where(WebhookLog.status == "received")
                )
            quiet_checks = quiet_checks + 1 if not dirty and not pending else 0
            if quiet_checks >= 3:
                break
            await asyncio.sleep(0.2)
    summary.converge_seconds = time.perf_counter() - started


async def _measure(
    nexus: Nexus,
    sandbox: ShopifySandbox,
    starting: dict[str, int],
    local_deltas: Counter[str],
    sold: Counter[str],
    summary: DemoSummary,
) -> None:
    levels = sandbox.levels()
    async with nexus.db.read() as session:
        listings = list(
            (await session.execute(select(ChannelMapping).where(ChannelMapping.channel == CHANNEL))).scalars()
        )
        on_hand = dict((await session.execute(select(Item.sku, Item.on_hand))).all())
        summary.pushes = int(await session.scalar(select(func.coalesce(func.sum(SyncJob.succeeded), 0))) or 0)
        summary.push_requests = int(await session.scalar(select(func.count()).select_from(SyncJob)) or 0)
        summary.webhooks = int(
            await session.scalar(
                select(func.count()).select_from(WebhookLog).where(WebhookLog.verified.is_(True))
            )
            or 0
        )
        summary.oversold_units = int(
            await session.scalar(
                select(
                    func.coalesce(func.sum(func.min(-StockMovement.delta, -StockMovement.on_hand_after)), 0)
                ).where(StockMovement.reason == "sale", StockMovement.on_hand_after < 0)
            )
            or 0
        )
    summary.out_of_sync_skus = sorted(row.sku for row in listings if levels.get(row.sku) != row.desired_qty)
    summary.out_of_sync = len(summary.out_of_sync_skus)
    summary.channel_requests = sandbox.stats.requests
    summary.throttled = sandbox.stats.throttled
    # Every unit is accounted for: what we started with, what happened in Nexus, what sold on the store.
    summary.ledger_mismatches = sum(
        1 for sku, start in starting.items() if on_hand.get(sku) != start + local_deltas[sku] - sold[sku]
    )


def _print_summary(console: Console, summary: DemoSummary) -> None:
    table = Table(title="Nexus demo summary", show_header=False)
    rows = [
        ("SKUs", summary.skus),
        ("linked / unmatched", f"{summary.linked} / {summary.unmatched}"),
        ("catalog sync", f"{summary.catalog_seconds:.2f} s"),
        (
            "sales on the store (orders / units / refused)",
            f"{summary.channel_sales} / {summary.channel_units} / {summary.denied_sales}",
        ),
        ("counter sales / restocks in Nexus", f"{summary.local_sales} / {summary.restocks}"),
        ("pushes (listings acknowledged)", summary.pushes),
        ("push requests", summary.push_requests),
        ("requests seen by the store", summary.channel_requests),
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
    console.print(f"out_of_sync: {summary.out_of_sync}", markup=False, highlight=False)
