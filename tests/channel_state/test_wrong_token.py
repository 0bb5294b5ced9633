"""The wrong-token scenario end to end (issue 11): a Shopify store stops taking our token. No
listing is dead-lettered, the channel shows `disconnected` (CLI, /nexus/readyz, metrics), and
once the token works again a probe reconnects it and everything waiting is pushed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from nexus.cli import channels as channels_cli
from nexus.cli.main import app
from nexus.events import ChannelDisconnected, ChannelReconnected
from nexus.runtime import running
from nexus.storage.models import ChannelMapping, DeadLetter
from tests.observability.obs_kit import ACCESS_TOKEN, CHANNEL, SKUS, WEBHOOK_SECRET, linked_store

runner = CliRunner()


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def cli_config(tmp_path: Path, database_url: str, base_url: str, location_id: int) -> Path:
    path = tmp_path / "nexus.toml"
    path.write_text(
        f'database_url = "{database_url}"\n'
        f'[channels.{CHANNEL}]\ndriver = "shopify"\nbase_url = "{base_url}"\n'
        f'credentials = {{ access_token = "{ACCESS_TOKEN}", webhook_secret = "{WEBHOOK_SECRET}" }}\n'
        f'settings = {{ location_id = "{location_id}" }}\n',
        encoding="utf-8",
    )
    return path


async def test_a_refused_token_disconnects_the_channel_and_a_fixed_one_converges(
    make_nexus: Callable[..., Any], tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(channels_cli, "console", Console(width=250))
    async with linked_store(make_nexus, probe_interval=0.3, state_ttl=0.1) as store:
        nexus, sandbox = store.nexus, store.sandbox
        seen: list[object] = []
        nexus.events.listen(ChannelDisconnected, seen.append)
        nexus.events.listen(ChannelReconnected, seen.append)
        config = cli_config(tmp_path, nexus.settings.database_url, store.base_url, sandbox.location_id)
        async with running(nexus, web=True, port=0) as service, httpx.AsyncClient() as client:
            # The merchant revokes the app's token (the sandbox's control route).
            broke = await client.post(f"{store.base_url}/_sandbox/credentials", json={"valid": False})
            assert broke.status_code == 200 and broke.json() == {"valid": False}
            for sku in SKUS:
                await nexus.product(sku).adjust(-1)

            async def disconnected() -> bool:
                return (await nexus.channel_states.get(CHANNEL, fresh=True)).state.value == "disconnected"

            await eventually(disconnected)
            await asyncio.sleep(0.5)  # rounds in flight, and a probe or two, have answered
            await nexus.product(SKUS[0]).adjust(-1)  # still recorded while disconnected
            await asyncio.sleep(0.3)

            async with nexus.db.read() as session:
                letters = list((await session.execute(select(DeadLetter))).scalars())
                rows = list((await session.execute(select(ChannelMapping))).scalars())
            assert letters == []
            assert all(r.dirty_since is not None and r.failed_at is None and r.attempts == 0 for r in rows), [
                (r.sku, r.dirty_since, r.failed_at, r.attempts, r.last_error) for r in rows
            ]
            # the listings of the round that met the 401 say why; the others were never claimed
            assert any("refused the credentials" in (r.last_error or "") for r in rows)
            assert [type(e) for e in seen] == [ChannelDisconnected]  # once, not once per listing
            assert sandbox.available(SKUS[0]) == 10  # nothing landed

            ready = await client.get(f"{service.base_url}/nexus/readyz")
            assert ready.status_code == 200  # the process is ready; the channel is disconnected
            shop = ready.json()["channels"][CHANNEL]
            assert shop["state"] == "disconnected" and "Invalid API key" in shop["last_error"]
            metrics = (await client.get(f"{service.base_url}/nexus/metrics")).text
            assert f'nexus_channel_state{{channel="{CHANNEL}",state="disconnected"}} 1.0' in metrics

            listed = await asyncio.to_thread(
                runner.invoke, app, ["channels", "--config", str(config), "--json"]
            )
            assert listed.exit_code == 0, listed.output
            [row] = json.loads(listed.stdout)
            assert (row["channel"], row["driver"], row["state"]) == (CHANNEL, "shopify", "disconnected")
            table = await asyncio.to_thread(runner.invoke, app, ["channels", "--config", str(config)])
            assert (
                table.exit_code == 0 and "disconnected" in table.output and "Invalid API key" in table.output
            )
            assert ACCESS_TOKEN not in listed.output + table.output + ready.text

            # The token works again: the next probe reconnects, everything waiting is pushed.
            fixed = await client.post(f"{store.base_url}/_sandbox/credentials", json={"valid": True})
            assert fixed.status_code == 200

            async def converged() -> bool:
                levels = [sandbox.available(s) for s in SKUS]
                return levels == [8, 9, 9] and await nexus.queue.queued(CHANNEL) == 0

            await eventually(converged)
            health = await nexus.channel_states.get(CHANNEL, fresh=True)
            assert health.state.value == "connected"
            assert [type(e) for e in seen] == [ChannelDisconnected, ChannelReconnected]
            ready = await client.get(f"{service.base_url}/nexus/readyz")
            assert ready.json()["channels"][CHANNEL]["state"] == "connected"
        async with nexus.db.read() as session:
            assert list((await session.execute(select(DeadLetter))).scalars()) == []
