"""Requests generated from the app's own OpenAPI document (schemathesis), valid ones and
invalid ones, sent with a `view` or a `manage` token to every API operation: none answers 500,
and every error answers in the one shape.

The app runs on this test's own event loop (no test client thread), so the database, the app and
the generated requests share one loop. More examples: NEXUS_API_FUZZ_EXAMPLES=200.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from tests.sync.sync_kit import Engine, register
from tests.web.api.conftest import PREFIX

from nexus.access.tokens import Role
from nexus.config import NexusSettings
from nexus.engine import Nexus
from nexus.web import create_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.generation.modes import GenerationMode  # noqa: E402

EXAMPLES = int(os.environ.get("NEXUS_API_FUZZ_EXAMPLES", "20"))
BASE_URL = "http://nexus.test"


async def build(database_url: str) -> tuple[Nexus, dict[str, str], httpx.AsyncClient, dict[str, Any]]:
    nexus = Nexus(
        NexusSettings(
            database_url=database_url,
            channels={"m": {"driver": "mem"}, "n": {"driver": "mem"}},
            worker={"backoff_base": 0.0, "poll_interval": 0.05},
        )
    )
    await nexus.migrate()
    engine = Engine(nexus, register(nexus))
    await engine.seed({"A": 10, "B": 10}, channels=("m", "n"))
    _, view = await nexus.tokens.create("fuzz-view", Role.VIEW)
    _, manage = await nexus.tokens.create("fuzz-manage", Role.MANAGE)
    app = create_app(nexus)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a failure is a 500 answer
    client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
    return nexus, {"view": view, "manage": manage}, client, app.openapi()


async def send(client: httpx.AsyncClient, kwargs: dict[str, Any], token: str) -> httpx.Response:
    headers = {
        key: value for key, value in kwargs.get("headers", {}).items() if key.lower() != "content-length"
    }
    headers["Authorization"] = f"Bearer {token}"
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif kwargs.get("data") is not None:
        body["content"] = kwargs["data"]
    return await client.request(
        kwargs["method"], kwargs["url"], headers=headers, params=kwargs.get("params"), **body
    )


def fuzz(
    operation: Any,
    mode: GenerationMode,
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    tokens: dict[str, str],
) -> str | None:
    """Send `EXAMPLES` generated requests to `operation`; the first problem found, if any."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), role=st.sampled_from(["view", "manage"]))
    def probe(case: Any, role: str) -> None:
        kwargs = case.as_transport_kwargs(base_url=BASE_URL)
        response = loop.run_until_complete(send(client, kwargs, tokens[role]))
        where = f"{kwargs['method']} {kwargs['url']} ({mode.value}, {role})"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
        if response.status_code >= 400:
            error = response.json().get("error", {})
            assert set(error) == {"code", "message", "detail"}, f"{where}: {response.text[:300]}"
        assert not any(secret in response.text for secret in tokens.values()), where

    try:
        probe()
    except Unsatisfiable:
        return None  # nothing to make invalid (an operation without parameters or body)
    except AssertionError as failure:
        return str(failure).splitlines()[0]
    return None


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_generated_requests_never_make_a_500(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "postgres":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'nexus.db'}"
    loop = asyncio.new_event_loop()
    nexus, tokens, client, document = loop.run_until_complete(build(database_url))
    schema = schemathesis.openapi.from_dict(document)
    problems: list[str] = []
    checked = 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            if not operation.path.startswith(PREFIX):
                continue  # webhooks, health, metrics: tested where they are built
            checked += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                problem = fuzz(operation, mode, loop, client, tokens)
                if problem is not None:
                    problems.append(problem)
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(nexus.aclose())
        loop.close()
    assert checked == 28
    assert not problems, "\n".join(problems)
