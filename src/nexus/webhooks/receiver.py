"""Ingesting webhook deliveries: verify, store durably, deduplicate, answer.

    receiver = WebhookReceiver(nexus)
    receipt = await receiver.receive(channel, headers, body_chunks)   # -> Receipt(status_code, ...)

The checks, in order; every refusal is written to `nexus_webhook_logs` with status "rejected":

    404  the channel is not configured (or is disabled)
    413  Content-Length over the channel's `webhook_max_bytes`, or the stream runs past it
         (at most limit + 1 bytes are ever held; the row keeps the body cut to the limit)
    500  the channel's driver cannot be built, or raised something that is not a WebhookError
    401  driver.verify_webhook refuses (missing or wrong signature; the driver compares in
         constant time)
    400  driver.describe_webhook or driver.parse_webhook refuses the body, or a body declared
         JSON (Content-Type) is not JSON

A delivery that passes is inserted with status "received" and committed before `receive`
returns, so a 200 is never sent for a delivery that could still be lost. Duplicates (the same
delivery id or event id on the channel) meet a unique constraint (insert ... on conflict do
nothing), are answered 200 and add no row. Parsing at ingest only decides the 400; the stock
changes are made later from the stored row (`nexus.webhooks.processor`).

A rejected row never fills the `delivery_id` / `event_id` columns (the ids stay visible in
`headers`): a forged request carrying a real delivery id cannot take the unique slot of the real
delivery.

Writes are group-committed: inserts that arrive while a transaction is committing share the next
one (one fsync for many deliveries), and each caller still returns only after its own row is
durable. On a SQLite file the group's transaction runs in the database's writer thread
(`Database.run_sync_write`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import ColumnDefault

from nexus.config import ChannelConfig
from nexus.domain.vocabulary import WebhookStatus
from nexus.drivers.contract import WebhookMeta, WebhookRequest
from nexus.errors import WebhookError, WebhookPayloadError
from nexus.masking import MASK, is_secret_key
from nexus.storage.database import Database
from nexus.storage.models import WebhookLog, utcnow
from nexus.storage.plain import PlainColumns

if TYPE_CHECKING:
    from nexus.engine import Nexus

log = structlog.get_logger("nexus.webhooks")

# Receipt.outcome values
ACCEPTED = "accepted"
DUPLICATE = "duplicate"

DEFAULT_MAX_BYTES: int = ChannelConfig.model_fields["webhook_max_bytes"].default
ID_MAX_LENGTH = 255  # WebhookLog.delivery_id / event_id
TOPIC_MAX_LENGTH = 128
CHANNEL_MAX_LENGTH = 128
ERROR_MAX_LENGTH = 2000

# The statuses as plain str: the SQLite driver binds a str subclass (an enum member) only after a
# failed adapter lookup, ~6,000 instructions a row.
_RECEIVED: str = WebhookStatus.RECEIVED.value
_REJECTED: str = WebhookStatus.REJECTED.value

# A delivery's headers as a mapping, as (name, value) pairs, or as an ASGI scope's raw pairs.
Headers = Mapping[str, str] | Iterable[tuple[str, str]] | Iterable[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What `receive` decided. `outcome` is "accepted" (a new row), "duplicate" or "rejected"."""

    channel: str
    status_code: int
    outcome: str
    log_id: int | None = None
    meta: WebhookMeta | None = None
    error: str | None = None

    @property
    def stored(self) -> bool:
        """A new row was stored and awaits processing."""
        return self.outcome == ACCEPTED and self.log_id is not None

    def as_json(self) -> dict[str, Any]:
        if self.outcome == WebhookStatus.REJECTED:
            return {"status": WebhookStatus.REJECTED, "error": self.error}
        return {"status": self.outcome, "id": self.log_id}


