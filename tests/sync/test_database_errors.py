"""What the push worker and the webhook processor do when the database fails under them
(docs/faults.md, bug 3): a push whose answer cannot be written is written once the database is
back, never forgotten; the loops survive an unreachable database; a transaction PostgreSQL
aborts for a deadlock runs again (`Database.run`), and a delivery caught in one is deferred,
never failed. The end-to-end test is tests/faults/test_process_faults.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

import nexus.sync.worker as worker_module
from nexus.storage.database import Database, describe, lock_conflict, unavailable
from nexus.sync.outcomes import PushRound, RoundAnswers
from nexus.sync.queue import ListingQueue
from nexus.webhooks.processor import Attempt
from nexus.webhooks.receiver import WebhookReceiver
from tests.sync.sync_kit import Engine
from tests.sync.test_worker_lifecycle import expire_leases
from tests.webhooks.webhook_testkit import CHANNEL, build_hub, delivery, sale

MakeEngine = Callable[..., Any]


class _PgError(Exception):
    """What the asyncpg adapter puts in `DBAPIError.orig`: an error carrying its SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def pg_error(sqlstate: str, message: str = "error") -> DBAPIError:
    return OperationalError("SELECT 1", {}, _PgError(message, sqlstate))


DEADLOCK = "40P01"


def database_errors(engine_or_metrics: Any, component: str) -> float:
    registry = engine_or_metrics.metrics.registry
    return registry.get_sample_value("nexus_database_errors_total", {"component": component}) or 0.0


@pytest.fixture(autouse=True)
def quick_database_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "DATABASE_RETRY_BASE", 0.001)
    monkeypatch.setattr(worker_module, "DATABASE_RETRY_MAX", 0.01)


# -- the classification ---------------------------------------------------------------------------


def test_errors_that_mean_try_again_later() -> None:
    assert unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert unavailable(pg_error("57P01", "terminating connection due to administrator command"))
    assert unavailable(pg_error("08006", "connection failure"))
    assert unavailable(pg_error("57P03", "the database system is starting up"))
    assert lock_conflict(pg_error(DEADLOCK)) and not unavailable(pg_error(DEADLOCK))
    assert lock_conflict(pg_error("40001", "could not serialize access"))
    # A unique violation or a bug is wrong, not late: never retried.
    assert not unavailable(pg_error("23505")) and not lock_conflict(pg_error("23505"))
    assert not unavailable(ValueError("bug")) and not lock_conflict(ValueError("bug"))


@pytest.mark.postgres
async def test_no_pooled_connection_in_time_means_try_again_later(postgres_url: str) -> None:
    """With every connection of the pool busy (`database_pool_size`, no overflow), a transaction
    waits for one and gives up after the pool's timeout: the caller retries later, as for a
    database that cannot be reached (a webhook is answered 503, not 500)."""
    engine = create_async_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    try:
        async with engine.connect() as holding:
            await holding.execute(text("SELECT 1"))
            with pytest.raises(Exception) as waited:
                async with engine.connect() as second:
                    await second.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert unavailable(waited.value), repr(waited.value)


def test_a_database_error_is_described_without_its_statement() -> None:
    error = pg_error(DEADLOCK, "deadlock detected\nDETAIL: Process 1 waits")
    assert describe(error) == "_PgError: deadlock detected"
    assert describe(ConnectionRefusedError(111, "Connect call failed")).startswith("ConnectionRefusedError")


# -- Database.run ---------------------------------------------------------------------------------


