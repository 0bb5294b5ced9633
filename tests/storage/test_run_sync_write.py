"""`Database.run_sync_write`: one write transaction as one synchronous function; on a SQLite file
in the writer thread, under the process's write lock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, func, insert, select

from nexus.storage.database import Database
from nexus.storage.migrate import upgrade
from nexus.storage.models import Item


def _add(sku: str) -> Callable[[Connection], str]:
    def work(connection: Connection) -> str:
        connection.execute(insert(Item).values(sku=sku, title=sku, on_hand=1))
        return threading.current_thread().name

    return work


async def _skus(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.scalars(select(Item.sku).order_by(Item.sku))).all())


async def test_work_is_committed_when_it_returns_and_rolled_back_when_it_raises(db: Database) -> None:
    await db.run_sync_write(_add("A"))

    def fails(connection: Connection) -> None:
        connection.execute(insert(Item).values(sku="B", title="B", on_hand=1))
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        await db.run_sync_write(fails)
    assert await _skus(db) == ["A"]


async def test_on_a_sqlite_file_the_work_runs_in_the_writer_thread(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    await upgrade(db)
    try:
        thread = await db.run_sync_write(_add("A"))
        assert thread.startswith("nexus-sqlite-writer")
        assert await _skus(db) == ["A"]
    finally:
        await db.dispose()


async def test_in_memory_sqlite_runs_the_work_on_the_async_engines_connection() -> None:
    db = Database("sqlite+aiosqlite:///:memory:")  # a second engine would see another database
    await upgrade(db)
    try:
        thread = await db.run_sync_write(_add("A"))
        assert not thread.startswith("nexus-sqlite-writer")
        assert await _skus(db) == ["A"]
    finally:
        await db.dispose()


async def test_a_cancelled_caller_keeps_the_write_lock_until_the_thread_has_ended(sqlite_url: str) -> None:
    """The thread cannot be stopped mid-transaction; a writer that began meanwhile would meet
    SQLite's lock (and wait out busy_timeout) instead of the process's own queue."""
    db = Database(sqlite_url)
    await upgrade(db)
    release = threading.Event()
    started = threading.Event()

    def slow(connection: Connection) -> None:
        connection.execute(insert(Item).values(sku="SLOW", title="slow", on_hand=1))
        started.set()
        release.wait(10)

    try:
        caller = asyncio.create_task(db.run_sync_write(slow))
        await asyncio.to_thread(started.wait, 10)
        caller.cancel()
        await asyncio.sleep(0.05)
        caller.cancel()  # cancelled again while it waits for the thread
        order: list[str] = []

        async def next_writer() -> None:
            async with db.transaction() as session:
                order.append("next writer")
                count = await session.scalar(select(func.count()).select_from(Item))
                order.append(f"sees {count}")

        follower = asyncio.create_task(next_writer())
        await asyncio.sleep(0.2)
        assert order == []  # still waiting for the thread's transaction
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await follower
        assert order == ["next writer", "sees 1"]  # the cancelled caller's row was committed
    finally:
        release.set()
        await db.dispose()
