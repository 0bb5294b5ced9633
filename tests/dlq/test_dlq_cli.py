"""`nexus dlq list|show|replay|resolve`: tables, `--json` a script can parse, one-line failures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nexus.cli import dlq
from nexus.cli import main as cli
from nexus.cli.main import app
from nexus.engine import Nexus
from nexus.errors import TerminalChannelError
from nexus.testing import MemoryChannel
from tests.sync.sync_kit import DEFAULTS, Engine

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are read whole, not wrapped at a test runner's 80 columns."""
    for module in (cli, dlq):
        monkeypatch.setattr(module, "console", Console(width=200))
        monkeypatch.setattr(module, "err_console", Console(width=200, stderr=True))


def engine_for(config: Path) -> Engine:
    nexus = Nexus.from_config(config)
    factory = MemoryChannel.factory(**DEFAULTS)
    nexus.extend("mem", factory)
    return Engine(nexus, factory.channels)


async def push_all(engine: Engine) -> None:
    for name in engine.nexus.channel_names():
        worker = engine.nexus.push_worker(name)
        while await worker.run_once() is not None:
            pass


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Channels `m` and `n` (MemoryChannel, registered by the test's own engines); three dead
    letters: A (404) and B (422) on `m`, C (404) on `n`, each after a sale (9 sent)."""
    path = tmp_path / "nexus.toml"
    path.write_text(
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "cli.db"}"\n'
        "[worker]\nbackoff_base = 0.0\n"
        '[channels.m]\ndriver = "mem"\n[channels.n]\ndriver = "mem"\n',
        encoding="utf-8",
    )
    assert runner.invoke(app, ["migrate", "--config", str(path)]).exit_code == 0

    async def seed() -> None:
        engine = engine_for(path)
        async with engine.nexus:
            await engine.seed({"A": 10, "B": 10, "C": 10}, channels=("m", "n"))
            for sku, channel, error in (
                ("A", "m", "404 not found"),
                ("B", "m", "422 invalid"),
                ("C", "n", "404 not found"),
            ):
                engine.driver(channel).fail_listing(TerminalChannelError(error, status=400), sku=sku)
                await engine.nexus.product(sku).adjust(-1)
                await push_all(engine)

    asyncio.run(seed())
    return path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def listed(config: Path, *args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["dlq", "list", "--json", "--config", str(config), *args])
    assert result.exit_code == 0, result.output
    items: list[dict[str, object]] = json.loads(result.stdout)["items"]
    return items


def dead_letters_in_status(config: Path) -> dict[str, str]:
    code, output = run("status", "--config", str(config))
    assert code == 0, output
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] in ("m", "n"):
            rows[cells[0]] = cells[6]
    return rows


def test_list_shows_a_table_and_json_with_filters(config: Path) -> None:
    code, output = run("dlq", "list", "--config", str(config))
    assert code == 0, output
    rows = [line for line in output.splitlines() if "404 not found" in line or "422 invalid" in line]
    assert len(rows) == 3
    assert "1-3 of 3 dead letters" in output

    items = listed(config)
    assert [(i["channel"], i["sku"], i["status"], i["quantity"]) for i in items] == [
        ("n", "C", "failed", 9),
        ("m", "B", "failed", 9),
        ("m", "A", "failed", 9),
    ]
    assert [i["sku"] for i in listed(config, "--channel", "m", "--error", "404")] == ["A"]
    assert [i["sku"] for i in listed(config, "--sku", "B")] == ["B"]
    assert listed(config, "--older-than", "1h") == []
    assert listed(config, "--status", "resolved") == []
    page = json.loads(runner.invoke(app, ["dlq", "list", "--json", "--limit", "2", "-c", str(config)]).stdout)
    assert (page["total"], page["next_offset"], len(page["items"])) == (3, 2, 2)


def test_show_prints_the_letter_the_history_and_the_listing_now(config: Path) -> None:
    [letter] = listed(config, "--sku", "A")
    code, output = run("dlq", "show", str(letter["id"]), "--config", str(config))
    assert code == 0, output
    assert "404 not found" in output and "desired now" in output and "History" in output
    result = runner.invoke(app, ["dlq", "show", str(letter["id"]), "--json", "--config", str(config)])
    detail = json.loads(result.stdout)
    assert detail["payload"]["quantity"] == 9 and detail["listing"]["desired"] == 9
    assert [(h["from_status"], h["status"]) for h in detail["history"]] == [(None, "failed")]


def test_replay_by_id_pushes_the_current_level_and_clears_the_counts(config: Path) -> None:
    [letter] = listed(config, "--sku", "A")
    assert dead_letters_in_status(config) == {"m": "2", "n": "1"}

    async def sell_more() -> None:
        engine = engine_for(config)
        async with engine.nexus:
            await engine.nexus.product("A").adjust(-4)  # 5 now; the dead letter sent 9

    asyncio.run(sell_more())
    code, output = run("dlq", "replay", str(letter["id"]), "--config", str(config))
    assert code == 0 and "Replaying 1 dead letters" in output, output
    assert dead_letters_in_status(config) == {"m": "1", "n": "1"}
    assert [i["status"] for i in listed(config, "--sku", "A")] == ["replaying"]

    async def push() -> list[tuple[str, int]]:
        engine = engine_for(config)
        async with engine.nexus:
            await engine.nexus.push_worker("m").run_once()
            return [(u.sku, u.quantity) for u in engine.driver("m").pushed]

    assert ("A", 5) in asyncio.run(push()) and ("A", 9) not in asyncio.run(push())
    assert [i["status"] for i in listed(config, "--sku", "A", "--status", "all")] == ["resolved"]


def test_replay_by_filter_and_as_json(config: Path) -> None:
    result = runner.invoke(
        app, ["dlq", "replay", "--channel", "m", "--error", "422", "--json", "-c", str(config)]
    )
    assert result.exit_code == 0, result.output
    replayed = json.loads(result.stdout)
    [b] = listed(config, "--sku", "B")
    assert replayed == {"replaying": [b["id"]], "gone": [], "channels": ["m"]}
    code, output = run("dlq", "replay", "--channel", "m", "--error", "422", "--config", str(config))
    assert code == 0 and "nothing replayed" in output


def test_resolve_clears_the_counts(config: Path) -> None:
    ids = sorted(str(i["id"]) for i in listed(config, "--channel", "m"))
    code, output = run("dlq", "resolve", *ids, "--note", "discontinued", "--config", str(config))
    assert code == 0 and f"Resolved {', '.join(ids)}." in output, output
    assert dead_letters_in_status(config) == {"m": "0", "n": "1"}
    assert listed(config, "--channel", "m") == []
    result = runner.invoke(app, ["dlq", "resolve", ids[0], "--json", "--config", str(config)])
    assert json.loads(result.stdout) == {"resolved": [], "already": [int(ids[0])]}
    detail = json.loads(runner.invoke(app, ["dlq", "show", ids[0], "--json", "-c", str(config)]).stdout)
    assert detail["history"][-1]["reason"] == "discontinued" and detail["history"][-1]["actor"] == "cli"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "999"], "no dead letter 999"),
        (["resolve", "998", "999"], "no dead letter 998, 999"),
        (["replay", "999"], "no dead letter 999"),
        (["replay"], "give dead letter ids or a filter"),
        (["replay", "1", "--channel", "m"], "not both"),
        (["list", "--older-than", "soon"], "--older-than 'soon'"),
        (["list", "--status", "stuck"], "--status 'stuck'"),
    ],
)
def test_failures_exit_2_with_one_line(config: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["dlq", *args, "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
