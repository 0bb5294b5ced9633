"""`nexus batches`: catalog-sync batches (list, show, retry-failed).

No SQL here: the commands call `nexus.sync.batches`, whose retry replays the batch's dead
letters through the dead-letter desk. `--json` prints one JSON document on stdout for scripts;
a failure prints one line and exits 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nexus.cli.dlq import ConfigOption, JsonOption, _with_nexus, emit_json
from nexus.cli.ui import summary_grid
from nexus.engine import Nexus
from nexus.sync.batches import BatchDetail, BatchView, list_batches, retry_failed, show_batch

app = typer.Typer(
    no_args_is_help=True,
    help="Catalog-sync batches (`nexus sync`): list, show, retry the failed listings.",
    pretty_exceptions_show_locals=False,
)
console = Console()

ACTOR = "cli"
BatchId = Annotated[str, typer.Argument(metavar="ID", help="The batch's id (see `nexus batches list`).")]


def _when(view: BatchView) -> str:
    return view.created_at.isoformat(timespec="seconds")


@app.command("list")
def list_(
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows per page.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Rows to skip (the next page).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """List batches, newest first."""

    async def work(nexus: Nexus) -> tuple[list[BatchView], int]:
        return await list_batches(nexus.db, limit=limit, offset=offset)

    items, total = _with_nexus(config, work)
    if as_json:
        emit_json(
            {"items": [item.as_dict() for item in items], "total": total, "offset": offset, "limit": limit}
        )
        return
    if not items:
        console.print("No batches." if not total else "No batches on this page.")
        return
    table = Table("id", "trigger", "status", "total", "pushed", "failed", "pending", "started")
    for item in items:
        table.add_row(
            item.id,
            item.trigger,
            item.status,
            str(item.total),
            str(item.processed),
            str(item.failed),
            str(item.pending),
            _when(item),
        )
    console.print(table)
    console.print(f"{offset + 1}-{offset + len(items)} of {total} batches")


@app.command()
def show(batch_id: BatchId, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """One batch: its counts, its push requests and its open dead letters."""

    async def work(nexus: Nexus) -> BatchDetail:
        return await show_batch(nexus.db, batch_id)

    detail = _with_nexus(config, work)
    if as_json:
        emit_json(detail.as_dict())
        return
    batch = detail.batch
    summary = summary_grid()
    summary.add_row("batch", batch.id)
    summary.add_row("trigger", batch.trigger)
    summary.add_row("status", batch.status)
    summary.add_row(
        "listings", f"{batch.total}: {batch.processed} pushed, {batch.failed} failed, {batch.pending} pending"
    )
    summary.add_row("started", _when(batch))
    summary.add_row(
        "completed", batch.completed_at.isoformat(timespec="seconds") if batch.completed_at else "-"
    )
    summary.add_row(
        "push requests", f"{detail.requests} ({detail.succeeded} of {detail.pushed} listings succeeded)"
    )
    console.print(summary)
    letters = detail.dead_letters
    if letters.items:
        table = Table("dead letter", "channel", "sku", "status", "error", title="Open dead letters")
        for item in letters.items:
            table.add_row(str(item.id), item.channel, item.sku or "-", item.status, item.error)
        console.print(table)
        console.print(f"`nexus batches retry-failed {batch.id}` pushes them again")


@app.command("retry-failed")
def retry_failed_(
    batch_id: BatchId,
    config: ConfigOption = None,
    note: Annotated[str | None, typer.Option("--note", help="Why, for the dead letters' history.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Queue the batch's dead-lettered listings again (a replay of their dead letters): a running
    `nexus worker` pushes what each should show now."""

    async def work(nexus: Nexus) -> dict[str, Any]:
        result = await retry_failed(nexus.db, batch_id, actor=ACTOR, note=note)
        if result.channels:
            nexus.notify(result.channels)
        return result.as_dict()

    result = _with_nexus(config, work)
    if as_json:
        emit_json(result)
        return
    replaying, gone = result["replaying"], result["gone"]
    if not replaying and not gone:
        console.print(f"Batch {batch_id} has no failed dead letters: nothing to retry.")
        return
    if replaying:
        console.print(
            f"Retrying {len(replaying)} listings of batch {batch_id} "
            f"(dead letters {', '.join(map(str, replaying))}); "
            "a running `nexus worker` pushes what each should show now."
        )
    if gone:
        console.print(f"Resolved {len(gone)} whose listing is gone: {', '.join(map(str, gone))}")
