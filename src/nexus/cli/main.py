"""The `nexus` command (Typer + Rich)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from nexus import eventloop
from nexus.cli import batches, channels, dlq, tokens, webhooks
from nexus.cli.ui import progress_bar, show_batch
from nexus.config import DEFAULT_CONFIG_FILE, NO_FILE
from nexus.domain.reconcile import Finding
from nexus.engine import Nexus
from nexus.errors import NexusError
from nexus.observability.logs import configure_logging, secret_values
from nexus.sync.channel_state import UNBLOCK_HINT
from nexus.sync.conflicts import open_conflicts, resolve_conflict
from nexus.sync.readings import Difference

T = TypeVar("T")

# Never a traceback with locals: they hold the configuration, credentials included.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Keep inventory in sync across sales channels.",
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Configuration file (default: ./nexus.toml, or $NEXUS_CONFIG)."),
]


ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        "-n",
        min=1,
        help="Push rounds in flight per channel in this process (default: worker.concurrency if set, "
        "else what each driver allows: its max_in_flight).",
    ),
]


def _configure_logging(level: str, log_format: str = "console", secrets: Sequence[str] = ()) -> None:
    """The one place a `nexus` process configures its logs (nexus.observability.logs)."""
    configure_logging(level, log_format, secrets=secrets)


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; turn Nexus's own errors into one clear line and exit code 2."""
    try:
        return eventloop.run(factory())  # type: ignore[arg-type]
    except NexusError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except SQLAlchemyError as exc:
        # The database refused or vanished: one line, not a wall of driver internals.
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        err_console.print(f"[bold red]database error:[/] {reason}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _load(config: Path | None, *, schema: bool = True) -> Nexus:
    """The configured Nexus; with `schema`, first check that the database holds this version's
    schema (one line saying to run `nexus migrate` instead of a traceback later)."""
    try:
        nexus = Nexus.from_config(config)
    except NexusError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    settings = nexus.settings
    _configure_logging(settings.log_level, settings.log_format, secret_values(settings))
    if schema:
        _run(lambda: _check_schema(nexus))
    return nexus


async def _check_schema(nexus: Nexus) -> None:
    from nexus.storage.migrate import require_schema

    try:
        await require_schema(nexus.db)
    finally:
        await nexus.db.dispose()  # its connections belonged to this event loop, not the command's


@app.command()
def migrate(config: ConfigOption = None) -> None:
    """Create or upgrade the database schema."""
    nexus = _load(config, schema=False)

    async def go() -> None:
        async with nexus:
            await nexus.migrate()

    _run(go)
    console.print(f"Database at head: {nexus.settings.database_url}")


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        bool,
        typer.Option("--workers/--no-workers", help="Run push workers here too (--no-workers: web node)."),
    ] = True,
    concurrency: ConcurrencyOption = None,
) -> None:
    """Run the web app (webhooks, API), the push workers and the webhook processor in one process."""
    nexus = _load(config, schema=False)  # it migrates on start
    if nexus.source == NO_FILE and not nexus.settings.channels:
        err_console.print(
            f"[bold red]error:[/] no configuration file: ./{DEFAULT_CONFIG_FILE} not found and no channel in "
            "NEXUS_* variables (give --config FILE or set NEXUS_CONFIG)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)

    async def go() -> None:
        async with nexus:
            nexus.check_channels()
            # Imported after the check: a process that refuses to start does not load the web stack.
            from nexus.runtime import serve_forever

            await nexus.migrate()
            await serve_forever(
                nexus, web=True, workers=workers, host=host, port=port, concurrency=concurrency
            )

    _run(go)


@app.command()
def worker(
    config: ConfigOption = None,
    concurrency: ConcurrencyOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve this process's /nexus/metrics on this port."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address for --metrics-port.")
    ] = "127.0.0.1",
) -> None:
    """Run push workers and the webhook processor, without the web app. Start as many as you
    like, on as many machines: with PostgreSQL and Redis they share the work and the buckets.
    SIGTERM stops claiming, lets pushes in flight finish (worker.shutdown_grace) and releases
    the rest."""
    nexus = _load(config, schema=False)  # checked after the channels: a bad channel is named first

    async def go() -> None:
        async with nexus:
            nexus.check_channels()
            from nexus.runtime import serve_forever  # after the check, as in `serve`
            from nexus.storage.migrate import require_schema

            await require_schema(nexus.db)

            await serve_forever(
                nexus,
                web=False,
                workers=True,
                host=metrics_host,
                port=0,
                concurrency=concurrency,
                metrics_port=metrics_port,
            )

    _run(go)


