"""`nexus webhooks list|show|reprocess` and `nexus batches list|show|retry-failed` (issue 11 point 6)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from nexus.cli import batches as batches_cli
from nexus.cli import main as cli
from nexus.cli import webhooks as webhooks_cli
from nexus.cli.main import app
from nexus.domain.vocabulary import WebhookStatus
from nexus.drivers.contract import ListingRef, SaleEvent
from nexus.engine import Nexus
from nexus.errors import TerminalChannelError
from nexus.storage.models import WebhookLog
from nexus.testing import MemoryChannel
from nexus.webhooks.log import WebhookFilter, list_webhooks, reprocess_webhooks, show_webhook
from nexus.webhooks.processor import WebhookProcessor
from tests.sync.sync_kit import DEFAULTS, Engine

runner = CliRunner()


def wide(monkeypatch: Any) -> None:
    for module in (cli, webhooks_cli, batches_cli):
        monkeypatch.setattr(module, "console", Console(width=200))
    monkeypatch.setattr(cli, "err_console", Console(width=200, stderr=True))


async def store(nexus: Nexus, channel: str, request: Any, status: str = WebhookStatus.RECEIVED) -> int:
    async with nexus.db.transaction() as session:
        row = WebhookLog(
            channel=channel,
            topic="stock",
            status=status,
            http_status=200 if status != WebhookStatus.REJECTED else 401,
            verified=status != WebhookStatus.REJECTED,
            headers=dict(request.headers),
            body=request.body,
        )
        session.add(row)
        await session.flush()
        return row.id


async def test_reprocessing_a_stored_sale_books_it_once(make_engine: Callable[..., Any]) -> None:
    engine: Engine = await make_engine()
    nexus = engine.nexus
    await engine.seed({"SKU-1": 10})
    shop = engine.driver("m")
    request = shop.webhook(SaleEvent(ListingRef(remote_id="m-SKU-1"), 2, "order-1", "1"))
    log_id = await store(nexus, "m", request)
    await WebhookProcessor(nexus).process(log_id)
    assert await engine.on_hand("SKU-1") == 8

    result = await reprocess_webhooks(nexus, [log_id])
    assert result.statuses == {log_id: "processed"}
    assert await engine.on_hand("SKU-1") == 8  # the sale is keyed: not booked twice

    detail = await show_webhook(nexus.db, log_id, body_limit=10)
    assert detail.headers["x-memory-signature"] == "***"
    assert detail.truncated and len(detail.body) == 10
    assert detail.delivery.attempts == 1 and detail.delivery.status == "processed"
    page = await list_webhooks(nexus.db, WebhookFilter(channel="m", status=WebhookStatus.PROCESSED))
    assert [item.id for item in page.items] == [log_id]
    assert (await list_webhooks(nexus.db, WebhookFilter(channel="n"))).total == 0


def seeded_config(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """Channel `m` (MemoryChannel, registered by the seeding engine); one stored sale delivery
    (processed), one rejected delivery; a batch of A, B whose push of A is refused for good."""
    path = tmp_path / "nexus.toml"
    path.write_text(
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "ops.db"}"\n[worker]\nbackoff_base = 0.0\n'
        '[channels.m]\ndriver = "mem"\n',
        encoding="utf-8",
    )
    assert runner.invoke(app, ["migrate", "--config", str(path)]).exit_code == 0
    ids: dict[str, Any] = {}

    async def seed() -> None:
        nexus = Nexus.from_config(path)
        factory = MemoryChannel.factory(**DEFAULTS)
        nexus.extend("mem", factory)
        engine = Engine(nexus, factory.channels)
        async with nexus:
            await engine.seed({"A": 5, "B": 5})
            shop = engine.driver("m")
            sale = shop.webhook(SaleEvent(ListingRef(remote_id="m-B"), 1, "order-9", "1"))
            ids["sale"] = await store(nexus, "m", sale)
            await WebhookProcessor(nexus).process(ids["sale"])
            ids["rejected"] = await store(nexus, "m", sale, WebhookStatus.REJECTED)
            shop.fail_listing(TerminalChannelError("404 not found", status=404), sku="A")
            ids["batch"] = await nexus.catalog(["A", "B"]).sync_all()
            worker = nexus.push_worker("m")
            while await worker.run_once() is not None:
                pass

    asyncio.run(seed())
    return path, ids


def test_the_commands_list_show_and_work(tmp_path: Path, monkeypatch: Any) -> None:
    wide(monkeypatch)
    config, ids = seeded_config(tmp_path)
    c = ["--config", str(config)]

    listed = runner.invoke(app, ["webhooks", "list", "--json", *c])
    assert listed.exit_code == 0, listed.output
    page = json.loads(listed.stdout)
    assert {item["id"]: item["status"] for item in page["items"]} == {
        ids["sale"]: "processed",
        ids["rejected"]: "rejected",
    }
    only = json.loads(runner.invoke(app, ["webhooks", "list", "--status", "rejected", "--json", *c]).stdout)
    assert [item["id"] for item in only["items"]] == [ids["rejected"]]
    recent = runner.invoke(
        app, ["webhooks", "list", "--since", "1h", "--topic", "stock", "--channel", "m", *c]
    )
    assert recent.exit_code == 0 and "processed" in recent.output
    shown = json.loads(runner.invoke(app, ["webhooks", "show", str(ids["sale"]), "--json", *c]).stdout)
    assert shown["headers"]["x-memory-signature"] == "***" and "order-9" in shown["body"]
    table = runner.invoke(app, ["webhooks", "show", str(ids["sale"]), *c])
    assert table.exit_code == 0 and "***" in table.output

    batches = json.loads(runner.invoke(app, ["batches", "list", "--json", *c]).stdout)
    [batch] = batches["items"]
    assert (batch["id"], batch["total"], batch["processed"], batch["failed"]) == (ids["batch"], 2, 1, 1)
    assert ids["batch"] in runner.invoke(app, ["batches", "list", *c]).output
    detail = json.loads(runner.invoke(app, ["batches", "show", ids["batch"], "--json", *c]).stdout)
    assert [letter["sku"] for letter in detail["dead_letters"]["items"]] == ["A"]
    assert detail["push_requests"]["requests"] >= 1
    assert "retry-failed" in runner.invoke(app, ["batches", "show", ids["batch"], *c]).output

    retried = runner.invoke(app, ["batches", "retry-failed", ids["batch"], "--json", *c])
    assert retried.exit_code == 0, retried.output
    letters = json.loads(retried.stdout)["replaying"]
    assert len(letters) == 1
    state = json.loads(runner.invoke(app, ["dlq", "show", str(letters[0]), "--json", *c]).stdout)
    assert state["status"] == "replaying" and state["listing"]["dirty"] and not state["listing"]["failed"]
    again = runner.invoke(app, ["batches", "retry-failed", ids["batch"], *c])
    assert again.exit_code == 0 and "nothing to retry" in again.output


def test_failures_are_one_line_and_non_zero(tmp_path: Path, monkeypatch: Any) -> None:
    wide(monkeypatch)
    config, ids = seeded_config(tmp_path)
    c = ["--config", str(config)]
    for command, expected in (
        (["webhooks", "show", "999"], "no webhook delivery 999"),
        (["webhooks", "reprocess", "999"], "no webhook delivery 999"),
        (["webhooks", "list", "--status", "odd"], "--status 'odd'"),
        (["webhooks", "list", "--since", "soon"], "--since 'soon'"),
        (["batches", "show", "nope"], "no batch nope"),
        (["batches", "retry-failed", "nope"], "no batch nope"),
    ):
        result = runner.invoke(app, [*command, *c])
        assert result.exit_code == 2, (command, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], (command, result.output)
    rejected = runner.invoke(app, ["webhooks", "reprocess", str(ids["rejected"]), *c])
    assert rejected.exit_code == 2
    assert "rejected at the door" in "".join(rejected.output.splitlines())
    # This process has no `mem` driver: the channel that cannot be built is named, nothing changes.
    unbuilt = runner.invoke(app, ["webhooks", "reprocess", str(ids["sale"]), *c])
    assert unbuilt.exit_code == 2 and "no driver named 'mem'" in unbuilt.output
    shown = json.loads(runner.invoke(app, ["webhooks", "show", str(ids["sale"]), "--json", *c]).stdout)
    assert shown["status"] == "processed"
