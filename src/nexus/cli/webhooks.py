"""`nexus webhooks`: the stored webhook deliveries (list, show, reprocess).

No SQL here: the commands call `nexus.webhooks.log`. `--json` prints one JSON document on stdout
for scripts; a failure prints one line and exits 2.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nexus.cli.dlq import AGE, UNITS, ConfigOption, JsonOption, _with_nexus, emit_json, fail
from nexus.cli.ui import summary_grid
from nexus.domain.vocabulary import WebhookStatus
from nexus.engine import Nexus
from nexus.webhooks.log import (
    WebhookDetail,
    WebhookFilter,
    WebhookPage,
    list_webhooks,
    reprocess_webhooks,
    show_webhook,
)

app = typer.Typer(
    no_args_is_help=True,
    help="Stored webhook deliveries: list, show, process again.",
    pretty_exceptions_show_locals=False,
)
console = Console()

__all__ = ["app"]


def _since(text: str) -> timedelta:
    match = AGE.match(text)
    if match is None:
        raise fail(f"--since {text!r}: give a number and a unit, e.g. 90s, 30m, 12h, 7d, 2w")
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2) or "s"])


def _status(text: str | None) -> WebhookStatus | None:
    if text is None:
        return None
    try:
        return WebhookStatus(text)
    except ValueError:
        raise fail(f"--status {text!r}: one of {', '.join(s.value for s in WebhookStatus)}") from None


@app.command("list")
def list_(
    config: ConfigOption = None,
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="received, processed, failed or rejected.")
    ] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Only this topic.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only those received in the last 90s, 30m, 12h, 7d, 2w.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows per page.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Rows to skip (the next page).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """List stored deliveries, newest first."""
    where = WebhookFilter(
        channel=channel,
        status=_status(status),
        topic=topic,
        since=_since(since) if since is not None else None,
    )

    async def work(nexus: Nexus) -> WebhookPage:
        return await list_webhooks(nexus.db, where, limit=limit, offset=offset)

    page = _with_nexus(config, work)
    if as_json:
        emit_json(page.as_dict())
        return
    if not page.items:
        console.print("No webhook deliveries match." if page.total else "No webhook deliveries.")
        return
    table = Table("id", "channel", "topic", "status", "http", "attempts", "received", "error")
    for item in page.items:
        table.add_row(
            str(item.id),
            item.channel,
            item.topic or "-",
            item.status,
            str(item.http_status),
            str(item.attempts),
            item.received_at.isoformat(timespec="seconds"),
            item.error or "",
        )
    console.print(table)
    console.print(page.footer("deliveries"))


@app.command()
def show(
    log_id: Annotated[
        int, typer.Argument(metavar="ID", help="The delivery's id (see `nexus webhooks list`).")
    ],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One delivery: its headers (secrets masked), its body (the first 4 KiB) and what came of it."""

    async def work(nexus: Nexus) -> WebhookDetail:
        return await show_webhook(nexus.db, log_id)

    detail = _with_nexus(config, work)
    if as_json:
        emit_json(detail.as_dict())
        return
    item = detail.delivery
    summary = summary_grid()
    for label, value in (
        ("delivery", str(item.id)),
        ("channel", item.channel),
        ("topic", item.topic or "-"),
        ("status", item.status),
        ("answered", str(item.http_status)),
        ("verified", "yes" if item.verified else "no"),
        ("attempts", str(item.attempts)),
        ("delivery id", item.delivery_id or "-"),
        ("event id", item.event_id or "-"),
        ("received at", item.received_at.isoformat(timespec="seconds")),
        ("processed at", item.processed_at.isoformat(timespec="seconds") if item.processed_at else "-"),
        ("error", item.error or "-"),
        ("headers", json.dumps(detail.headers, sort_keys=True)),
        ("body", detail.body + (f" ... ({item.size} bytes in all)" if detail.truncated else "")),
    ):
        summary.add_row(label, value)
    console.print(summary, markup=False, highlight=False)


@app.command()
def reprocess(
    log_ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Deliveries to process again.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Process stored deliveries again, now, from their stored bytes. Idempotent: a sale booked
    once is not booked twice. Rejected deliveries are never processed."""

    async def work(nexus: Nexus) -> dict[str, Any]:
        return (await reprocess_webhooks(nexus, log_ids)).as_dict()

    result = _with_nexus(config, work)
    if as_json:
        emit_json(result)
        return
    for log_id, status in result["statuses"].items():
        error = result["errors"].get(log_id)
        console.print(f"{log_id}: {status}" + (f" ({error})" if error else ""), markup=False, highlight=False)
    if any(status == WebhookStatus.FAILED for status in result["statuses"].values()):
        raise typer.Exit(1)