@app.command("import")
def import_(channel: str, config: ConfigOption = None) -> None:
    """Link a channel's products to local SKUs (by SKU, then barcode) and report the unmatched."""
    nexus = _load(config)

    async def go() -> None:
        async with nexus:
            nexus.check_channels()
            with console.status(f"Importing {channel}...") as status:
                report = await nexus.import_channel(
                    channel,
                    on_page=lambda r: status.update(
                        f"Importing {channel}: {r.products} products read ({r.variants} variants)"
                    ),
                )
        console.print(
            f"{report.variants} variants in {report.products} products: {report.linked} newly linked, "
            f"{report.relinked} already linked ({report.matched_by_barcode} by barcode), "
            f"{len(report.unmatched)} unmatched"
        )
        if report.unmatched:
            table = Table(
                "remote id", "SKU", "title", title="Unmatched (create these SKUs, then import again)"
            )
            for remote_id, sku, title in report.unmatched[:50]:
                table.add_row(remote_id, sku or "-", title)
            console.print(table)
            if len(report.unmatched) > 50:
                console.print(f"... and {len(report.unmatched) - 50} more")

    _run(go)


@app.command()
def sync(
    config: ConfigOption = None,
    all_: Annotated[bool, typer.Option("--all", help="Push every listing.")] = False,
    sku: Annotated[list[str] | None, typer.Option("--sku", help="Push this SKU (repeatable).")] = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Only this channel (repeatable).")
    ] = None,
) -> None:
    """Push listings now, with a progress bar, and wait until the batch completes."""
    if not all_ and not sku:
        raise typer.BadParameter("give --all or at least one --sku")
    nexus = _load(config)

    async def go() -> None:
        from nexus.runtime import running

        targets = channel or nexus.channel_names()

        def refuse(reasons: list[str], code: int) -> NoReturn:
            err_console.print(f"[bold red]error:[/] {'; '.join(reasons)} ({UNBLOCK_HINT})", soft_wrap=True)
            raise typer.Exit(code)

        async with nexus:
            nexus.check_channels()
            await nexus.channel_states.require_pushable(targets)  # one line and exit 2 if not
            batch_id = await nexus.catalog(None if all_ else sku).sync_all(channel)
            async with running(nexus, web=False, channels=channel):
                with progress_bar(console) as progress:
                    task = progress.add_task("Syncing", total=None)
                    waiting = asyncio.ensure_future(
                        nexus.batch(batch_id).wait(
                            timeout=None, interval=0.2, on_progress=show_batch(progress, task)
                        )
                    )
                    while not waiting.done():
                        await asyncio.wait([waiting], timeout=1.0)
                        reasons = [] if waiting.done() else await nexus.channel_states.blocked(targets)
                        if reasons:
                            waiting.cancel()
                            refuse([*reasons, f"batch {batch_id} is left queued"], 1)
                    status = waiting.result()
        console.print(f"Batch {batch_id}: {status.processed} pushed, {status.failed} failed")
        if status.failed:
            raise typer.Exit(1)

    _run(go)


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per channel, for scripts.")
    ] = False,
) -> None:
    """A table per channel: listings, dirty, in flight, failed, dead letters, last sync, state."""
    nexus = _load(config)

    async def go() -> None:
        async with nexus:
            rows = await nexus.status()
        if as_json:
            print(json.dumps([dataclasses.asdict(row) for row in rows], default=str, indent=2))
            return
        table = Table(
            "channel",
            "driver",
            "listings",
            "dirty",
            "in flight",
            "failed",
            "dead letters",
            "last sync",
            "state",
        )
        for row in rows:
            table.add_row(
                row.channel + ("" if row.enabled else " (disabled)"),
                row.driver,
                str(row.listings),
                str(row.dirty),
                str(row.in_flight),
                str(row.failed),
                str(row.dead_letters),
                row.last_sync.isoformat(timespec="seconds") if row.last_sync else "never",
                row.state,
            )
        console.print(table)

    _run(go)


@app.command()
def reconcile(
    config: ConfigOption = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="Only this channel (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report the differences: no lease, no booking, no push.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The differences as a JSON list.")] = False,
) -> None:
    """Read every listing back now and settle what differs (docs/consistency.md, "Reconciliation")."""
    nexus = _load(config)

    async def go() -> int:
        async with nexus:
            nexus.check_channels()
            names = channel or nexus.channel_names()
            unreadable = [name for name in names if not nexus.channel(name).driver.capabilities.reads_levels]
            if unreadable:
                err_console.print(
                    f"[bold red]error:[/] cannot read levels back on: {', '.join(unreadable)}", soft_wrap=True
                )
                return 2
            differences: list[Difference] = []
            unread = 0
            for name in names:
                reconciler = nexus.reconciler(name)
                if dry_run:
                    differences += await reconciler.differences()
                    continue
                total = await reconciler.cycle()
                differences += total.differences
                unread += total.unread
                if any(d.finding is Finding.PUSHED for d in total.differences):
                    worker = nexus.push_worker(name)
                    while await worker.run_once() is not None:
                        pass
        if as_json:
            rows = [{**dataclasses.asdict(d), "finding": d.finding.value} for d in differences]
            print(json.dumps(rows, indent=2))
        else:
            _show_differences(differences, dry_run=dry_run)
        if unread:
            err_console.print(f"{unread} listings could not be read; they are read again next cycle")
            return 1
        return 0

    code = _run(go)
    if code:
        raise typer.Exit(code)


