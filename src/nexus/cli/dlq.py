"""`nexus dlq`: work dead letters from the terminal (list, show, replay, resolve).

The commands hold no SQL: they call `nexus.sync.dead_letters`, as the REST API does. `--json`
prints one JSON document on stdout for scripts; a failure prints one line and exits 2.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from nexus.cli.ui import summary_grid
from nexus.domain.vocabulary import DeadLetterStatus
from nexus.engine import Nexus
from nexus.sync.dead_letters import (
    OPEN,
    DeadLetterDetail,
    DeadLetterFilter,
    DeadLetterPage,
    list_dead_letters,
    replay_dead_letters,
    resolve_dead_letters,
    show_dead_letter,
)

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True,
    help="Dead letters: listings whose push failed for good. List, show, replay, resolve.",
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)

ACTOR = "cli"
STATUSES = {
    "open": OPEN,
    "failed": frozenset({DeadLetterStatus.FAILED}),
    "replaying": frozenset({DeadLetterStatus.REPLAYING}),
    "resolved": frozenset({DeadLetterStatus.RESOLVED}),
    "all": None,
}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Configuration file (default: ./nexus.toml, or $NEXUS_CONFIG)."),
]
ChannelOption = Annotated[str | None, typer.Option("--channel", help="Only this channel.")]
SkuOption = Annotated[str | None, typer.Option("--sku", help="Only this SKU.")]
ErrorOption = Annotated[
    str | None, typer.Option("--error", help="Only errors containing this text (any case).")
]
OlderOption = Annotated[
    str | None,
    typer.Option("--older-than", help="Only those failed at least this long ago: 90s, 30m, 12h, 7d, 2w."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for scripts.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `message` as one error line; the caller raises what this returns."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def parse_age(text: str) -> timedelta:
    match = AGE.match(text)
    if match is None:
        raise fail(f"--older-than {text!r}: give a number and a unit, e.g. 90s, 30m, 12h, 7d, 2w")
    return timedelta(seconds=float(match.group(1)) * UNITS[match.group(2) or "s"])


def parse_status(text: str) -> frozenset[DeadLetterStatus] | None:
    if text not in STATUSES:
        raise fail(f"--status {text!r}: one of {', '.join(STATUSES)}")
    return STATUSES[text]


def emit_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False))


def _with_nexus(config: Path | None, work: Callable[[Nexus], Awaitable[T]]) -> T:
    """Load the configuration, run `work` with an open Nexus; Nexus's own errors are one line
    and exit code 2 (`nexus.cli.main._run`)."""
    from nexus.cli import main  # here, not at the top: main registers this module

    nexus = main._load(config)

    async def go() -> T:
        async with nexus:
            return await work(nexus)

    return main._run(go)


@app.command("list")
def list_(
    config: ConfigOption = None,
    channel: ChannelOption = None,
    sku: SkuOption = None,
    error: ErrorOption = None,
    older_than: OlderOption = None,
    status: Annotated[
        str, typer.Option("--status", help="open (failed or replaying), failed, replaying, resolved, all.")
    ] = "open",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows per page.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Rows to skip (the next page).")] = 0,
    as_json: JsonOption = False,
) -> None:
    """List dead letters, newest first (default: the open ones)."""
    where = DeadLetterFilter(
        channel=channel,
        sku=sku,
        error=error,
        older_than=parse_age(older_than) if older_than is not None else None,
        statuses=parse_status(status),
    )

    async def work(nexus: Nexus) -> DeadLetterPage:
        return await list_dead_letters(nexus.db, where, limit=limit, offset=offset)

    page = _with_nexus(config, work)
    if as_json:
        emit_json(page.as_dict())
        return
    if not page.items:
        console.print("No dead letters match." if page.total else "No dead letters.")
        return
    table = Table("id", "channel", "sku", "status", "attempts", "sent", "failed at", "error")
    for item in page.items:
        table.add_row(
            str(item.id),
            item.channel,
            item.sku or "-",
            item.status,
            str(item.attempts),
            "-" if item.quantity is None else str(item.quantity),
            item.failed_at.isoformat(timespec="seconds"),
            item.error,
        )
    console.print(table)
    console.print(page.footer("dead letters"))


@app.command()
def show(
    letter_id: Annotated[
        int, typer.Argument(metavar="ID", help="The dead letter's id (see `nexus dlq list`).")
    ],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One dead letter: what was sent, the error, its history and the listing's level now."""

    async def work(nexus: Nexus) -> DeadLetterDetail:
        return await show_dead_letter(nexus.db, letter_id)

    detail = _with_nexus(config, work)
    if as_json:
        emit_json(detail.as_dict())
        return
    letter, listing = detail.letter, detail.listing
    summary = summary_grid()
    summary.add_row("dead letter", str(letter.id))
    summary.add_row("status", letter.status)
    summary.add_row("channel", letter.channel)
    summary.add_row("sku", letter.sku or "-")
    summary.add_row("error", letter.error)
    summary.add_row("attempts", str(letter.attempts))
    summary.add_row("failed at", letter.failed_at.isoformat(timespec="seconds"))
    if letter.resolved_at is not None:
        summary.add_row("resolved at", letter.resolved_at.isoformat(timespec="seconds"))
    summary.add_row("payload", json.dumps(detail.payload, sort_keys=True))
    if listing is None:
        summary.add_row("listing", "deleted")
    else:
        believed = "unknown" if listing.believed is None else str(listing.believed)
        state = "dead-lettered" if listing.failed else "queued" if listing.dirty else "in sync"
        summary.add_row("listing", f"{listing.id} ({state})")
        summary.add_row("desired now", str(listing.desired))
        summary.add_row("channel shows", believed + (" (in doubt)" if listing.verify_pending else ""))
    console.print(summary)
    history = Table("at", "from", "to", "by", "reason", title="History")
    for entry in detail.history:
        history.add_row(
            entry.at.isoformat(timespec="seconds"),
            entry.from_status or "-",
            entry.status,
            entry.actor,
            entry.reason or "",
        )
    console.print(history)


