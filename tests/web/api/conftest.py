"""An API under test: a migrated Nexus on MemoryChannel (channels `m` and `n`), SKUs A, B, C
listed on both and in sync, a `view` and a `manage` token, and an HTTP client on the app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.sync.sync_kit import Engine, register

from nexus.access.tokens import Role
from nexus.errors import TerminalChannelError
from nexus.storage.models import Conflict, WebhookLog
from nexus.sync.dead_letters import DeadLetterFilter, list_dead_letters
from nexus.web import create_app

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

    async def call(
        self, method: str, path: str, role: str | None = "manage", **kwargs: Any
    ) -> httpx.Response:
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


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def backend(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """The database URL: SQLite; `@pytest.mark.parametrize("backend", BACKENDS, indirect=True)`
    runs a test on PostgreSQL too (resolved here, outside the test's event loop)."""
    if getattr(request, "param", "sqlite") == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return sqlite_url


@pytest.fixture
async def api(backend: str, make_nexus: Callable[..., Any]) -> AsyncIterator[Api]:
    overrides: dict[str, Any] = {"database_url": backend}
    nexus = await make_nexus(channels={"m": {"driver": "mem"}, "n": {"driver": "mem"}}, **overrides)
    engine = Engine(nexus, register(nexus))
    await engine.seed({"A": 10, "B": 10, "C": 10}, channels=("m", "n"))
    _, view = await nexus.tokens.create("laptop", Role.VIEW)
    _, manage = await nexus.tokens.create("ops", Role.MANAGE)
    app = create_app(nexus)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://nexus.test"
    ) as client:
        yield Api(engine, client, view, manage)


async def dead_letter(api: Api, sku: str, channel: str = "m", error: str = "404 listing not found") -> int:
    """Sell one of `sku` while `channel` refuses it for good: one dead letter; its id."""
    driver = api.engine.driver(channel)
    driver.fail_listing(TerminalChannelError(error, status=404), sku=sku, times=None)
    await api.nexus.product(sku).adjust(-1)
    for name in api.nexus.channel_names():
        await api.drain(name)
    driver.clear_failures()
    page = await list_dead_letters(api.nexus.db, DeadLetterFilter(channel=channel, sku=sku))
    return page.items[0].id


async def stored_webhook(
    api: Api,
    *,
    channel: str = "m",
    status: str = "processed",
    verified: bool = True,
    delivery_id: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b'{"sale": 1}',
) -> int:
    async with api.nexus.db.transaction() as session:
        row = WebhookLog(
            channel=channel,
            topic="stock",
            delivery_id=delivery_id,
            status=status,
            http_status=200 if verified else 401,
            verified=verified,
            headers=headers or {},
            body=body,
        )
        session.add(row)
        await session.flush()
        return row.id


async def conflict(api: Api, sku: str = "B", channel: str = "m") -> int:
    listing = await api.engine.listing(sku, channel)
    async with api.nexus.db.transaction() as session:
        row = Conflict(
            channel=channel,
            listing_id=listing.id,
            sku=sku,
            believed=listing.remote_qty,
            observed=(listing.remote_qty or 0) + 3,
            desired=listing.desired_qty,
        )
        session.add(row)
        await session.flush()
        return row.id
