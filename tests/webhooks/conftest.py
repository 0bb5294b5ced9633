from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from nexus.web.server import serve_app
from tests.webhooks.webhook_testkit import Hub, build_hub


@pytest.fixture
async def hub(make_nexus: Callable[..., Any]) -> Hub:
    return await build_hub(make_nexus)


@pytest.fixture
async def http(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    """A client talking real HTTP to the hub's app on loopback."""
    async with (
        serve_app(hub.app) as server,
        httpx.AsyncClient(base_url=server.base_url, trust_env=False) as client,
    ):
        yield client


@pytest.fixture
async def asgi(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling the app in process (no lifespan: tests drain the processor themselves)."""
    transport = httpx.ASGITransport(app=hub.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as client:
        yield client
