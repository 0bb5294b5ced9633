"""Engine and transactions.

SQLite (the embedded default) allows one writer at a time. Rather than let concurrent coroutines
collide on SQLITE_BUSY, every write transaction starts with BEGIN IMMEDIATE and, within one
process, waits its turn on an asyncio lock. PostgreSQL needs neither: row locks and
SKIP LOCKED do that work there.

`Database.run_sync_write` runs a whole write transaction as one synchronous function. On a SQLite
file it runs in a writer thread of its own, on a plain (pysqlite) connection, under the same
lock: one hop to a thread per transaction, where the async engine (aiosqlite) makes one per
statement, fetch and commit. The webhook group commit uses it (docs/benchmarks.md, section 2).

Two kinds of database error mean "try again later" rather than "this is wrong":

- `unavailable(exc)`: the server could not be reached or the connection broke (a restart, a
  network cut). The pool pings a connection before lending it (`pool_pre_ping`) and drops one
  that broke, so the next transaction gets a fresh connection once the server is back.
- `lock_conflict(exc)`: PostgreSQL chose the transaction as a deadlock's victim, or refused it
  for a serialization conflict; nothing it did was written. `Database.run` runs a transaction
  again when that happens (the one place such retries live).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from nexus.config import NexusSettings
from nexus.write_guard import writing

log = structlog.get_logger("nexus.database")

T = TypeVar("T")

# SQLSTATEs of a transaction PostgreSQL aborted for a lock conflict: running it again is safe.
LOCK_CONFLICT_STATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
# SQLSTATEs of a connection the server ended or refused for now: class 08 (connection exception),
# and 57P01-57P03 (terminated by an administrator, e.g. `pg_ctl stop -m fast`; crash; starting up).
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03"})
LOCK_CONFLICT_RETRIES = 5
# Values per `IN (...)` list: keeps parameter lists under every backend's limit.
IN_LIST_CHUNK = 500


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), exc):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def lock_conflict(exc: BaseException) -> bool:
    """PostgreSQL aborted the transaction for a deadlock or a serialization conflict."""
    return isinstance(exc, DBAPIError) and _sqlstate(exc) in LOCK_CONFLICT_STATES


def describe(exc: BaseException) -> str:
    """One line for a log: the driver's own message, without the statement and its parameters
    that SQLAlchemy appends (they may carry stored payloads)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {first[0] if first else ''}"


def unavailable(exc: BaseException) -> bool:
    """The database could not be reached, or the connection broke mid-transaction.

    Nothing the transaction did can be assumed written, and nothing can be assumed lost either
    (a COMMIT whose answer was lost may have landed): callers retry work that is safe to repeat.
    """
    if isinstance(exc, PendingRollbackError):
        return True  # a statement after the connection broke, inside the same transaction
    if isinstance(exc, PoolTimeout):
        return True  # every pooled connection stayed busy: nothing was started, so nothing is lost
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = _sqlstate(exc)
        if state is not None:
            return state.startswith("08") or state in _UNAVAILABLE_STATES
        return isinstance(exc, (OperationalError, InterfaceError))
    # Connecting raises the socket's own error (ConnectionRefusedError, a timeout), unwrapped.
    return isinstance(exc, (OSError, TimeoutError))


DEFAULT_POOL_SIZE: int = NexusSettings.model_fields["database_pool_size"].default


class Database:
    def __init__(self, url: str, *, echo: bool = False, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # No overflow: a connection opened beyond the pool's size is closed when it comes back,
            # so a process whose transactions often outnumber the pool opened and closed
            # connections all the time (a backend forked, its statements prepared again, each
            # time: docs/benchmarks.md section 6, finding 20). The pool is the process's cap.
            kwargs.update(pool_size=pool_size, max_overflow=0, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        # A SQLite file gets a synchronous engine too, for `run_sync_write`'s writer thread.
        self._thread_engine: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine.sync_engine)
            if parsed.database and parsed.database != ":memory:":
                self._thread_engine = create_engine(parsed.set(drivername="sqlite+pysqlite"), **kwargs)
                _configure_sqlite(self._thread_engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(
            self.engine.execution_options(nexus_read_only=True), expire_on_commit=False
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A read-write transaction: committed when the block ends, rolled back on error."""
        with writing():  # nothing slow may be awaited in here (`nexus.write_guard`)
            if self._write_lock is None:
                async with self.sessions() as session, session.begin():
                    yield session
                return
            async with self._write_lock, self.sessions() as session, session.begin():
                yield session

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session; under SQLite WAL it never waits for writers."""
        async with self._read_sessions() as session:
            yield session

    async def run_sync_write(self, work: Callable[[Connection], T]) -> T:
        """`work` in one read-write transaction, given a synchronous SQLAlchemy connection:
        committed when it returns, rolled back when it raises.

        On a SQLite file, `work` runs in the writer thread, holding the process's write lock
        until the transaction has ended, even when the caller is cancelled meanwhile. Elsewhere
        (PostgreSQL, in-memory SQLite) it runs on the async engine's connection
        (`AsyncConnection.run_sync`). `work` must do nothing but database work: in the thread it
        runs beside the event loop.
        """
        if self._thread_engine is None:
            async with self.transaction() as session:
                connection = await session.connection()
                return await connection.run_sync(work)
        engine = self._thread_engine

        def in_transaction() -> T:
            with engine.begin() as connection:
                return work(connection)

        assert self._write_lock is not None  # a SQLite database always has one
        async with self._write_lock:
            if self._writer_thread is None:
                self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="nexus-sqlite-writer")
            done = asyncio.get_running_loop().run_in_executor(self._writer_thread, in_transaction)
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                # The thread cannot be stopped mid-transaction: keep the lock until it has ended,
                # however often the caller is cancelled meanwhile.
                while not done.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait([done])
                if not done.cancelled():
                    done.exception()  # retrieved: nobody is left to see it
                raise

    async def run(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = LOCK_CONFLICT_RETRIES
    ) -> T:
        """`work` in one read-write transaction, run again from the start (a new session) when
        PostgreSQL aborts it for a deadlock or a serialization conflict, up to `attempts` times.

        `work` must be safe to run again: everything it wrote was rolled back, but whatever it
        changed in memory outside the session was not.
        """
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as session:
                    return await work(session)
            except DBAPIError as exc:
                if attempt == attempts or not lock_conflict(exc):
                    raise
                log.warning("transaction aborted by a lock conflict; running it again", attempt=attempt)
                # A short random pause: the other side of the deadlock finishes first.
                await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._write_lock is None or self._thread_engine is None:
            return
        async with self._write_lock:  # no transaction is in the writer thread, or queued for it
            writer, self._writer_thread = self._writer_thread, None
            if writer is not None:
                # The thread's connection is closed by the thread that opened it.
                await asyncio.get_running_loop().run_in_executor(writer, self._thread_engine.dispose)
                writer.shutdown()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed webhook delivery survives power loss, so a 200 is never premature.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get("nexus_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