class WebhookReceiver:
    """Framework-free ingestion; `nexus.web` feeds it the request's headers and body stream."""

    def __init__(self, nexus: Nexus, *, max_batch: int = 256) -> None:
        self.nexus = nexus
        self._writer = GroupWriter(nexus.db, max_batch=max_batch)

    async def turn(self) -> None:
        """Wait until the deliveries now waiting for a commit have theirs (`GroupWriter.turn`)."""
        await self._writer.turn()

    async def receive(
        self,
        channel: str,
        headers: Headers,
        body: AsyncIterable[bytes] | bytes,
    ) -> Receipt:
        received_at = utcnow()
        lowered = normalize_headers(headers)
        config = self.nexus.settings.channels.get(channel)
        if config is None or not config.enabled:
            data, _ = await _read_body(lowered, body, DEFAULT_MAX_BYTES)
            why = "is disabled" if config is not None else "is not configured"
            return await self._reject(channel, 404, f"channel {channel!r} {why}", lowered, data, received_at)

        data, too_large = await _read_body(lowered, body, config.webhook_max_bytes)
        meta: WebhookMeta | None = None  # known once the delivery is verified and described

        async def refuse(status_code: int, error: str, *, verified: bool = False) -> Receipt:
            topic = meta.topic if meta is not None else None
            return await self._reject(
                channel, status_code, error, lowered, data, received_at, verified=verified, topic=topic
            )

        if too_large is not None:
            return await refuse(413, too_large)
        try:
            driver = self.nexus.channel(channel).driver
        except Exception as exc:
            log.exception("webhook channel cannot be built", channel=channel)
            return await refuse(500, f"channel cannot be built: {_describe(exc)}")

        request = WebhookRequest(channel=channel, headers=lowered, body=data, received_at=received_at)
        try:
            await driver.verify_webhook(request)
        except WebhookError as exc:
            return await refuse(exc.status_code, str(exc) or "signature refused")
        except Exception as exc:
            log.exception("driver failed to verify a webhook", channel=channel)
            return await refuse(500, f"verification failed: {_describe(exc)}")

        try:
            meta = driver.describe_webhook(request)
            _check_meta(meta)
            _check_json(request)
            driver.parse_webhook(request)  # parsed again, from the stored row, when processed
        except WebhookError as exc:
            return await refuse(exc.status_code, str(exc) or "payload refused", verified=True)
        except Exception as exc:
            log.exception("driver failed to read a webhook", channel=channel)
            return await refuse(500, f"parsing failed: {_describe(exc)}", verified=True)

        log_id = await self._writer.insert(
            {
                "channel": channel,
                "topic": meta.topic[:TOPIC_MAX_LENGTH] if meta.topic else None,
                "delivery_id": meta.delivery_id,
                "event_id": meta.event_id,
                "verified": True,
                "status": _RECEIVED,
                "http_status": 200,
                "headers": _masked(lowered),
                "body": data,
                "attempts": 0,
                "received_at": received_at,
                # next_attempt_at and error are left out, so NULL: a None binds slowly on SQLite
            }
        )
        self.nexus.metrics.webhook_received(channel, meta.topic, duplicate=log_id is None)
        if log_id is None:
            log.debug(
                "duplicate webhook", channel=channel, delivery_id=meta.delivery_id, event_id=meta.event_id
            )
            return Receipt(channel, 200, DUPLICATE, meta=meta)
        return Receipt(channel, 200, ACCEPTED, log_id=log_id, meta=meta)

    async def _reject(
        self,
        channel: str,
        status_code: int,
        error: str,
        headers: Mapping[str, str],
        body: bytes,
        received_at: datetime,
        *,
        verified: bool = False,
        topic: str | None = None,
    ) -> Receipt:
        values = {
            "channel": channel[:CHANNEL_MAX_LENGTH],
            "topic": topic[:TOPIC_MAX_LENGTH] if topic else None,
            # delivery_id / event_id stay NULL on purpose: see the module docstring.
            "delivery_id": None,
            "event_id": None,
            "verified": verified,
            "status": _REJECTED,
            "http_status": status_code,
            "headers": _masked(headers),
            "body": body,
            "attempts": 0,
            "received_at": received_at,
            "error": error[:ERROR_MAX_LENGTH],
        }
        log_id: int | None = None
        try:
            log_id = await self._writer.insert(values)
        except Exception:
            # The refusal is the right answer whether or not it could be logged.
            log.exception("could not log a refused webhook", channel=channel)
        log.info("webhook refused", channel=channel, status=status_code, error=error)
        self.nexus.metrics.webhook_rejected(channel, topic, status_code)
        return Receipt(channel, status_code, WebhookStatus.REJECTED, log_id=log_id, error=error)


