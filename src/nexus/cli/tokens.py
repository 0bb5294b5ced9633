"""`nexus token`: create, list and revoke the tokens of the API and the dashboard.

The secret is printed once, by `create`; only its hash is stored (nexus.access.tokens).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from nexus.access.tokens import Role, TokenView
from nexus.cli.dlq import ConfigOption, JsonOption, _with_nexus, emit_json
from nexus.engine import Nexus

app = typer.Typer(
    no_args_is_help=True,
    help="Tokens for the REST API and the dashboard (roles: view, manage).",
    pretty_exceptions_show_locals=False,
)
console = Console()


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="A name that says who or what uses it, e.g. ops-laptop.")],
    role: Annotated[
        Role, typer.Option("--role", help="view: read everything; manage: also replay, pause, sync, stock.")
    ] = Role.VIEW,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print its secret. It is shown this once; store it now."""

    async def work(nexus: Nexus) -> tuple[TokenView, str]:
        return await nexus.tokens.create(name, role)

    view, secret = _with_nexus(config, work)
    if as_json:
        emit_json({**view.as_dict(), "token": secret})
        return
    console.print(f"Created token [bold]{view.name}[/] with role [bold]{view.role.value}[/].")
    console.print("Its secret is shown only now; store it where you keep passwords:")
    typer.echo(secret)


@app.command("list")
def list_(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every token: name, role, the first characters of its secret, when it was last used."""

    async def work(nexus: Nexus) -> list[TokenView]:
        return await nexus.tokens.list()

    views = _with_nexus(config, work)
    if as_json:
        emit_json([view.as_dict() for view in views])
        return
    if not views:
        console.print("No tokens. Create one with `nexus token create NAME --role view|manage`.")
        return
    table = Table("id", "name", "role", "starts with", "created", "last used", "state")

    def when(value: object) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else "-"

    for view in views:
        table.add_row(
            str(view.id),
            view.name,
            view.role.value,
            f"{view.prefix}…",
            when(view.created_at),
            when(view.last_used_at),
            "active" if view.active else f"revoked {when(view.revoked_at)}",
        )
    console.print(table)


@app.command()
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name (or id).")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke a token at once: API calls with it are refused and its dashboard sessions end."""

    async def work(nexus: Nexus) -> TokenView:
        return await nexus.tokens.revoke(name)

    view = _with_nexus(config, work)
    if as_json:
        emit_json(view.as_dict())
        return
    console.print(f"Revoked token {view.name}; its dashboard sessions are signed out.")
