"""The `nexus` command: the exit codes and messages a user sees."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nexus.cli import main as cli
from nexus.cli.main import app
from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.sandbox.shopify import ShopifySandbox
from tests.threaded_server import served_in_thread

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are read whole, not wrapped at a test runner's 80 columns."""
    monkeypatch.setattr(cli, "console", Console(width=200))
    monkeypatch.setattr(cli, "err_console", Console(width=200, stderr=True))


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "nexus.toml"
    path.write_text(f'database_url = "sqlite+aiosqlite:///{tmp_path / "cli.db"}"\n{body}', encoding="utf-8")
    return path


def test_a_bad_config_names_the_key_and_the_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[channels.shop]\ndriver = "shopify"\nrate_limit = { capacity = "lots" }\n',
    )
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 2
    assert "channels.shop.rate_limit.capacity" in result.output
    assert str(config) in result.output.replace("\n", "")


def test_a_missing_credential_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEXUS_TEST_MISSING_TOKEN", raising=False)
    config = write_config(
        tmp_path,
        '[channels.shop]\ndriver = "shopify"\nbase_url = "https://x.myshopify.com"\n'
        'credentials = { access_token = "env:NEXUS_TEST_MISSING_TOKEN", webhook_secret = "s" }\n',
    )
    assert runner.invoke(app, ["migrate", "--config", str(config)]).exit_code == 0
    result = runner.invoke(app, ["import", "shop", "--config", str(config)])
    assert result.exit_code == 2
    assert "NEXUS_TEST_MISSING_TOKEN" in result.output
    assert "channels.shop.credentials.access_token" in result.output.replace("\n", "")


def test_migrate_then_status_shows_every_configured_channel(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[channels.shop]\ndriver = "shopify"\nbase_url = "https://x.myshopify.com"\n'
        'credentials = { access_token = "t", webhook_secret = "s" }\n'
        '[channels.paused]\ndriver = "shopify"\nenabled = false\nbase_url = "https://y.myshopify.com"\n'
        'credentials = { access_token = "t", webhook_secret = "s" }\n',
    )
    assert runner.invoke(app, ["migrate", "--config", str(config)]).exit_code == 0
    result = runner.invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "shop" in result.output and "paused (disabled)" in result.output
    assert "never" in result.output


