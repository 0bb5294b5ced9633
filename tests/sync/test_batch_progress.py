"""A push round records a batch's progress (on PostgreSQL as increment rows, settled after its
commit by the process's `BatchSettler`; on SQLite in its own transaction): the round never
waits on the batch row, a batch completes once however its last rounds interleave, and progress
a failed settle left behind is folded later."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from structlog.testing import capture_logs

from nexus.domain.vocabulary import BatchState
from nexus.errors import BatchStrandedError
from nexus.events import BatchCompleted, BatchProgressed
from nexus.storage.models import ChannelMapping, SyncBatch, SyncBatchProgress, utcnow
from nexus.sync import batches
from nexus.sync.batches import list_batches, show_batch
from nexus.sync.queue import ListingQueue, Marked
from tests.sync.sync_kit import Engine, register

MakeEngine = Callable[..., Any]
TWO = {"m": {"driver": "mem"}, "n": {"driver": "mem"}}
# Long enough for a blocked round to show it is blocked; short enough for a failing test.
BLOCKED = 10.0


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    url = request.getfixturevalue("postgres_url")
    assert isinstance(url, str)
    return url


async def batch_row(engine: Engine, batch_id: str) -> SyncBatch:
    async with engine.nexus.db.read() as session:
        row = await session.get(SyncBatch, batch_id)
    assert row is not None
    return row


async def increments(engine: Engine, batch_id: str) -> int:
    async with engine.nexus.db.read() as session:
        statement = select(func.count()).where(SyncBatchProgress.batch_id == batch_id)
        return int(await session.scalar(statement) or 0)


async def all_pushed(engine: Engine) -> bool:
    """Every listing's push is recorded: clean and out of its batch."""
    listings = await engine.listings()
    return all(listing.batch_id is None and listing.dirty_since is None for listing in listings)


async def queue_catalog(engine: Engine, batch_id: str, queued: Callable[[], Awaitable[None]]) -> None:
    """Queue every listing of channel `m` in batch `batch_id`, calling `queued` after each chunk."""
    await batches.queue_batch(
        engine.nexus.db, batch_id, "test", ["m"], None, queued=queued, dispatch=engine.nexus.events.dispatch
    )


def listen(engine: Engine) -> tuple[list[BatchCompleted], list[BatchProgressed]]:
    completed: list[BatchCompleted] = []
    progressed: list[BatchProgressed] = []
    engine.nexus.events.listen(BatchCompleted, completed.append)
    engine.nexus.events.listen(BatchProgressed, progressed.append)
    return completed, progressed


async def test_a_round_folds_its_progress_into_the_batch_row(
    make_engine: MakeEngine, database_url: str
) -> None:
    """On PostgreSQL in a short transaction after the round's, in the background; on SQLite in
    the round's own."""
    engine: Engine = await make_engine(database_url=database_url)
    await engine.seed({"A": 1, "B": 2, "C": 3, "D": 4})
    completed, progressed = listen(engine)
    batch_id = await engine.nexus.catalog().sync_all()
    worker = engine.nexus.push_worker("m")

    await worker.run_once()  # three of the four (the channel takes three a request)
    await engine.nexus.batch_settler.drain()
    row = await batch_row(engine, batch_id)
    assert (row.processed, row.failed, row.status) == (3, 0, BatchState.RUNNING)
    assert await increments(engine, batch_id) == 0
    assert progressed == [BatchProgressed(batch_id, 4, 3, 0)]

    await worker.run_once()
    await engine.nexus.batch_settler.drain()
    row = await batch_row(engine, batch_id)
    assert (row.processed, row.status) == (4, BatchState.COMPLETED)
    assert row.completed_at is not None
    assert await increments(engine, batch_id) == 0
    assert progressed[-1] == BatchProgressed(batch_id, 4, 4, 0)
    assert completed == [BatchCompleted(batch_id, 4, 4, 0)]


def settles_fail(monkeypatch: pytest.MonkeyPatch) -> Any:
    """From now on every settle meets a database gone after the round committed; returns the
    real fold, for the test to put back."""
    fold = batches._fold

    async def database_gone(*args: Any) -> Any:
        raise ConnectionRefusedError("the database went away after the round committed")

    monkeypatch.setattr(batches, "_fold", database_gone)
    return fold