async def test_a_transaction_aborted_for_a_deadlock_runs_again(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    calls: list[int] = []

    async def work(session: Any) -> int:
        calls.append(1)
        if len(calls) < 3:
            raise pg_error(DEADLOCK, "deadlock detected")
        return int((await session.execute(text("SELECT 41 + 1"))).scalar_one())

    try:
        assert await db.run(work) == 42
        assert len(calls) == 3

        async def always(session: Any) -> None:
            raise pg_error(DEADLOCK, "deadlock detected")

        with pytest.raises(DBAPIError):
            await db.run(always, attempts=2)

        refused: list[int] = []

        async def wrong(session: Any) -> None:
            refused.append(1)
            raise pg_error("23505", "duplicate key")

        with pytest.raises(DBAPIError):
            await db.run(wrong)
        assert len(refused) == 1, "only lock conflicts are run again"
    finally:
        await db.dispose()


async def test_a_real_postgresql_deadlock_is_recognised_and_its_victim_runs_again(postgres_url: str) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL aborts one of them, and
    `Database.run` runs that one again, so both finish."""
    db = Database(postgres_url)
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE probe (id int PRIMARY KEY, n int NOT NULL)"))
            await session.execute(text("INSERT INTO probe VALUES (1, 0), (2, 0)"))
        both_hold_one = asyncio.Barrier(2)
        attempts: list[tuple[int, int]] = []
        errors: list[BaseException] = []

        def locking(first: int, second: int) -> Callable[[Any], Awaitable[None]]:
            async def work(session: Any) -> None:
                attempts.append((first, second))
                await session.execute(text("SET LOCAL deadlock_timeout = '100ms'"))
                await session.execute(text("UPDATE probe SET n = n + 1 WHERE id = :id"), {"id": first})
                if len(attempts) <= 2:  # the first attempts meet; a rerun finds the way clear
                    await both_hold_one.wait()
                try:
                    await session.execute(text("UPDATE probe SET n = n + 1 WHERE id = :id"), {"id": second})
                except DBAPIError as exc:
                    errors.append(exc)
                    raise

            return work

        await asyncio.gather(db.run(locking(1, 2)), db.run(locking(2, 1)))

        assert len(errors) == 1 and lock_conflict(errors[0]), errors
        assert len(attempts) == 3  # the victim ran twice
        async with db.read() as session:
            counts = dict((await session.execute(text("SELECT id, n FROM probe"))).all())
        assert counts == {1: 2, 2: 2}  # each transaction's two updates, once
    finally:
        await db.dispose()


# -- the push worker ------------------------------------------------------------------------------


async def test_a_push_whose_answer_cannot_be_written_is_written_once_the_database_is_back(
    make_engine: MakeEngine,
) -> None:
    """The channel applied the push while the database was unreachable. The worker keeps the
    lease (so a crash now would leave the listing `reclaimed`) and writes the same answer when
    the database answers again: the listing believes what it pushed, and nothing is booked."""
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    await engine.nexus.product("S").adjust(-2)
    worker = engine.nexus.push_worker("m")
    record = worker.outcomes.record
    held: list[tuple[str | None, int | None]] = []

    async def unreachable_twice(answers: RoundAnswers, outcome: PushRound) -> None:
        listing = await engine.listing("S")
        held.append((listing.lease_owner, listing.sending_qty))
        if len(held) <= 2:
            raise ConnectionRefusedError(111, "Connect call failed")
        await record(answers, outcome)

    worker.outcomes.record = unreachable_twice  # type: ignore[method-assign]
    round_ = await worker.run_once()

    assert round_ is not None and round_.ok == 1
    assert held == [(worker.owner, 8)] * 3, "the lease was given up while the answer was unwritten"
    driver = engine.driver()
    assert len(driver.push_calls) == 1 and driver.levels["m-S"] == 8
    listing = await engine.listing("S")
    assert (listing.remote_qty, listing.pushed_qty, listing.dirty_since, listing.lease_owner) == (
        8,
        8,
        None,
        None,
    )
    assert [m.reason for m in await engine.movements("S")] == ["restock", "adjustment"]
    assert database_errors(engine.nexus, "push_worker") == 2


async def test_a_recording_aborted_by_a_deadlock_runs_again_and_counts_once(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    await engine.nexus.product("S").adjust(-2)
    worker = engine.nexus.push_worker("m")
    writer = worker.outcomes
    record = writer._record
    calls: list[int] = []

    async def deadlocked_once(session: Any, answers: RoundAnswers, outcome: PushRound) -> set[str]:
        calls.append(1)
        batches = await record(session, answers, outcome)  # counts the push, then the transaction aborts
        if len(calls) == 1:
            raise pg_error(DEADLOCK, "deadlock detected")
        return batches

    writer._record = deadlocked_once  # type: ignore[method-assign]
    round_ = await worker.run_once()

    assert len(calls) == 2
    assert round_ is not None and (round_.ok, len(round_.events)) == (1, 1)
    listing = await engine.listing("S")
    assert (listing.remote_qty, listing.dirty_since, listing.lease_owner) == (8, None, None)
    assert len(await engine.jobs()) == 1  # one audit row: the aborted attempt wrote nothing


async def test_a_push_whose_recording_fails_otherwise_leaves_the_listing_to_be_read_back(
    make_engine: MakeEngine,
) -> None:
    """Not a database outage (a bug): the round fails, but the push was sent, so the lease
    stays and the next holder reads the channel instead of treating it as never sent."""
    engine: Engine = await make_engine(driver={"reads_levels": True})
    await engine.seed({"S": 10})
    await engine.nexus.product("S").adjust(-2)
    worker = engine.nexus.push_worker("m", owner="first")

    async def broken(answers: RoundAnswers, outcome: PushRound) -> None:
        raise RuntimeError("a bug while recording")

    worker.outcomes.record = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await worker.run_once()
    assert (await engine.listing("S")).lease_owner == "first"

    await expire_leases(engine)
    round_ = await engine.nexus.push_worker("m", owner="next").run_once()

    assert round_ is not None and round_.ok == 1
    driver = engine.driver()
    assert len(driver.push_calls) == 1, "the push sent before the failure was sent again"
    assert len(driver.read_calls) == 1
    listing = await engine.listing("S")
    assert (listing.remote_qty, listing.dirty_since, listing.lease_owner) == (8, None, None)
    assert [m.reason for m in await engine.movements("S")] == ["restock", "adjustment"]


async def test_the_worker_loop_survives_an_unreachable_database(
    make_engine: MakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    failures = {"claim": 2, "next_due": 2}
    recovered = asyncio.Event()
    claim, next_due = ListingQueue.claim, ListingQueue.next_due

    async def flaky_claim(self: ListingQueue, *args: Any, **kwargs: Any) -> Any:
        if failures["claim"]:
            failures["claim"] -= 1
            raise ConnectionRefusedError(111, "Connect call failed")
        return await claim(self, *args, **kwargs)

    async def flaky_next_due(self: ListingQueue, *args: Any, **kwargs: Any) -> Any:
        if failures["next_due"]:
            failures["next_due"] -= 1
            raise pg_error("57P01", "terminating connection due to administrator command")
        if not any(failures.values()):
            recovered.set()
        return await next_due(self, *args, **kwargs)

    monkeypatch.setattr(ListingQueue, "claim", flaky_claim)
    monkeypatch.setattr(ListingQueue, "next_due", flaky_next_due)
    stop = asyncio.Event()
    loop = asyncio.create_task(engine.nexus.push_worker("m").run(stop))
    try:
        async with asyncio.timeout(10):
            await recovered.wait()
            await engine.nexus.product("S").adjust(-2)  # wakes the worker
            while (await engine.listing("S")).remote_qty != 8:
                assert not loop.done(), loop
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        engine.nexus.notify()
        await asyncio.wait_for(loop, 5)  # ended by `stop`, not by an exception
    assert database_errors(engine.nexus, "push_worker") == 4


# -- the webhook processor ------------------------------------------------------------------------


async def test_a_delivery_caught_in_a_deadlock_is_deferred_never_failed(
    make_nexus: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await build_hub(make_nexus)
    await hub.seed()
    d = delivery(sale(quantity=3), delivery_id="D1")
    receipt = await WebhookReceiver(hub.nexus).receive(CHANNEL, d.headers, d.body)
    assert receipt.log_id is not None
    max_attempts = hub.nexus.settings.worker.max_attempts

    async def deadlocked(*args: Any, **kwargs: Any) -> Any:
        raise pg_error(DEADLOCK, "deadlock detected")

    monkeypatch.setattr("nexus.webhooks.processor.apply_inbound", deadlocked)
    for _ in range(max_attempts + 1):
        assert await hub.processor.process(receipt.log_id) is Attempt.DEFERRED
    [row] = await hub.logs()
    assert row.status == "received" and row.next_attempt_at is not None
    assert "lock conflict" in (row.error or "")
    assert (await hub.item()).on_hand == 10

    monkeypatch.undo()
    assert await hub.processor.process(receipt.log_id) is Attempt.PROCESSED
    assert (await hub.item()).on_hand == 7


async def test_a_batch_that_loses_the_database_is_rolled_back_without_using_an_attempt(
    make_nexus: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await build_hub(make_nexus)
    await hub.seed()
    ids = []
    for n in (1, 2):
        d = delivery(sale(quantity=n, order_id=f"O{n}"), delivery_id=f"D{n}")
        receipt = await WebhookReceiver(hub.nexus).receive(CHANNEL, d.headers, d.body)
        assert receipt.log_id is not None
        ids.append(receipt.log_id)

    async def gone(*args: Any, **kwargs: Any) -> Any:
        raise pg_error("57P01", "terminating connection due to administrator command")

    monkeypatch.setattr("nexus.webhooks.processor.apply_inbound", gone)
    with pytest.raises(DBAPIError):
        await hub.processor.process_many(ids)
    assert [(row.status, row.attempts, row.error) for row in await hub.logs()] == [("received", 0, None)] * 2

    monkeypatch.undo()
    assert await hub.processor.process_pending() == 2
    assert (await hub.item()).on_hand == 7


async def test_a_batch_stops_at_a_lock_conflict_and_leaves_the_rest_due(
    make_nexus: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the deadlock waits for rows the batch holds: the batch commits at
    once instead of meeting it again at every following delivery."""
    hub = await build_hub(make_nexus)
    await hub.seed()
    ids = []
    for n in (1, 2):
        d = delivery(sale(quantity=n, order_id=f"O{n}"), delivery_id=f"D{n}")
        receipt = await WebhookReceiver(hub.nexus).receive(CHANNEL, d.headers, d.body)
        assert receipt.log_id is not None
        ids.append(receipt.log_id)

    async def deadlocked(*args: Any, **kwargs: Any) -> Any:
        raise pg_error(DEADLOCK, "deadlock detected")

    monkeypatch.setattr("nexus.webhooks.processor.apply_inbound", deadlocked)
    attempts = await hub.processor.process_many(ids)

    assert attempts == {ids[0]: Attempt.DEFERRED, ids[1]: Attempt.SKIPPED}
    first, second = await hub.logs()
    assert (first.status, first.attempts) == ("received", 1)
    assert (second.status, second.attempts, second.error) == ("received", 0, None)
    assert second.next_attempt_at is None  # due at once