def test_sync_needs_a_selection(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sync", "--config", str(write_config(tmp_path, ""))])
    assert result.exit_code != 0


@pytest.fixture
def sandbox_store() -> Iterator[tuple[ShopifySandbox, str]]:
    """A Shopify sandbox served over HTTP from its own thread and event loop, because every CLI
    command runs (and closes) an event loop of its own."""
    sandbox = ShopifySandbox()
    sandbox.seed_catalog(30, quantity=10)
    sandbox.add_product("Not in Nexus", [{"sku": "ORPHAN-1", "price": "5.00", "quantity": 2}])
    with served_in_thread(sandbox.app, sandbox.aclose) as base_url:
        yield sandbox, base_url


def test_import_links_by_sku_then_sync_all_pushes_every_listing(
    tmp_path: Path, sandbox_store: tuple[ShopifySandbox, str]
) -> None:
    sandbox, base_url = sandbox_store
    config = write_config(
        tmp_path,
        f'[channels.shop]\ndriver = "shopify"\nbase_url = "{base_url}"\n'
        f'credentials = {{ access_token = "{sandbox.access_token}", webhook_secret = "s" }}\n'
        f'settings = {{ location_id = "{sandbox.location_id}", variants_per_product = 5 }}\n',
    )
    assert runner.invoke(app, ["migrate", "--config", str(config)]).exit_code == 0
    stock = {f"SKU-{i:06d}": i for i in range(1, 31)}

    async def create_items() -> None:
        async with Nexus.from_config(config) as nexus:
            await nexus.add_items(ItemSpec(sku, on_hand=quantity) for sku, quantity in stock.items())

    asyncio.run(create_items())

    imported = runner.invoke(app, ["import", "shop", "--config", str(config)])
    assert imported.exit_code == 0, imported.output
    assert "30 newly linked" in imported.output and "1 unmatched" in imported.output
    assert "ORPHAN-1" in imported.output

    synced = runner.invoke(app, ["sync", "--all", "--config", str(config)])
    assert synced.exit_code == 0, synced.output
    assert "30 pushed, 0 failed" in synced.output
    assert sandbox.levels() == {**stock, "ORPHAN-1": 2}

    status = runner.invoke(app, ["status", "--config", str(config)])
    assert status.exit_code == 0
    row = next(line for line in status.output.splitlines() if "shop" in line)
    assert [cell.strip() for cell in row.split("│")[2:7]] == ["shopify", "30", "0", "0", "0"]


@pytest.mark.parametrize(
    ("channel", "key"),
    [
        (
            'driver = "shopify"\nbase_url = "https://x.myshopify.com"\n'
            'credentials = { access_token = "env:NEXUS_TEST_MISSING_TOKEN", webhook_secret = "s" }\n',
            "channels.shop.credentials.access_token",
        ),
        (
            'driver = "amazon"\nbase_url = "https://sellingpartnerapi-na.amazon.com"\n'
            'credentials = { client_id = "i", client_secret = "s", refresh_token = "r" }\n'
            'settings = { marketplace_ids = ["ATVPDKIKX0DER"] }\n',
            "channels.shop.settings.seller_id",
        ),
        (
            'driver = "woocommerce"\nbase_url = "https://shop.example.com"\n'
            'credentials = { consumer_key = "ck", consumer_secret = "literal-SECRET-4711" }\n'
            'settings = { auth = "oauth" }\n',
            "channels.shop.settings.auth",
        ),
    ],
    ids=["missing-credential", "driver-setting", "bad-setting"],
)
@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_process_refuses_to_start_with_a_channel_it_cannot_build(
    tmp_path: Path, channel: str, key: str, command: str
) -> None:
    # Not a healthy-looking process that fails every webhook and poll: one line, exit 2.
    config = write_config(tmp_path, f"[channels.shop]\n{channel}")
    environment = {k: v for k, v in os.environ.items() if k != "NEXUS_TEST_MISSING_TOKEN"}
    nexus = str(Path(sys.executable).with_name("nexus"))
    arguments = [nexus, command, "--config", str(config)] + (["--port", "0"] if command == "serve" else [])
    result = subprocess.run(arguments, capture_output=True, text=True, timeout=60, env=environment)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert key in lines[0] and str(config) in lines[0]
    assert "literal-SECRET-4711" not in result.stderr + result.stdout


def test_a_worker_with_a_missing_credential_exits_within_a_second(tmp_path: Path) -> None:
    # Measured against the same command's --help, which pays the same interpreter start and imports.
    config = write_config(
        tmp_path,
        '[channels.shop]\ndriver = "shopify"\nbase_url = "https://x.myshopify.com"\n'
        'credentials = { access_token = "env:NEXUS_TEST_MISSING_TOKEN",'
        ' webhook_secret = "literal-SECRET-4711" }\n',
    )
    environment = {k: v for k, v in os.environ.items() if k != "NEXUS_TEST_MISSING_TOKEN"}
    nexus = str(Path(sys.executable).with_name("nexus"))

    def timed(*arguments: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        started = time.perf_counter()
        result = subprocess.run(
            [nexus, *arguments], capture_output=True, text=True, timeout=60, env=environment
        )
        return time.perf_counter() - started, result

    # Interleaved, fastest of three each: a loaded machine slows both alike.
    runs = [(timed("worker", "--help")[0], timed("worker", "--config", str(config))) for _ in range(3)]
    baseline = min(help_time for help_time, _ in runs)
    elapsed, result = min((run for _, run in runs), key=lambda run: run[0])
    assert result.returncode == 2
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "channels.shop.credentials.access_token" in line and str(config) in line
    assert "NEXUS_TEST_MISSING_TOKEN" in line and "literal-SECRET-4711" not in line
    assert elapsed < baseline + 1.0, (elapsed, baseline)
