"""PostgreSQL connections: a process keeps `database_pool_size` of them and never opens more, however
many transactions it runs at once (docs/benchmarks.md section 6, finding 20)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from nexus.config import NexusSettings
from nexus.storage.database import DEFAULT_POOL_SIZE, Database

pytestmark = pytest.mark.postgres


async def test_many_concurrent_transactions_reuse_the_pools_connections(postgres_url: str) -> None:
    pool_size = DEFAULT_POOL_SIZE
    database = Database(postgres_url)
    backends: set[int] = set()

    async def transaction() -> None:
        async with database.transaction() as session:
            backends.add(int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
            await session.execute(text("SELECT pg_sleep(0.02)"))

    try:
        # Waves of three times as many transactions as the pool holds: before, the pool opened
        # connections past its size for each wave and closed them again when they came back.
        for _ in range(3):
            await asyncio.gather(*(transaction() for _ in range(3 * pool_size)))
    finally:
        await database.dispose()
    assert 1 <= len(backends) <= pool_size


async def test_the_pool_size_is_configured_on_the_instance(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nexus.engine import Nexus

    monkeypatch.delenv("NEXUS_DATABASE_POOL_SIZE", raising=False)  # the environment beats arguments
    settings = NexusSettings(database_url=postgres_url, database_pool_size=3)
    async with Nexus(settings, source="test") as nexus:
        backends: set[int] = set()

        async def transaction() -> None:
            async with nexus.db.transaction() as session:
                backends.add(int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
                await session.execute(text("SELECT pg_sleep(0.02)"))

        await asyncio.gather(*(transaction() for _ in range(12)))
    assert 1 <= len(backends) <= 3
