"""An API under test: a migrated Nexus on MemoryChannel (channels `m` and `n`), SKUs A, B, C
listed on both and in sync, a `view` and a `manage` token, and an HTTP client on the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from nexus.access.tokens import Role
from nexus.web import create_app
from tests.sync.sync_kit import Engine, register

PREFIX = "/nexus/api/v1"


@dataclass
class Api:
    engine: Engine
    client: httpx.AsyncClient
    view: str  # the view token's secret
    manage: str

    @property
    def nexus(self) -> Any:
        return self.engine.nexus

    def auth(self, role: str | None) -> dict[str, str]:
        if role is None:
            return {}
        return {"Authorization": f"Bearer {self.view if role == 'view' else self.manage}"}

    async def call(self, method: str, path: str, role: str | None = "manage", **kwargs: Any) -> httpx.Response:
        headers = {**self.auth(role), **kwargs.pop("headers", {})}
        return await self.client.request(method, PREFIX + path, headers=headers, **kwargs)

    async def get(self, path: str, role: str | None = "view", **kwargs: Any) -> httpx.Response:
        return await self.call("GET", path, role, **kwargs)

    async def post(self, path: str, role: str | None = "manage", **kwargs: Any) -> httpx.Response:
        return await self.call("POST", path, role, **kwargs)

    async def put(self, path: str, role: str | None = "manage", **kwargs: Any) -> httpx.Response:
        return await self.call("PUT", path, role, **kwargs)

    async def drain(self, channel: str = "m") -> None:
        worker = self.nexus.push_worker(channel)
        while await worker.run_once() is not None:
            pass


@pytest.fixture
async def api(make_nexus: Callable[..., Any]) -> AsyncIterator[Api]:
    nexus = await make_nexus(channels={"m": {"driver": "mem"}, "n": {"driver": "mem"}})
    engine = Engine(nexus, register(nexus))
    await engine.seed({"A": 10, "B": 10, "C": 10}, channels=("m", "n"))
    _, view = await nexus.tokens.create("laptop", Role.VIEW)
    _, manage = await nexus.tokens.create("ops", Role.MANAGE)
    app = create_app(nexus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nexus.test") as client:
        yield Api(engine, client, view, manage)