@pytest.mark.postgres
async def test_progress_a_failed_settle_left_is_folded_later(
    make_engine: MakeEngine, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL settles after the round's commit, so a settle can fail on its own (SQLite
    folds in the round's transaction: the two commit or fail together)."""
    engine: Engine = await make_engine(database_url=postgres_url)
    await engine.seed({"A": 1, "B": 2})
    completed, _ = listen(engine)
    batch_id = await engine.nexus.catalog().sync_all()
    fold = settles_fail(monkeypatch)
    round_ = await engine.nexus.push_worker("m").run_once()
    await engine.nexus.batch_settler.drain()  # the settle fails: logged, and left for later

    # The round is written (its listings pushed and clean) and its progress recorded, unfolded.
    assert round_ is not None and round_.ok == 2
    assert await all_pushed(engine)
    row = await batch_row(engine, batch_id)
    assert (row.processed, row.status) == (0, BatchState.RUNNING)
    assert await increments(engine, batch_id) == 1
    assert completed == []
    # Readers count the unfolded progress already.
    views, _ = await list_batches(engine.nexus.db)
    assert [(v.id, v.processed, v.pending) for v in views] == [(batch_id, 2, 0)]
    assert (await show_batch(engine.nexus.db, batch_id)).batch.processed == 2
    # Young increments are their round's to settle: a reader leaves them alone.
    monkeypatch.setattr(batches, "_fold", fold)
    status = await engine.nexus.batch(batch_id).status()
    assert (status.processed, status.done) == (2, False)
    assert (await batch_row(engine, batch_id)).status == BatchState.RUNNING

    # Once stranded, whoever waits on the batch completes it, once.
    monkeypatch.setattr(batches, "STRANDED_AFTER", timedelta(0))
    status = await engine.nexus.batch(batch_id).status()
    assert (status.status, status.processed, status.failed, status.done) == ("completed", 2, 0, True)
    assert await increments(engine, batch_id) == 0
    assert completed == [BatchCompleted(batch_id, 2, 2, 0)]
    await engine.nexus.batch(batch_id).status()
    assert completed == [BatchCompleted(batch_id, 2, 2, 0)]


@pytest.mark.postgres
async def test_the_next_round_of_any_channel_settles_a_stranded_batch(
    make_engine: MakeEngine, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL settles after the round's commit, so a settle can fail on its own (SQLite
    folds in the round's transaction: the two commit or fail together)."""
    engine: Engine = await make_engine(database_url=postgres_url, channels=TWO)
    await engine.seed({"A": 1}, channels=("m",))
    await engine.seed({"B": 2}, channels=("n",))
    completed, _ = listen(engine)
    batch_id = await engine.nexus.catalog(["A"]).sync_all(["m"])
    fold = settles_fail(monkeypatch)
    await engine.nexus.push_worker("m").run_once()
    await engine.nexus.batch_settler.drain()
    assert await increments(engine, batch_id) == 1
    monkeypatch.setattr(batches, "_fold", fold)
    monkeypatch.setattr(batches, "STRANDED_AFTER", timedelta(0))

    await engine.nexus.product("B").adjust(-1)  # work for channel n, outside any batch
    assert await engine.nexus.push_worker("n").run_once() is not None
    await engine.nexus.batch_settler.drain()

    assert (await batch_row(engine, batch_id)).status == BatchState.COMPLETED
    assert completed == [BatchCompleted(batch_id, 1, 1, 0)]


# -- PostgreSQL: row locks ---------------------------------------------------------------------------


async def wait_until(condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + BLOCKED
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{what} within {BLOCKED}s: blocked on the batch row?")


@contextlib.asynccontextmanager
async def batch_row_locked(engine: Engine, batch_id: str) -> AsyncIterator[None]:
    """Another transaction holds the batch row's lock until the block ends."""
    async with engine.nexus.db.engine.connect() as holder:
        transaction = await holder.begin()
        await holder.execute(
            text("SELECT id FROM nexus_sync_batches WHERE id = :id FOR UPDATE"), {"id": batch_id}
        )
        try:
            yield
        finally:
            await transaction.rollback()


@pytest.mark.postgres
async def test_a_round_ends_while_the_batch_row_is_locked(make_engine: MakeEngine, postgres_url: str) -> None:
    engine: Engine = await make_engine(database_url=postgres_url)
    await engine.seed({"A": 1, "B": 2})
    completed, _ = listen(engine)
    batch_id = await engine.nexus.catalog().sync_all()

    async with batch_row_locked(engine, batch_id):
        outcome = await asyncio.wait_for(engine.nexus.push_worker("m").run_once(), timeout=BLOCKED)

        # The round is committed and done; only the settle waits for the lock, in the background.
        assert outcome is not None and outcome.ok == 2
        assert await increments(engine, batch_id) == 1 and await all_pushed(engine)
        assert (await engine.jobs())[-1].batch_id == batch_id  # the audit row, same transaction
        await asyncio.sleep(0.2)
        assert completed == []

    await asyncio.wait_for(engine.nexus.batch_settler.drain(), timeout=BLOCKED)
    row = await batch_row(engine, batch_id)
    assert (row.processed, row.status) == (2, BatchState.COMPLETED)
    assert await increments(engine, batch_id) == 0
    assert completed == [BatchCompleted(batch_id, 2, 2, 0)]


@pytest.mark.postgres
async def test_a_batch_whose_last_members_finish_in_two_processes_at_once_completes_once(
    make_engine: MakeEngine, make_nexus: Callable[..., Any], postgres_url: str
) -> None:
    engine: Engine = await make_engine(database_url=postgres_url, channels=TWO)
    there = await make_nexus(database_url=postgres_url, channels=TWO)  # a second process
    other = Engine(there, register(there))
    await engine.seed({"A": 1, "B": 2}, channels=("m", "n"))
    completed, progressed = listen(engine)
    completed_there, progressed_there = listen(other)
    batch_id = await engine.nexus.catalog().sync_all()

    # The lock holds both processes' settles back until both rounds recorded: they then race
    # for the row.
    async with batch_row_locked(engine, batch_id):
        outcomes = await asyncio.wait_for(
            asyncio.gather(engine.nexus.push_worker("m").run_once(), other.nexus.push_worker("n").run_once()),
            timeout=BLOCKED,
        )
        assert await increments(engine, batch_id) == 2

    settlers = (engine.nexus.batch_settler.drain(), other.nexus.batch_settler.drain())
    await asyncio.wait_for(asyncio.gather(*settlers), timeout=BLOCKED)
    assert [o.ok for o in outcomes if o is not None] == [2, 2]
    row = await batch_row(engine, batch_id)
    assert (row.total, row.processed, row.failed, row.status) == (4, 4, 0, BatchState.COMPLETED)
    assert completed + completed_there == [BatchCompleted(batch_id, 4, 4, 0)]
    # The first settle folded both rounds' increments; the second found nothing left to add.
    assert progressed + progressed_there == [BatchProgressed(batch_id, 4, 4, 0)] * 2


@pytest.mark.postgres
async def test_rounds_of_one_process_share_one_settle_at_a_time(
    make_engine: MakeEngine, postgres_url: str
) -> None:
    engine: Engine = await make_engine(database_url=postgres_url, channels=TWO)
    await engine.seed({"A": 1, "B": 2}, channels=("m", "n"))
    completed, progressed = listen(engine)
    batch_id = await engine.nexus.catalog().sync_all()

    async with batch_row_locked(engine, batch_id):
        for channel in ("m", "n"):
            await asyncio.wait_for(engine.nexus.push_worker(channel).run_once(), timeout=BLOCKED)

        async def waiting_on_the_row() -> int:
            async with engine.nexus.db.read() as session:
                statement = text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
                return int(await session.scalar(statement) or 0)

        await wait_until(waiting_on_the_row, "no settle waited on the row")
        await asyncio.sleep(0.2)
        assert await waiting_on_the_row() == 1  # the second round's batch waits its turn

    await asyncio.wait_for(engine.nexus.batch_settler.drain(), timeout=BLOCKED)
    assert completed == [BatchCompleted(batch_id, 4, 4, 0)]
    assert progressed[-1] == BatchProgressed(batch_id, 4, 4, 0)


@pytest.mark.postgres
async def test_concurrent_settles_count_every_increment_once(
    make_engine: MakeEngine, postgres_url: str
) -> None:
    engine: Engine = await make_engine(database_url=postgres_url)
    db = engine.nexus.db
    async with db.transaction() as session:
        session.add(SyncBatch(id="b", trigger="test", total=60, status=BatchState.RUNNING))
        session.add_all(SyncBatchProgress(batch_id="b", processed=2, failed=1) for _ in range(20))

    async def settled() -> list[Any]:
        return [event async for event in batches.settle(db, ["b"])]

    results = await asyncio.gather(*(settled() for _ in range(8)))

    row = await batch_row(engine, "b")
    assert (row.processed, row.failed, row.status) == (40, 20, BatchState.COMPLETED)
    events = [event for result in results for event in result]
    assert [e for e in events if isinstance(e, BatchCompleted)] == [BatchCompleted("b", 60, 40, 20)]
    assert await increments(engine, "b") == 0


async def test_a_catalog_is_queued_a_chunk_at_a_time_and_pushed_meanwhile(
    make_engine: MakeEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk commits on its own, so push rounds claim it while the rest is queued; the
    batch counts what they finish but stays `marking`, so it cannot complete before its last
    chunk is queued, however fast its members finish. A listing already waiting for a push
    (E: a stock change, normal priority) goes first; its chunk finds it pushed since the batch
    opened and counts it without pushing it again."""
    monkeypatch.setattr(batches, "MARK_CHUNK", 2)
    engine: Engine = await make_engine(database_url=database_url)
    await engine.seed({"A": 1, "B": 2, "C": 3, "D": 4, "E": 5})
    await engine.nexus.product("E").adjust(-1)
    completed, _ = listen(engine)
    worker = engine.nexus.push_worker("m")
    seen: list[tuple[str, int, int, list[str]]] = []
    batch_id = "b-1"

    async def push_between_chunks() -> None:
        row = await batch_row(engine, batch_id)
        queued = [listing.sku for listing in await engine.listings() if listing.batch_id == batch_id]
        seen.append((row.status, row.total, row.processed, queued))
        await worker.run_once()  # claims the chunk just queued, before the next is
        await engine.nexus.batch_settler.drain()

    await queue_catalog(engine, batch_id, push_between_chunks)

    assert [(status, total) for status, total, _, _ in seen] == [
        (BatchState.MARKING, 2),
        (BatchState.MARKING, 4),
        (BatchState.MARKING, 5),
    ]
    # The first round took E (waiting already, at normal priority) and the first chunk; they
    # were pushed before the second chunk was queued.
    assert [u.sku for u in engine.driver().push_calls[0]] == ["E", "A", "B"]
    assert seen[1][2] == 2 and seen[1][3] == ["C", "D"]
    # E's chunk found it pushed since the batch opened: counted, not queued or pushed again.
    assert seen[2][2] == 5 and seen[2][3] == []
    assert sorted(u.sku for u in engine.driver().pushed) == ["A", "B", "C", "D", "E"]
    row = await batch_row(engine, batch_id)
    assert (row.status, row.total, row.processed, row.marked_at) == (BatchState.COMPLETED, 5, 5, None)
    assert completed == [BatchCompleted(batch_id, 5, 5, 0)]
    assert await all_pushed(engine)


async def test_a_marking_that_stalled_runs_with_what_it_queued_and_its_marker_is_told(
    make_engine: MakeEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process queueing a catalog died (or stalled past MARKING_STRANDED_AFTER): the batch
    runs with the listings it queued, completes when they finish, and a warning says to run the
    sync again. A marker still alive gets BatchStrandedError at its next chunk, which queues
    nothing in the batch."""
    monkeypatch.setattr(batches, "MARK_CHUNK", 2)
    engine: Engine = await make_engine(database_url=database_url)
    await engine.seed({"A": 1, "B": 2, "C": 3})
    completed, _ = listen(engine)
    db = engine.nexus.db
    batch_id = "b-1"
    found: list[list[object]] = []

    async def stall_after_the_first_chunk() -> None:
        if found:
            return
        async with db.transaction() as session:
            row = await session.get(SyncBatch, batch_id)
            assert row is not None and row.marked_at is not None
            row.marked_at -= batches.MARKING_STRANDED_AFTER + timedelta(seconds=1)
        # Anyone's look for stranded work (a push round's settler, a status read) starts it.
        found.append([event async for event in batches.settle_stranded(db)])

    with capture_logs() as logs, pytest.raises(BatchStrandedError, match="run the sync again"):
        await queue_catalog(engine, batch_id, stall_after_the_first_chunk)
    assert found == [[]]  # nothing finished yet: no progress, no completion
    (warning,) = [entry for entry in logs if "stopped while queueing" in entry["event"]]
    assert (warning["log_level"], warning["batch_id"], warning["queued"]) == ("warning", batch_id, 2)

    row = await batch_row(engine, batch_id)
    assert (row.status, row.total) == (BatchState.RUNNING, 2)
    # The second chunk was rolled back: C is in no batch and not queued by this sync.
    queued = {
        listing.sku: (listing.batch_id, listing.dirty_since is not None)
        for listing in await engine.listings()
    }
    assert queued == {"A": (batch_id, True), "B": (batch_id, True), "C": (None, False)}

    await engine.nexus.push_worker("m").run_once()
    await engine.nexus.batch_settler.drain()
    row = await batch_row(engine, batch_id)
    assert (row.status, row.processed) == (BatchState.COMPLETED, 2)
    assert completed == [BatchCompleted(batch_id, 2, 2, 0)]


async def test_only_a_push_sent_after_the_batch_opened_counts_as_its_own(
    make_engine: MakeEngine, database_url: str
) -> None:
    """A clean listing whose last push was sent after the batch opened is counted as finished; one
    sent before (even if it landed, or was recorded, after) is queued and pushed again, since the
    channel may have moved before the sync was asked for."""
    engine: Engine = await make_engine(database_url=database_url)
    await engine.seed({"A": 1, "B": 2, "C": 3})
    db = engine.nexus.db
    opened = utcnow()
    sent = {"A": opened - timedelta(microseconds=1), "B": opened, "C": None}
    async with db.transaction() as session:
        for listing in (await session.execute(select(ChannelMapping))).scalars():
            listing.last_synced_at = sent[listing.sku]

    async def mark(session: Any) -> Marked:
        return await ListingQueue.mark_for_batch(session, "b", ["m"], None, opened=opened)

    assert await db.run(mark) == Marked(queued=2, pushed=1)
    queued = {listing.sku: listing.batch_id for listing in await engine.listings()}
    assert queued == {"A": "b", "B": None, "C": "b"}


@pytest.mark.parametrize("sent_after_opening", [False, True])
async def test_a_listing_queued_in_a_batch_while_its_push_is_in_flight(
    make_engine: MakeEngine, database_url: str, monkeypatch: pytest.MonkeyPatch, sent_after_opening: bool
) -> None:
    """A push sent before the batch was asked for does not count for it (the channel may have
    moved before): the listing stays queued in the batch and is pushed for it. One sent after
    counts. The push that landed is stamped with when it was sent."""
    engine: Engine = await make_engine(database_url=database_url)
    await engine.seed({"A": 1})
    await engine.nexus.product("A").adjust(-1)  # waiting for a push, outside any batch
    driver = engine.driver()
    push = driver.push_inventory
    db = engine.nexus.db
    opened = utcnow()

    async def open_(session: Any) -> None:
        await batches.open_batch(session, "b", "test", opened)

    if sent_after_opening:
        await db.run(open_)

    async def batch_queues_it_mid_flight(updates: Any) -> Any:
        nonlocal opened
        if not sent_after_opening:
            opened = utcnow()
            await db.run(open_)

        async def mark(session: Any) -> Marked:
            return await ListingQueue.mark_for_batch(session, "b", ["m"], None, opened=opened)

        assert await db.run(mark) == Marked(queued=1, pushed=0)  # in flight, so dirty: queued
        return await push(updates)

    monkeypatch.setattr(driver, "push_inventory", batch_queues_it_mid_flight)
    first = await engine.nexus.push_worker("m").run_once()
    await engine.nexus.batch_settler.drain()
    assert first is not None and first.ok == 1
    (listing,) = await engine.listings()
    assert listing.last_synced_at is not None
    if sent_after_opening:
        assert (listing.batch_id, listing.dirty_since) == (None, None)
        assert listing.last_synced_at >= opened
        assert (await batch_row(engine, "b")).processed == 1
        assert len(driver.pushed) == 1
        return
    assert (listing.batch_id, listing.dirty_since is not None) == ("b", True)
    assert listing.last_synced_at < opened

    monkeypatch.setattr(driver, "push_inventory", push)
    again = await engine.nexus.push_worker("m").run_once()
    await engine.nexus.batch_settler.drain()
    assert again is not None and again.ok == 1
    (listing,) = await engine.listings()
    assert (listing.batch_id, listing.dirty_since) == (None, None)
    assert listing.last_synced_at is not None and listing.last_synced_at >= opened
    assert (await batch_row(engine, "b")).processed == 1
    assert len(driver.pushed) == 2


async def test_a_sync_that_fails_part_way_starts_its_batch_with_what_it_queued(
    make_engine: MakeEngine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches, "MARK_CHUNK", 2)
    engine: Engine = await make_engine(database_url=database_url)
    await engine.seed({"A": 1, "B": 2, "C": 3})

    async def fail_after_the_first_chunk() -> None:
        raise RuntimeError("the caller went away")

    with capture_logs() as logs, pytest.raises(RuntimeError, match="went away"):
        await queue_catalog(engine, "b-1", fail_after_the_first_chunk)
    row = await batch_row(engine, "b-1")
    assert (row.status, row.total) == (BatchState.RUNNING, 2)
    (warning,) = [entry for entry in logs if "stopped while queueing" in entry["event"]]
    assert warning["log_level"] == "warning" and "went away" in warning["error"]


async def test_an_idle_worker_starts_a_marking_whose_process_died(
    make_engine: MakeEngine, database_url: str
) -> None:
    """Nothing left to push, so no round finishes anything: the idle claim still looks."""
    engine: Engine = await make_engine(database_url=database_url)
    await engine.seed({"A": 1})
    db = engine.nexus.db

    async def died_while_marking(session: Any) -> None:
        await batches.open_batch(session, "b-1", "test", utcnow() - batches.MARKING_STRANDED_AFTER * 2)

    await db.run(died_while_marking)
    assert await engine.nexus.push_worker("m").run_once() is None  # nothing to claim
    await engine.nexus.batch_settler.drain()
    row = await batch_row(engine, "b-1")
    assert (row.status, row.total) == (BatchState.COMPLETED, 0)


async def test_a_batch_whose_last_waiting_listings_another_sync_takes_completes(
    make_engine: MakeEngine, database_url: str
) -> None:
    """Batch 1 finished A; a second sync takes B, its last member waiting, and lowers its total:
    nothing is left for batch 1 to wait for, so it completes then (it used to stay running)."""
    engine: Engine = await make_engine(database_url=database_url, driver={"max_batch_size": 1})
    await engine.seed({"A": 1, "B": 2})
    completed, _ = listen(engine)
    first = await engine.nexus.catalog().sync_all()
    await engine.nexus.push_worker("m").run_once()  # A only: one listing a round
    await engine.nexus.batch_settler.drain()
    assert (await batch_row(engine, first)).status == BatchState.RUNNING

    second = await engine.nexus.catalog(["B"]).sync_all()
    row = await batch_row(engine, first)
    assert (row.status, row.total, row.processed) == (BatchState.COMPLETED, 1, 1)
    assert completed == [BatchCompleted(first, 1, 1, 0)]
    assert (await batch_row(engine, second)).total == 1
