"""`nexus channels`: each channel's state (connected, throttled, paused, disconnected), and
pausing or resuming one at run time. The state is in the database, so every running process
follows a pause within `worker.state_ttl` seconds (at once with Redis); nothing restarts.

The commands hold no SQL: they call `nexus.sync.channel_state`. `--json` prints one JSON document
on stdout for scripts; a failure prints one line and exits 2.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from nexus.engine import Nexus
from nexus.sync.channel_state import ChannelHealth

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=False,
    invoke_without_command=True,
    help="Channels and their states (connected, throttled, paused, disconnected); pause and resume.",
    pretty_exceptions_show_locals=False,
)
console = Console()

ACTOR = "cli"
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Configuration file (default: ./nexus.toml, or $NEXUS_CONFIG)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for scripts.")]


def _with_nexus(config: Path | None, work: Callable[[Nexus], Awaitable[T]]) -> T:
    from nexus.cli import main  # here, not at the top: main registers this module

    nexus = main._load(config)

    async def go() -> T:
        async with nexus:
            return await work(nexus)

    return main._run(go)


def _row(nexus: Nexus, health: ChannelHealth) -> dict[str, Any]:
    config = nexus.settings.channels[health.channel]
    return {**health.as_dict(), "driver": config.driver, "enabled": config.enabled}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


@app.callback()
def channels(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show every configured channel: driver, state, since when, and the last error."""
    if ctx.invoked_subcommand is not None:
        return

    async def work(nexus: Nexus) -> list[tuple[dict[str, Any], ChannelHealth]]:
        states = await nexus.channel_states.all(fresh=True)
        return [(_row(nexus, health), health) for health in states.values()]

    rows = _with_nexus(config, work)
    if as_json:
        typer.echo(json.dumps([row for row, _ in rows], indent=2))
        return
    if not rows:
        console.print("No channels are configured.")
        return
    table = Table("channel", "driver", "state", "since", "last error")
    colours = {"connected": "green", "throttled": "yellow", "paused": "cyan", "disconnected": "bold red"}
    for row, health in rows:
        state = health.state.value
        shown = state if row["enabled"] else f"{state} (disabled)"
        if health.state.value == "paused" and health.pause_reason:
            shown += f": {health.pause_reason}"
        table.add_row(
            health.channel,
            row["driver"],
            f"[{colours[state]}]{shown}[/]",
            _when(health.since),
            health.last_error or "-",
        )
    console.print(table)


@app.command()
def pause(
    channel: Annotated[str, typer.Argument(help="The channel to pause.")],
    config: ConfigOption = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; shown by `nexus channels`.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Stop pushing to CHANNEL in every process, without a restart. Webhooks are still received
    and booked; the listings queue up and are pushed on `resume`."""

    async def work(nexus: Nexus) -> dict[str, Any]:
        health = await nexus.channel_states.pause(channel, reason=reason, actor=ACTOR)
        return _row(nexus, health)

    row = _with_nexus(config, work)
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    console.print(f"{channel} is paused: no process pushes to it until `nexus channels resume {channel}`.")


@app.command()
def resume(
    channel: Annotated[str, typer.Argument(help="The channel to resume.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Push to CHANNEL again; what queued up while it was paused goes first."""

    async def work(nexus: Nexus) -> tuple[dict[str, Any], int]:
        health = await nexus.channel_states.resume(channel, actor=ACTOR)
        return _row(nexus, health), await nexus.queue.queued(channel)

    row, queued = _with_nexus(config, work)
    if as_json:
        typer.echo(json.dumps({**row, "queued_listings": queued}, indent=2))
        return
    console.print(f"{channel} is {row['state']}; {queued} listings waiting for a push.")
