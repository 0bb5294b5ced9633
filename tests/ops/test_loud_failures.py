"""Issue 11 point 4: failures a user sees as one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nexus.cli import main as cli
from nexus.cli.main import app
from nexus.config import anchor_sqlite_path, load_settings
from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.errors import AddressInUseError, InvalidArgumentError, NexusError
from nexus.sandbox.demo import print_commands, sale_command
from nexus.web.server import serve_app

runner = CliRunner()
SHOP = (
    '[channels.shop]\ndriver = "shopify"\nbase_url = "https://x.myshopify.com"\n'
    'credentials = { access_token = "t", webhook_secret = "s" }\n'
    'settings = { location_id = "1" }\n'
)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=200))
    monkeypatch.setattr(cli, "err_console", Console(width=200, stderr=True))


def write_config(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "nexus.toml"
    path.write_text(f'database_url = "sqlite+aiosqlite:///{tmp_path / "cli.db"}"\n{body}', encoding="utf-8")
    return path


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_sync_names_unknown_and_unlinked_skus_and_unknown_channels(tmp_path: Path) -> None:
    config = write_config(tmp_path, SHOP)
    assert runner.invoke(app, ["migrate", "--config", str(config)]).exit_code == 0

    async def items() -> None:
        async with Nexus.from_config(config) as nexus:
            await nexus.add_items([ItemSpec("UNLINKED-1", on_hand=3)])

    asyncio.run(items())
    result = runner.invoke(app, ["sync", "--sku", "DOES-NOT-EXIST", "--sku", "UNLINKED-1", "-c", str(config)])
    assert result.exit_code == 2
    line = one_line(result.output)
    assert "unknown SKU DOES-NOT-EXIST" in line and "UNLINKED-1 not linked to shop" in line

    result = runner.invoke(app, ["sync", "--all", "--channel", "nope", "-c", str(config)])
    assert result.exit_code == 2
    assert "unknown channel nope" in one_line(result.output)


def test_a_command_before_migrate_says_run_migrate(tmp_path: Path) -> None:
    config = write_config(tmp_path, SHOP)
    for command in (["status"], ["dlq", "list"], ["webhooks", "list"], ["batches", "list"]):
        result = runner.invoke(app, [*command, "--config", str(config)])
        assert result.exit_code == 2, result.output
        assert "run `nexus migrate`" in one_line(result.output)
    assert runner.invoke(app, ["migrate", "--config", str(config)]).exit_code == 0
    assert runner.invoke(app, ["status", "--config", str(config)]).exit_code == 0


def test_an_older_schema_says_run_migrate(tmp_path: Path) -> None:
    config = write_config(tmp_path)

    async def old_schema() -> None:
        from nexus.storage.migrate import upgrade

        async with Nexus.from_config(config) as nexus:
            await upgrade(nexus.db, "0001")

    asyncio.run(old_schema())
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 2
    line = one_line(result.output)
    assert "at schema revision 0001" in line and "run `nexus migrate`" in line


def test_a_relative_sqlite_path_in_the_file_is_the_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEXUS_DATABASE_URL", raising=False)
    folder = tmp_path / "etc"
    folder.mkdir()
    config = folder / "nexus.toml"
    config.write_text('database_url = "sqlite+aiosqlite:///data/nexus.db"\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings, _ = load_settings(config)
    assert settings.database_url == f"sqlite+aiosqlite:///{(folder / 'data' / 'nexus.db').as_posix()}"
    # An explicit override and the environment are taken as given.
    settings, _ = load_settings(config, overrides={"database_url": "sqlite+aiosqlite:///here.db"})
    assert settings.database_url == "sqlite+aiosqlite:///here.db"
    monkeypatch.setenv("NEXUS_DATABASE_URL", "sqlite+aiosqlite:///env.db")
    assert load_settings(config)[0].database_url == "sqlite+aiosqlite:///env.db"
    # Absolute paths, memory and other databases are left alone.
    for url in (
        "sqlite+aiosqlite:////var/lib/nexus.db",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://u:p@h/db",
    ):
        assert anchor_sqlite_path(url, folder) == url
    assert anchor_sqlite_path("sqlite+aiosqlite:///x.db?timeout=5", folder).endswith("/etc/x.db?timeout=5")


def test_serve_without_a_configuration_file_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEXUS_CONFIG", raising=False)
    monkeypatch.delenv("NEXUS_CHANNELS", raising=False)
    result = runner.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "no configuration file" in one_line(result.output)


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def bind() -> None:
            async with serve_app(lambda *a: None, port=port):  # type: ignore[arg-type]
                pass

        with pytest.raises(AddressInUseError, match=f"port {port}"):
            asyncio.run(bind())
        result = runner.invoke(app, ["serve", "--port", str(port), "--config", str(config)])
    assert result.exit_code == 2
    assert "already in use" in one_line(result.output)


async def test_adjust_with_an_unknown_reason_lists_the_valid_ones(make_nexus: object) -> None:
    nexus = await make_nexus()  # type: ignore[operator]
    with pytest.raises(InvalidArgumentError) as raised:
        nexus.product("SKU-1").adjust(1, reason="correction")
    message = str(raised.value)
    assert isinstance(raised.value, NexusError) and isinstance(raised.value, ValueError)
    assert "'correction'" in message
    for reason in (
        "sale",
        "restock",
        "adjustment",
        "reservation",
        "release",
        "channel_adjustment",
        "reconcile",
    ):
        assert reason in message
    with pytest.raises(InvalidArgumentError):
        nexus.product("SKU-1").update_inventory(quantity=3, reason="oops")
    nexus.product("SKU-1").adjust(1, reason="restock")  # a valid one is taken (not applied: not awaited)


def test_the_demo_sale_line_does_not_wrap_at_80_columns() -> None:
    out = io.StringIO()
    console = Console(width=80, file=out, force_terminal=False)
    command = sale_command("http://127.0.0.1:54321", "SKU-000001")
    print_commands(console, f"\nSell something on shopify:\n  {command}")
    assert f"  {command}" in out.getvalue().splitlines()
    assert len(command) > 80
