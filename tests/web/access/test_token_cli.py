"""`nexus token create|list|revoke`: the secret is printed once and never again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from nexus.cli.main import app
from nexus.engine import Nexus

runner = CliRunner()


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "nexus.toml"
    path.write_text(f'database_url = "sqlite+aiosqlite:///{tmp_path / "tokens.db"}"\n', encoding="utf-8")
    assert runner.invoke(app, ["migrate", "-c", str(path)]).exit_code == 0
    return path


def authenticate(config: Path, secret: str) -> str | None:
    async def check() -> str | None:
        async with Nexus.from_config(config) as nexus:
            principal = await nexus.tokens.authenticate(secret)
            return None if principal is None else principal.role.value

    return asyncio.run(check())


def test_create_prints_a_working_secret_once_and_list_never_shows_it(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    created = runner.invoke(app, ["token", "create", "ops-laptop", "--role", "manage", "-c", str(config)])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("nxs_")
    assert authenticate(config, secret) == "manage"

    listed = runner.invoke(app, ["token", "list", "-c", str(config)])
    as_json = runner.invoke(app, ["token", "list", "--json", "-c", str(config)])
    assert listed.exit_code == 0 and as_json.exit_code == 0
    assert "ops-laptop" in listed.output and "manage" in listed.output
    assert secret not in listed.output and secret not in as_json.output
    [row] = json.loads(as_json.output)
    assert (row["name"], row["role"], row["active"]) == ("ops-laptop", "manage", True)


def test_revoke_turns_the_token_off_and_mistakes_exit_2(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    made = runner.invoke(app, ["token", "create", "ci", "--json", "-c", str(config)])
    secret = json.loads(made.output)["token"]
    assert authenticate(config, secret) == "view"  # the default role

    assert runner.invoke(app, ["token", "revoke", "ci", "-c", str(config)]).exit_code == 0
    assert authenticate(config, secret) is None

    again = runner.invoke(app, ["token", "create", "ci", "-c", str(config)])
    unknown = runner.invoke(app, ["token", "revoke", "nobody", "-c", str(config)])
    bad_role = runner.invoke(app, ["token", "create", "x", "--role", "admin", "-c", str(config)])
    assert (again.exit_code, unknown.exit_code, bad_role.exit_code) == (2, 2, 2)
    assert "ci" in again.output and "nobody" in unknown.output