class GroupWriter:
    """Group commit for webhook log rows.

    `insert` queues a row and waits. One flusher task writes everything queued in one transaction;
    rows queued meanwhile go into the next one. Under load many deliveries share one commit;
    alone, a delivery costs one transaction, as it would without the writer.
    Returns the new row's id, or None when a unique constraint already holds the row (a duplicate).
    """

    def __init__(self, db: Database, *, max_batch: int = 256) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: list[tuple[dict[str, Any], asyncio.Future[int | None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._committed = asyncio.Event()  # set (and cleared) after every group is written

    @property
    def busy(self) -> bool:
        """Rows are queued or being written: callers are waiting for a commit."""
        return bool(self._queue) or (self._flusher is not None and not self._flusher.done())

    async def turn(self) -> None:
        """Return at once when idle, else after the group being written (or queued) is committed:
        other writers call this between their transactions so that ingestion goes first."""
        if self.busy:
            await self._committed.wait()

    async def insert(self, values: dict[str, Any]) -> int | None:
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.append((values, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="nexus-webhook-writer")
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: len(batch)]
            try:
                ids = await self._write([values for values, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                # One bad row must not fail the others: write them one by one.
                for values, future in batch:
                    try:
                        (row_id,) = await self._write([values])
                    except Exception as single:
                        _settle(future, single)
                    else:
                        _settle(future, row_id)
                continue
            for (_, future), row_id in zip(batch, ids, strict=True):
                _settle(future, row_id)
            self._committed.set()
            self._committed.clear()

    async def _write(self, rows: Sequence[dict[str, Any]]) -> list[int | None]:
        """Insert `rows` in one transaction; each row's new id, or None for a duplicate."""
        return await self._db.run_sync_write(functools.partial(_insert_rows, rows))


def _insert_rows(rows: Sequence[dict[str, Any]], connection: Connection) -> list[int | None]:
    """PostgreSQL: one executemany per set of keys (accepted rows share one set, a rejected row
    adds `error`, so a group is one statement, two when it holds a refusal): SQLAlchemy's
    "insertmanyvalues" sends it as multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING`
    statements, one round trip for the group instead of one per row.

    SQLite runs in this process, so a statement per row costs no round trip: each row is one
    execution of a prepared statement on the driver's own cursor (the new id is its
    `lastrowid`), its values converted by the plain view of the table (`nexus.storage.plain`),
    without SQLAlchemy's processing of every parameter of every row (~15 % of a delivery's cost
    at ingest, docs/benchmarks.md section 2)."""
    if connection.dialect.name == "sqlite":
        return _insert_each(rows, connection)
    ids: list[int | None] = [None] * len(rows)
    for positions in _by_keys(rows):
        part = [rows[i] for i in positions]
        returned = connection.execute(_SERVER_INSERT, part).all()
        for i, row_id in zip(positions, _match(part, returned), strict=True):
            ids[i] = row_id
    return ids


def _insert_each(rows: Sequence[dict[str, Any]], connection: Connection) -> list[int | None]:
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None  # an open connection in its transaction
    cursor = dbapi.cursor()
    dbapi_error: type[Exception] = connection.dialect.loaded_dbapi.Error
    try:
        ids: list[int | None] = []
        statements: dict[
            tuple[str, ...], tuple[str, Callable[[Mapping[str, Any]], tuple[Any, ...]], Defaults]
        ] = {}
        for values in rows:
            keys = tuple(values)  # the receiver's rows share one key order: cheaper than a set
            if keys not in statements:
                sql, order, defaults = _plain_insert(frozenset(keys))
                statements[keys] = sql, _PLAIN.positional(connection, order), defaults
            sql, parameters, defaults = statements[keys]
            if defaults:
                values = {**{name: make() for name, make in defaults}, **values}
            try:
                cursor.execute(sql, parameters(values))
            except dbapi_error as exc:
                # Raised as SQLAlchemy raises a driver's error, so `unavailable()` and every
                # caller see the same exceptions on both paths (a full disk is a 503, not a 500).
                raise DBAPIError.instance(
                    sql, None, exc, dbapi_error, hide_parameters=True, dialect=connection.dialect
                ) from None
            # One row inserted, or none when ON CONFLICT skipped it (a duplicate): then
            # `lastrowid` still names an earlier row, so only a count of 1 makes it this row's id.
            ids.append(cursor.lastrowid if cursor.rowcount == 1 else None)
        return ids
    finally:
        cursor.close()


_TABLE = cast("Table", WebhookLog.__table__)
_PLAIN = PlainColumns(_TABLE, tuple(_TABLE.c.keys()))
# `ON CONFLICT DO NOTHING` without a target covers both unique constraints (delivery, event).
_SERVER_INSERT = (
    postgresql.insert(_TABLE)
    .on_conflict_do_nothing()
    .returning(_TABLE.c.id, _TABLE.c.channel, _TABLE.c.delivery_id, _TABLE.c.event_id)
)


Defaults = tuple[tuple[str, Callable[[], Any]], ...]


@functools.cache
def _plain_insert(keys: frozenset[str]) -> tuple[str, tuple[str, ...], Defaults]:
    """SQLite's `INSERT ... ON CONFLICT DO NOTHING` of one row with `keys` (no RETURNING: the
    cursor's `lastrowid` costs less than a result row): the SQL, the order of its positional
    parameters, and the model's Python-side defaults of the columns `keys` lacks (which
    SQLAlchemy would have filled in)."""
    defaults = tuple(
        (column.name, _default_of(column.default))
        for column in _TABLE.c
        if column.name not in keys and isinstance(column.default, ColumnDefault)
    )
    columns = sorted(keys | {name for name, _ in defaults})
    statement = (
        sqlite.insert(_PLAIN.view)
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_nothing()
    )
    compiled = statement.compile(dialect=sqlite.dialect())
    assert compiled.positiontup is not None  # SQLite's paramstyle is positional
    return compiled.string, tuple(compiled.positiontup), defaults


def _default_of(default: ColumnDefault) -> Callable[[], Any]:
    if default.is_callable:
        return functools.partial(default.arg, None)  # SQLAlchemy's wrapper takes an execution context
    value = default.arg
    return lambda: value


def _by_keys(rows: Sequence[dict[str, Any]]) -> list[list[int]]:
    """Positions of `rows`, grouped by their set of keys (one executemany each), first seen first."""
    groups: dict[frozenset[str], list[int]] = {}
    for i, values in enumerate(rows):
        groups.setdefault(frozenset(values), []).append(i)
    return list(groups.values())


def _match(rows: Sequence[dict[str, Any]], returned: Sequence[Any]) -> list[int | None]:
    """Each row's id from the rows RETURNING reported, None for a row the conflict clause skipped.

    The statement inserts the rows in the order given, and the ids it assigns grow with that order
    (SQLite: max(rowid) + 1 under the writer's lock; PostgreSQL: one nextval per row, in order),
    so the returned rows sorted by id are the inserted rows, a subsequence of `rows` in order.
    Of two rows with the same (channel, delivery id, event id) only the first can be inserted: the
    second meets the first's unique constraint, or the same one the first met."""
    inserted = sorted(returned, key=lambda r: r[0])
    ids: list[int | None] = []
    n = 0
    for values in rows:
        if n < len(inserted) and tuple(inserted[n][1:]) == _identity(values):
            ids.append(inserted[n][0])
            n += 1
        else:
            ids.append(None)
    if n != len(inserted):  # cannot happen while the reasoning above holds; never guess an id
        raise RuntimeError(f"{len(inserted) - n} inserted webhook rows could not be matched to their callers")
    return ids


def _identity(values: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return values.get("channel"), values.get("delivery_id"), values.get("event_id")


def _settle(future: asyncio.Future[int | None], outcome: int | BaseException | None) -> None:
    if future.done():  # the caller went away (cancelled); the row is written all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def normalize_headers(headers: Headers) -> dict[str, str]:
    """Lower-cased names in the order they came; of a repeated header the first value wins.
    Takes a mapping, name and value pairs, or an ASGI scope's raw `headers` (bytes, decoded as
    latin-1 as HTTP/1.1 and Starlette do): the web route hands those over as they are."""
    # `items` rather than isinstance(headers, Mapping): an ABC check costs more than the rest.
    pairs = list(headers.items() if hasattr(headers, "items") else headers)
    if pairs and isinstance(pairs[0][0], bytes):
        raw = cast("list[tuple[bytes, bytes]]", pairs)
        lowered = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
        if len(lowered) == len(raw):
            return lowered
        texts = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
    else:
        texts = cast("list[tuple[str, str]]", pairs)
        lowered = {name.lower(): value for name, value in texts}
        if len(lowered) == len(texts):
            return lowered
    # A repeated name, whose last value the comprehension kept: built again, first value first.
    lowered.clear()
    for name, value in texts:
        lowered.setdefault(name.lower(), value)
    return lowered


async def read_limited(chunks: AsyncIterable[bytes], limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` + 1 bytes. Returns the body cut to `limit` and whether it was longer."""
    parts: list[bytes] = []
    size = 0
    finished = False
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                parts.append(chunk[: len(chunk) - (size - limit - 1)])  # limit + 1 bytes held in all
                return b"".join(parts)[:limit], True
            parts.append(chunk)
        finished = True
    finally:
        if not finished:  # stopped early: close the stream now (an exhausted one needs nothing)
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
    return b"".join(parts), False  # a body in one chunk is that chunk, not a copy


async def _read_body(
    headers: Mapping[str, str], body: AsyncIterable[bytes] | bytes, limit: int
) -> tuple[bytes, str | None]:
    """The body and, when it is over `limit`, why. Content-Length is believed before any byte is read."""
    declared = _content_length(headers)
    if declared is not None and declared > limit:
        return b"", f"Content-Length {declared} exceeds the limit of {limit} bytes"
    if isinstance(body, bytes):
        data, too_large = body[:limit], len(body) > limit
    else:
        data, too_large = await read_limited(body, limit)
    return data, f"body exceeds the limit of {limit} bytes" if too_large else None


def _content_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None  # the server already refuses a malformed length; count the bytes instead


def _check_meta(meta: WebhookMeta) -> None:
    if meta.delivery_id is not None and len(meta.delivery_id) > ID_MAX_LENGTH:
        raise WebhookPayloadError(f"delivery id is longer than {ID_MAX_LENGTH} characters")
    if meta.event_id is not None and len(meta.event_id) > ID_MAX_LENGTH:
        raise WebhookPayloadError(f"event id is longer than {ID_MAX_LENGTH} characters")


def _check_json(request: WebhookRequest) -> None:
    if _declares_json(request.headers.get("content-type")):
        request.json()


@functools.lru_cache(maxsize=64)
def _declares_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _masked(headers: Mapping[str, str]) -> dict[str, Any]:
    # Header values are strings, never nested: the flat form of `mask_secrets`, on every delivery.
    masked = dict(headers)
    for name in _secret_names(tuple(headers)):
        masked[name] = MASK
    return masked


@functools.lru_cache(maxsize=256)
def _secret_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """Which of `names` are masked. A channel sends the same headers in the same order on every
    delivery, so this is decided once per channel rather than once per header per delivery."""
    return tuple(name for name in names if is_secret_key(name))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
