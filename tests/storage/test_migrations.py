"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL,
and take it down again."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from nexus.storage import migrate
from nexus.storage.database import Database
from nexus.storage.models import Base

EXPECTED_TABLES = {
    "nexus_items",
    "nexus_stock_movements",
    "nexus_channels",
    "nexus_channel_mappings",
    "nexus_sync_batches",
    "nexus_sync_jobs",
    "nexus_dead_letter_queue",
    "nexus_webhook_logs",
    "nexus_rate_limit_logs",
}


def schema_difference(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "target_metadata": Base.metadata}
    )
    return list(compare_metadata(context, Base.metadata))


def nexus_tables(connection: Connection) -> set[str]:
    return {name for name in inspect(connection).get_table_names() if name.startswith("nexus_")}


async def check_round_trip(url: str) -> None:
    database = Database(url)
    try:
        assert await migrate.current_revision(database) is None
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == migrate.head_revision()
        async with database.engine.connect() as connection:
            assert await connection.run_sync(nexus_tables) >= EXPECTED_TABLES
            assert await connection.run_sync(schema_difference) == []
        await migrate.upgrade(database)  # running it again is harmless
        await migrate.downgrade(database, "base")
        async with database.engine.connect() as connection:
            assert await connection.run_sync(nexus_tables) == set()
        assert await migrate.current_revision(database) is None
    finally:
        await database.dispose()


async def test_migrations_match_the_models_on_sqlite(sqlite_url: str) -> None:
    await check_round_trip(sqlite_url)


@pytest.mark.postgres
async def test_migrations_match_the_models_on_postgresql(postgres_url: str) -> None:
    await check_round_trip(postgres_url)


def test_there_is_a_single_head() -> None:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(migrate.alembic_config()).get_heads()
    assert heads == [migrate.head_revision()]
