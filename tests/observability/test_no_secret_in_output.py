"""A literal secret in the configuration appears in no output (stdout, stderr, log records) of a
failing start, a failing push and a rejected webhook (issue 11, "no secret may ever appear in a
log line, traceback or API answer")."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nexus.storage.models import ChannelMapping, DeadLetter, WebhookLog
from nexus.web import create_app
from nexus.web.server import serve_app
from tests.observability.obs_kit import (
    ACCESS_TOKEN,
    CHANNEL,
    SECRETS,
    SKUS,
    WEBHOOK_SECRET,
    leaked,
    linked_store,
    logging_as_the_cli,
    push_all,
    records_text,
)

pytest.importorskip("nexus.sandbox.shopify")


# -- a failing start --------------------------------------------------------------------------


CHANNEL_TOML = (
    '[channels.shop]\ndriver = "shopify"\nbase_url = "https://x.myshopify.com"\n'
    f'credentials = {{ access_token = "{ACCESS_TOKEN}", webhook_secret = "{WEBHOOK_SECRET}" }}\n'
)


GOOD_SETTINGS = 'settings = { location_id = "24826418" }\n'
BAD_SETTINGS = 'settings = { location_id = "24826418", variants_per_product = "many" }\n'


@pytest.mark.parametrize("log_format", ["console", "json"])
@pytest.mark.parametrize(
    ("command", "database", "settings"),
    [
        # A setting the channel's model refuses: refused before anything is built.
        (["worker"], "file", BAD_SETTINGS),
        # The database file is not a database: an exception from deep inside SQLAlchemy.
        (["serve", "--port", "0"], "garbage", GOOD_SETTINGS),
        # A database URL that cannot be parsed: raised while the Nexus instance is built, through
        # frames whose locals hold the settings (a traceback with locals printed the token).
        (["worker"], "postgresql+asyncpg://nexus@localhost:notaport/nexus", GOOD_SETTINGS),
    ],
    ids=["bad-setting", "not-a-database", "bad-database-url"],
)
def test_a_failing_start_prints_no_secret(
    tmp_path: Path, command: list[str], database: str, settings: str, log_format: str
) -> None:
    path = tmp_path / "nexus.db"
    if database == "garbage":
        path.write_bytes(b"not a database " * 512)
    url = database if "://" in database else f"sqlite+aiosqlite:///{path}"
    config = tmp_path / "nexus.toml"
    config.write_text(f'database_url = "{url}"\nlog_format = "{log_format}"\n' + CHANNEL_TOML + settings)
    nexus = str(Path(sys.executable).with_name("nexus"))
    environment = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    result = subprocess.run(
        [nexus, *command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env=environment,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert leaked(result.stdout + result.stderr) == [], result.stdout + result.stderr


# -- a failing push ---------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_a_failing_push_logs_no_secret(
    make_nexus: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    log_format: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with linked_store(make_nexus, max_attempts=2) as store:
        nexus, sandbox = store.nexus, store.sandbox
        with logging_as_the_cli(nexus.settings, log_format) as logs:
            # 500s until the listing is dead-lettered.
            await nexus.product(SKUS[0]).adjust(-1)
            sandbox.fail_next(10, status=500)
            await push_all(nexus)
            sandbox.heal()
            # 401: the store no longer takes our token.
            sandbox.access_token = "shpat_rotated"
            await nexus.product(SKUS[1]).adjust(-1)
            await push_all(nexus)
            # (which disconnects the channel: the right token back, and reconnected)
            sandbox.access_token = ACCESS_TOKEN
            await nexus.channel_states.reconnect(CHANNEL)
            # A driver bug: a traceback through frames that hold the channel's configuration.
            worker = nexus.push_worker(CHANNEL)

            async def broken(updates: Any) -> Any:
                raise RuntimeError("driver bug")

            worker.runtime.driver.push_inventory = broken  # type: ignore[method-assign]
            await nexus.product(SKUS[2]).adjust(-1)
            while await worker.run_once() is not None:
                pass
        async with nexus.db.read() as session:
            letters = list((await session.execute(select(DeadLetter))).scalars())
            rows = list((await session.execute(select(ChannelMapping))).scalars())
    output = logs.getvalue()
    assert "driver raised" in output and "RuntimeError: driver bug" in output  # the traceback is there
    assert "listing dead-lettered" in output and SKUS[0] in output  # and the dead letter is loud
    if log_format == "json":
        assert all(json.loads(line) for line in output.splitlines())
    captured = capfd.readouterr()
    everything = output + captured.out + captured.err + records_text(caplog.records)
    stored = repr([(d.payload, d.last_exception) for d in letters]) + repr([r.last_error for r in rows])
    assert letters and leaked(everything) == [] and leaked(stored) == []


# -- a rejected webhook -----------------------------------------------------------------------


async def test_a_rejected_webhook_logs_and_answers_no_secret(
    make_nexus: Callable[..., Any], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    async with linked_store(make_nexus) as store:
        nexus = store.nexus
        with logging_as_the_cli(nexus.settings, "console") as logs:
            async with serve_app(create_app(nexus)) as served, httpx.AsyncClient() as client:
                url = f"{served.base_url}/nexus/webhooks/{CHANNEL}"
                body = json.dumps({"inventory_item_id": 1, "location_id": 1, "available": 3}).encode()
                answers = [
                    await client.post(
                        url,
                        content=body,
                        headers={
                            "Content-Type": "application/json",
                            "X-Shopify-Hmac-Sha256": signature,
                            "X-Shopify-Topic": "inventory_levels/update",
                            "X-Shopify-Webhook-Id": f"forged-{index}",
                        },
                    )
                    for index, signature in enumerate(["AAAA", WEBHOOK_SECRET, ""])
                ]
        async with nexus.db.read() as session:
            rows = list((await session.execute(select(WebhookLog))).scalars())
    assert [answer.status_code for answer in answers] == [401, 401, 401]
    output = logs.getvalue()
    assert output.count("webhook refused") == 3
    captured = capfd.readouterr()
    everything = output + captured.out + captured.err + records_text(caplog.records)
    everything += "".join(answer.text for answer in answers)
    assert leaked(everything) == []
    # The forged request carried the secret itself as its signature: the stored row masks it.
    assert len(rows) == 3 and leaked(repr([(r.headers, r.error) for r in rows])) == []


def test_secrets_are_what_the_tests_search_for() -> None:
    assert all(len(secret) > 10 for secret in SECRETS)
