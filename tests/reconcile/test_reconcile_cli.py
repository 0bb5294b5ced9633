"""`nexus reconcile` and `nexus conflicts`: what a person sees and the exit codes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from tests.threaded_server import served_in_thread
from typer.testing import CliRunner

from nexus.channels.rest import RestDriver
from nexus.cli import main as cli
from nexus.cli.main import app
from nexus.domain.catalog import ItemSpec
from nexus.drivers.contract import ChannelContext
from nexus.engine import Nexus
from nexus.sandbox.shopify import ShopifySandbox

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=200))
    monkeypatch.setattr(cli, "err_console", Console(width=200, stderr=True))


@pytest.fixture
def store() -> Iterator[tuple[ShopifySandbox, str]]:
    """Served from its own thread and loop: every CLI command runs (and closes) a loop of its own."""
    sandbox = ShopifySandbox()
    sandbox.seed_catalog(3, quantity=10)
    with served_in_thread(sandbox.app, sandbox.aclose) as base_url:
        yield sandbox, base_url


def configure(tmp_path: Path, sandbox: ShopifySandbox, base_url: str, policy: str) -> Path:
    config = tmp_path / "nexus.toml"
    config.write_text(
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "cli.db"}"\n'
        f'[channels.shop]\ndriver = "shopify"\nbase_url = "{base_url}"\n'
        f'credentials = {{ access_token = "{sandbox.access_token}", webhook_secret = "s" }}\n'
        f'settings = {{ location_id = "{sandbox.location_id}" }}\n'
        f'reconcile = {{ policy = "{policy}" }}\n'
        '[channels.pos]\ndriver = "rest"\nbase_url = "https://pos.invalid"\n'
        'credentials = { token = "t" }\n'
        'settings = { list_url = "/items", push_url = "/items" }\n',
        encoding="utf-8",
    )
    assert runner.invoke(app, ["migrate", "--config", str(config)]).exit_code == 0

    async def link() -> None:
        async with Nexus.from_config(config) as nexus:
            await nexus.add_items(ItemSpec(sku, on_hand=10) for sku in sandbox.levels())
            await nexus.import_channel("shop")
            worker = nexus.push_worker("shop")
            while await worker.run_once() is not None:
                pass

    asyncio.run(link())
    return config


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_dry_run_reports_then_reconcile_fixes(tmp_path: Path, store: tuple[ShopifySandbox, str]) -> None:
    sandbox, base_url = store
    config = str(configure(tmp_path, sandbox, base_url, "nexus_wins"))
    asyncio.run(sandbox.set_available("SKU-000002", 42))  # nobody subscribed: no webhook

    code, output = run("reconcile", "--dry-run", "--channel", "shop", "--config", config)
    assert code == 0, output
    assert "SKU-000002" in output and "42" in output and "1 listings differ (dry run" in output
    code, output = run("reconcile", "--dry-run", "--json", "--channel", "shop", "--config", config)
    assert [(d["sku"], d["believed"], d["observed"], d["finding"]) for d in json.loads(output)] == [
        ("SKU-000002", 10, 42, "pushed")
    ]
    assert sandbox.available("SKU-000002") == 42

    code, output = run("reconcile", "--channel", "shop", "--config", config)
    assert code == 0, output
    assert sandbox.available("SKU-000002") == 10
    assert (
        "shows what Nexus believes"
        in run("reconcile", "--channel", "shop", "--dry-run", "--config", config)[1]
    )


def test_a_channel_that_cannot_read_levels_is_refused(
    tmp_path: Path, store: tuple[ShopifySandbox, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every built-in driver reads levels; a third-party one may not declare it. The REST driver
    # stands in for one here, its declaration taken away.
    built = RestDriver.__init__

    def without_reads(self: RestDriver, ctx: ChannelContext) -> None:
        built(self, ctx)
        self.capabilities = dataclasses.replace(self.capabilities, reads_levels=False)

    monkeypatch.setattr(RestDriver, "__init__", without_reads)
    sandbox, base_url = store
    config = str(configure(tmp_path, sandbox, base_url, "nexus_wins"))
    code, output = run("reconcile", "--channel", "pos", "--config", config)
    assert code == 2 and "cannot read levels back on: pos" in output


def test_review_conflicts_are_listed_and_settled(tmp_path: Path, store: tuple[ShopifySandbox, str]) -> None:
    sandbox, base_url = store
    config = str(configure(tmp_path, sandbox, base_url, "review"))
    asyncio.run(sandbox.set_available("SKU-000003", 25))
    assert run("reconcile", "--channel", "shop", "--config", config)[0] == 0
    assert sandbox.available("SKU-000003") == 25  # review: nothing moves

    code, output = run("conflicts", "--json", "--config", config)
    listed = json.loads(output)
    assert [(c["sku"], c["believed"], c["observed"], c["desired"]) for c in listed] == [
        ("SKU-000003", 10, 25, 10)
    ]
    code, output = run("conflicts", "--config", config)
    assert code == 0
    row = next(line for line in output.splitlines() if "SKU-000003" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[1:6] == ["shop", "SKU-000003", "10", "25", "10"]

    code, output = run("conflicts", "resolve", cells[0], "--take", "channel", "--config", config)
    assert code == 0 and "booked +15 on SKU-000003" in output, output
    assert "No open conflicts." in run("conflicts", "--config", config)[1]
    code, output = run("conflicts", "resolve", cells[0], "--take", "channel", "--config", config)
    assert code == 2 and f"no open conflict {cells[0]}" in output


def test_sync_refuses_a_paused_channel_instead_of_waiting_for_ever(
    tmp_path: Path, store: tuple[ShopifySandbox, str]
) -> None:
    sandbox, base_url = store
    config = str(configure(tmp_path, sandbox, base_url, "nexus_wins"))
    assert run("channels", "pause", "shop", "--config", config)[0] == 0
    code, output = run("sync", "--all", "--channel", "shop", "--config", config)
    assert code == 2 and "shop is paused" in output


def test_sync_stops_when_the_channel_disconnects_under_it(
    tmp_path: Path, store: tuple[ShopifySandbox, str]
) -> None:
    sandbox, base_url = store
    config = str(configure(tmp_path, sandbox, base_url, "nexus_wins"))
    sandbox.revoke_token()
    code, output = run("sync", "--all", "--channel", "shop", "--config", config)
    assert code == 1, output
    assert "shop is disconnected" in output and "is left queued" in output


def test_status_shows_each_channel_state_and_speaks_json(
    tmp_path: Path, store: tuple[ShopifySandbox, str]
) -> None:
    import json

    sandbox, base_url = store
    config = str(configure(tmp_path, sandbox, base_url, "nexus_wins"))
    assert run("channels", "pause", "shop", "--config", config)[0] == 0
    code, output = run("status", "--json", "--config", config)
    assert code == 0
    states = {row["channel"]: row["state"] for row in json.loads(output)}
    assert states == {"shop": "paused", "pos": "connected"}
    assert "paused" in run("status", "--config", config)[1]
