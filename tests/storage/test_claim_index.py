"""The claim reads the queue through an index of queued listings only (migration 0009), so a
claim does not step over a channel's clean listings, however many there are."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import make_url

from nexus.storage.database import Database
from nexus.storage.migrate import upgrade
from nexus.storage.models import ChannelMapping, utcnow
from nexus.sync.queue import ListingQueue

INDEX = "ix_nexus_channel_mappings_claim"


async def test_the_claim_index_holds_only_queued_listings(db: Database) -> None:
    async with db.read() as session:
        if db.is_sqlite:
            query = "SELECT sql FROM sqlite_master WHERE name = :name"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        definition = str(await session.scalar(text(query), {"name": INDEX}))
    assert "WHERE" in definition.upper(), definition
    assert "dirty_since IS NOT NULL" in definition and "failed_at IS NULL" in definition, definition


async def test_a_claim_among_many_clean_listings_does_not_step_over_them(sqlite_url: str) -> None:
    """Counted in SQLite's virtual machine instructions (a progress handler): the claim's query
    does about as much work for 10 queued listings among 5,000 clean ones as among none. With
    the old index, which held the clean listings first, it stepped over all 5,000."""
    db = Database(sqlite_url)
    await upgrade(db)
    try:
        statement, parameters = await _claim_statement(db, clean=5000, queued=10)
    finally:
        await db.dispose()
    path = make_url(sqlite_url).database
    assert path is not None
    with sqlite3.connect(Path(path)) as connection:
        plan = " ".join(
            str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )
        assert f"USING INDEX {INDEX}" in plan, plan
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        connection.set_progress_handler(count, 1)
        assert len(connection.execute(statement, parameters).fetchall()) == 10
    # Each queued listing costs a few dozen instructions; stepping over a clean one costs several.
    assert steps < 5000, f"{steps} instructions: the claim stepped over the clean listings"


@pytest.mark.postgres
async def test_a_claim_on_postgresql_reads_the_index_in_order_without_sorting(postgres_url: str) -> None:
    """A catalog sync queues a channel's listings in one statement, all with one dirty_since. The
    claim's order ends with `id`; without `id` in the index, PostgreSQL read and sorted every
    listing sharing that dirty_since (12 ms for 8,000) to take one round (migration 0011)."""
    db = Database(postgres_url)
    await upgrade(db)
    try:
        statement, parameters = await _claim_statement(db, clean=0, queued=3000, limit=25)
        async with db.transaction() as session:
            await session.execute(text("ANALYZE nexus_channel_mappings"))
    finally:
        await db.dispose()
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        explained = await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters)
        plan = json.loads(explained)
    finally:
        await connection.close()
    nodes = list(_plan_nodes(plan[0]["Plan"]))
    assert not [n for n in nodes if "Sort" in n["Node Type"]], nodes
    scans = [n for n in nodes if n.get("Index Name") == INDEX]
    assert scans, nodes
    # The scan stops once the round is taken instead of reading all 3,000 queued listings.
    assert scans[0]["Actual Rows"] <= 25, scans[0]


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


async def _claim_statement(db: Database, *, clean: int, queued: int, limit: int = 250) -> tuple[str, Any]:
    """Add `clean` clean and `queued` queued listings, claim, and return the claim's SELECT."""
    now = utcnow()
    listing = {"syncable_type": "nexus_item", "channel": "shop", "channel_meta": {}, "timeline": {}}
    async with db.transaction() as session:
        await session.execute(
            insert(ChannelMapping),
            [
                {**listing, "syncable_id": f"S{i}", "sku": f"S{i}", "remote_id": f"r{i}", "created_at": now}
                | ({"dirty_since": now - timedelta(seconds=1)} if i >= clean else {})
                for i in range(clean + queued)
            ],
        )
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        claimed = await ListingQueue(db, lease_seconds=60).claim("shop", "w1", limit=limit)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    assert len(claimed) == min(queued, limit)
    assert {c.sku for c in claimed} <= {f"S{i}" for i in range(clean, clean + queued)}
    # Give the listings back, so that the statement finds them again when run by hand.
    await ListingQueue(db, lease_seconds=60).release("w1", [c.id for c in claimed], sent=False)
    return statements[0]