def _show_differences(differences: Sequence[Difference], *, dry_run: bool) -> None:
    if not differences:
        console.print("Every listing read shows what Nexus believes.")
        return
    table = Table(
        "channel", "sku", "believed", "channel shows", "desired", "would be" if dry_run else "outcome"
    )
    for d in differences:
        believed = "unknown" if d.believed is None else str(d.believed)
        table.add_row(d.channel, d.sku, believed, str(d.observed), str(d.desired), d.finding.value)
    console.print(table)
    console.print(f"{len(differences)} listings differ" + (" (dry run: nothing changed)" if dry_run else ""))


conflicts_app = typer.Typer(
    no_args_is_help=False,
    help="Conflicts the reconciler left to a person.",
    pretty_exceptions_show_locals=False,
)
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(dlq.app, name="dlq")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(batches.app, name="batches")
app.add_typer(channels.app, name="channels")
app.add_typer(tokens.app, name="token")


@conflicts_app.callback(invoke_without_command=True)
def conflicts(
    ctx: typer.Context,
    config: ConfigOption = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list, for scripts.")] = False,
) -> None:
    """List open conflicts (channel policy `review`)."""
    if ctx.invoked_subcommand is not None:
        return
    nexus = _load(config)

    async def go() -> None:
        async with nexus:
            rows = await open_conflicts(nexus.db, channel)
        if as_json:
            print(json.dumps([dataclasses.asdict(row) for row in rows], default=str, indent=2))
            return
        if not rows:
            console.print("No open conflicts.")
            return
        table = Table("id", "channel", "sku", "believed", "channel shows", "desired", "found")
        for row in rows:
            believed = "unknown" if row.believed is None else str(row.believed)
            found = row.created_at.isoformat(timespec="seconds")
            table.add_row(
                str(row.id), row.channel, row.sku, believed, str(row.observed), str(row.desired), found
            )
        console.print(table)

    _run(go)


@conflicts_app.command("resolve")
def resolve(
    conflict_id: Annotated[int, typer.Argument(help="The conflict's id (see `nexus conflicts`).")],
    take: Annotated[
        str, typer.Option("--take", help="nexus: push what Nexus wants; channel: book the channel's level.")
    ],
    config: ConfigOption = None,
) -> None:
    """Settle a conflict in favour of Nexus or of the channel."""
    if take not in ("nexus", "channel"):
        raise typer.BadParameter("nexus or channel", param_hint="--take")
    nexus = _load(config)

    async def go() -> None:
        async with nexus:
            change = await resolve_conflict(
                nexus.db, nexus.allocator, conflict_id, "nexus" if take == "nexus" else "channel"
            )
            if change is not None:
                await nexus.after_changes([change])
        booked = f"; booked {change.delta:+d} on {change.sku}" if change is not None and change.delta else ""
        console.print(
            f"Conflict {conflict_id} settled for {take}{booked}. `nexus worker` pushes what follows."
        )

    _run(go)


@app.command()
def demo(
    skus: Annotated[int, typer.Option(help="Catalog size.")] = 1000,
    duration: Annotated[
        float | None, typer.Option(help="Seconds of simulated sales; then print the summary and exit.")
    ] = None,
    sales_per_second: Annotated[float, typer.Option(help="Simulated sales per second.")] = 20.0,
    port: Annotated[int, typer.Option(help="Port for Nexus's web app (0: any free port).")] = 0,
    database: Annotated[Path, typer.Option(help="SQLite file for the demo (recreated).")] = Path(
        ".nexus/demo.db"
    ),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    plan: Annotated[
        str,
        typer.Option(
            help="Shopify plan of the sandbox store (its API limits): standard, advanced, plus, enterprise.",
        ),
    ] = "plus",
    channels: Annotated[
        str,
        typer.Option(help="Sandboxes to sell on, comma-separated: shopify, woocommerce, amazon, etsy."),
    ] = "shopify",
    time_scale: Annotated[
        float,
        typer.Option(help="How much faster the Amazon, Etsy and WooCommerce sandboxes' clocks run."),
    ] = 10.0,
    latency_ms: Annotated[
        float, typer.Option(help="Network latency every sandbox adds per request, in ms (a remote store).")
    ] = 0.0,
) -> None:
    """Sync a catalog to sandbox stores and let sales flow back (see the README)."""
    # The demo lives with the sandboxes, which a production process never imports: found
    # through the `nexus.commands` entry-point group, like a plugin.
    found = entry_points(group="nexus.commands", name="demo")
    if not found:
        err_console.print("[bold red]error:[/] the demo is not installed (it ships with the sandboxes)")
        raise typer.Exit(2)
    prepare: Callable[..., Callable[[], Awaitable[int]]] = next(iter(found)).load()
    _configure_logging("warning")
    run_demo = prepare(
        console=console,
        skus=skus,
        duration=duration,
        sales_per_second=sales_per_second,
        port=port,
        database=database,
        seed=seed,
        plan=plan,
        channels=channels,
        time_scale=time_scale,
        latency_ms=latency_ms,
    )
    code = _run(run_demo)
    if code:
        raise typer.Exit(code)


def main() -> None:
    app()
