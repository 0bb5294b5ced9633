"""Shared fixtures. PostgreSQL and Redis are real servers: a test that needs one is skipped when it
is unreachable on a developer machine, and FAILS under CI (the CI variable set)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nexus.config import NexusSettings
from nexus.engine import Nexus

POSTGRES_ADMIN_DSN = os.environ.get("NEXUS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("NEXUS_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _unavailable(what: str, error: BaseException) -> None:
    message = f"{what} is unreachable ({type(error).__name__}: {error})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI requires it. Start it as the env notes describe.", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> str:
    import asyncpg

    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    return POSTGRES_ADMIN_DSN


@pytest.fixture
def postgres_url(postgres_admin_dsn: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    import asyncpg

    name = f"nexus_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(postgres_admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = postgres_admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:
        _unavailable("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    return redis_server_url


@pytest.fixture
def redis_namespace(redis_server_url: str) -> Iterator[str]:
    """A namespace of one's own on the shared Redis server; its keys are deleted afterwards."""
    import redis

    namespace = f"nexus-test-{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis.Redis.from_url(redis_server_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'nexus.db'}"


@pytest.fixture
def make_settings(sqlite_url: str) -> Callable[..., NexusSettings]:
    """Settings on a fresh SQLite file, with instant retries unless a test asks otherwise."""

    def build(**overrides: Any) -> NexusSettings:
        data: dict[str, Any] = {
            "database_url": sqlite_url,
            "worker": {"backoff_base": 0.0, "poll_interval": 0.05},
        }
        data.update(overrides)
        return NexusSettings(**data)

    return build


@pytest.fixture
async def make_nexus(make_settings: Callable[..., NexusSettings]) -> AsyncIterator[Callable[..., Any]]:
    """Build migrated Nexus instances; all are closed at the end of the test."""
    built: list[Nexus] = []

    async def build(settings: NexusSettings | None = None, **overrides: Any) -> Nexus:
        nexus = Nexus(settings or make_settings(**overrides))
        await nexus.migrate()
        built.append(nexus)
        return nexus

    yield build
    for nexus in built:
        await nexus.aclose()
