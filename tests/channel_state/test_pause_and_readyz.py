"""Pausing and resuming at run time across processes sharing one database, `nexus channels
pause|resume`, the sandbox's credentials control, and /nexus/readyz failing when it must."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from nexus.cli.main import app
from nexus.config import NexusSettings
from nexus.engine import Nexus
from nexus.events import ChannelPaused, ChannelResumed
from nexus.runtime import running
from nexus.sandbox.shopify import ShopifySandbox
from nexus.web import create_app
from tests.sync.sync_kit import Engine, register

runner = CliRunner()


async def test_a_pause_in_one_instance_stops_the_workers_of_another(
    make_settings: Callable[..., NexusSettings],
) -> None:
    settings = make_settings(
        channels={"m": {"driver": "mem"}}, worker={"poll_interval": 0.05, "state_ttl": 0.1}
    )
    worker_side, operator = Nexus(settings), Nexus(settings)
    try:
        await worker_side.migrate()
        engine = Engine(worker_side, register(worker_side))
        register(operator)
        await engine.seed({"S": 10})
        seen: list[object] = []
        operator.events.listen(ChannelPaused, seen.append)
        operator.events.listen(ChannelResumed, seen.append)
        async with running(worker_side, web=False):
            paused = await operator.channel_states.pause("m", reason="stock take", actor="test")
            assert (paused.state.value, paused.pause_reason, paused.paused_by) == (
                "paused",
                "stock take",
                "test",
            )
            await asyncio.sleep(0.3)  # past the worker side's copy of the state
            await operator.product("S").adjust(-3)  # a sale booked while paused
            await asyncio.sleep(0.5)
            listing = await engine.listing("S")
            assert listing.dirty_since is not None and engine.driver().levels["m-S"] == 10
            assert (await worker_side.channel_states.get("m")).state.value == "paused"

            await operator.channel_states.resume("m", actor="test")
            for _ in range(100):
                if engine.driver().levels["m-S"] == 7 and (await engine.listing("S")).dirty_since is None:
                    break
                await asyncio.sleep(0.05)
            assert engine.driver().levels["m-S"] == 7
            assert (await engine.listing("S")).dirty_since is None
        assert [type(e) for e in seen] == [ChannelPaused, ChannelResumed]
    finally:
        await worker_side.aclose()
        await operator.aclose()


def test_nexus_channels_pause_and_resume(tmp_path: Path) -> None:
    config = tmp_path / "nexus.toml"
    config.write_text(
        f'database_url = "sqlite+aiosqlite:///{tmp_path / "cli.db"}"\n[channels.m]\ndriver = "mem"\n',
        encoding="utf-8",
    )
    assert runner.invoke(app, ["migrate", "--config", str(config)]).exit_code == 0

    def channels(*args: str) -> Any:
        result = runner.invoke(app, ["channels", *args, "--config", str(config), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert [(r["channel"], r["driver"], r["state"]) for r in channels()] == [("m", "mem", "connected")]
    paused = channels("pause", "m", "--reason", "stock take")
    assert (paused["state"], paused["pause_reason"], paused["paused_by"]) == ("paused", "stock take", "cli")
    [row] = channels()
    assert row["state"] == "paused" and row["since"] is not None
    table = runner.invoke(app, ["channels", "--config", str(config)])
    assert table.exit_code == 0 and "paused" in table.output
    assert channels("resume", "m")["state"] == "connected"
    unknown = runner.invoke(app, ["channels", "pause", "nope", "--config", str(config)])
    assert unknown.exit_code == 2 and "no channel named 'nope'" in unknown.output
    assert len(unknown.output.strip().splitlines()) <= 2


async def readyz(nexus: Nexus) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(nexus))
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus") as client:
        return await client.get("/nexus/readyz")


async def test_readyz_reports_each_channel_and_fails_for_one_that_cannot_be_built(
    make_nexus: Callable[..., Any],
) -> None:
    nexus: Nexus = await make_nexus(channels={"m": {"driver": "mem"}, "broken": {"driver": "nope"}})
    register(nexus)
    answer = await readyz(nexus)
    assert answer.status_code == 503
    body = answer.json()
    assert body["failing"] == ["channel broken"] and body["database"] == "ok"
    assert "nope" in body["channels"]["broken"]["error"]
    assert body["channels"]["m"]["state"] == "connected"

    fine: Nexus = await make_nexus(channels={"m": {"driver": "mem"}})
    register(fine)
    await fine.channel_states.pause("m", actor="test")
    answer = await readyz(fine)
    assert answer.status_code == 200 and answer.json()["channels"]["m"]["state"] == "paused"


async def test_readyz_fails_when_the_database_is_unreachable() -> None:
    settings = NexusSettings(
        database_url="postgresql+asyncpg://nexus@127.0.0.1:1/nexus", channels={"m": {"driver": "mem"}}
    )
    async with Nexus(settings) as nexus:
        register(nexus)
        answer = await readyz(nexus)
    assert answer.status_code == 503
    assert answer.json()["failing"] == ["database"] and answer.json()["status"] == "error"


async def test_the_shopify_sandbox_breaks_and_fixes_its_credentials() -> None:
    sandbox = ShopifySandbox()
    sandbox.seed_catalog(1)
    transport = httpx.ASGITransport(app=sandbox.app)
    query = {"query": "{ shop { name } }"}
    headers = {"X-Shopify-Access-Token": sandbox.access_token}
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        graphql = f"/admin/api/{sandbox.api_version}/graphql.json"
        assert (await client.post(graphql, json=query, headers=headers)).status_code == 200
        answer = await client.post("/_sandbox/credentials", json={"valid": False})
        assert answer.status_code == 200 and "X-Nexus-Sandbox" in answer.headers
        assert (await client.post(graphql, json=query, headers=headers)).status_code == 401
        assert (await client.post("/_sandbox/credentials", json={"valid": "no"})).status_code == 400
        sandbox.restore_token()
        assert (await client.post(graphql, json=query, headers=headers)).status_code == 200
        sandbox.revoke_token()
        assert (await client.post(graphql, json=query, headers=headers)).status_code == 401
        assert (await client.post("/_sandbox/credentials", json={"valid": True})).json() == {"valid": True}
        assert (await client.post(graphql, json=query, headers=headers)).status_code == 200
    await sandbox.aclose()
