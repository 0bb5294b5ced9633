"""The `nexus` command: the exit codes and messages a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nexus.cli import main as cli
from nexus.cli.main import app

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