@app.command()
def replay(
    letter_ids: Annotated[
        list[int] | None, typer.Argument(metavar="[ID]...", help="Dead letters to replay.")
    ] = None,
    config: ConfigOption = None,
    channel: ChannelOption = None,
    sku: SkuOption = None,
    error: ErrorOption = None,
    older_than: OlderOption = None,
    note: Annotated[str | None, typer.Option("--note", help="Why, for the history.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Push the dead letters' listings again, at what they should show now.

    Give ids, or a filter (every failed dead letter matching it); never everything at once."""
    filtered = any(value is not None for value in (channel, sku, error, older_than))
    if letter_ids and filtered:
        raise fail("give dead letter ids or a filter (--channel, --sku, --error, --older-than), not both")
    if not letter_ids and not filtered:
        raise fail(
            "give dead letter ids or a filter (--channel, --sku, --error, --older-than); "
            "nothing replays every dead letter at once"
        )
    where = None
    if filtered:
        where = DeadLetterFilter(
            channel=channel,
            sku=sku,
            error=error,
            older_than=parse_age(older_than) if older_than is not None else None,
            statuses=frozenset({DeadLetterStatus.FAILED}),
        )

    async def work(nexus: Nexus) -> dict[str, Any]:
        result = await replay_dead_letters(nexus.db, letter_ids or None, where, actor=ACTOR, note=note)
        if result.channels:
            nexus.notify(result.channels)  # running workers push them now
        return result.as_dict()

    result = _with_nexus(config, work)
    if as_json:
        emit_json(result)
        return
    replaying, gone = result["replaying"], result["gone"]
    if not replaying and not gone:
        console.print("No failed dead letters match: nothing replayed.")
        return
    if replaying:
        console.print(
            f"Replaying {len(replaying)} dead letters ({', '.join(map(str, replaying))}): their listings "
            "are queued and a running `nexus worker` pushes what each should show now."
        )
    if gone:
        console.print(f"Resolved {len(gone)} whose listing is gone: {', '.join(map(str, gone))}")


@app.command()
def resolve(
    letter_ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Dead letters to acknowledge.")],
    config: ConfigOption = None,
    note: Annotated[str | None, typer.Option("--note", help="Why, for the history.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge dead letters without replaying them.

    They leave the counts; their listings wait for their next stock change."""

    async def work(nexus: Nexus) -> dict[str, Any]:
        return (await resolve_dead_letters(nexus.db, letter_ids, actor=ACTOR, note=note)).as_dict()

    result = _with_nexus(config, work)
    if as_json:
        emit_json(result)
        return
    if result["resolved"]:
        console.print(f"Resolved {', '.join(map(str, result['resolved']))}.")
    if result["already"]:
        console.print(f"Already resolved: {', '.join(map(str, result['already']))}.")
