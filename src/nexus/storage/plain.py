"""Plain rows: some of a table's columns as the database holds them, converted by hand.

A push round reads and writes its 250 listing rows, about twenty columns each. Through the ORM,
or Core statements over the mapped table, SQLAlchemy runs a type processor on every value of
every row, and that cost more than the SQL itself (docs/benchmarks.md, section 1, finding 11).
`PlainColumns` is an untyped view of a table: statements over it take and return the driver's
own values, and it converts, in one pass per row, the few kinds whose stored form is not ours:
aware UTC datetimes, JSON documents and SQLite's integer booleans. It reads the kinds from the
mapped columns, so the model stays the one place that says what a column holds, and it agrees
with `UTCDateTime` and SQLAlchemy's JSON type (tests/storage/test_plain.py writes with one and
reads with the other, on both databases).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Connection, LargeBinary, Table, column, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.expression import ColumnClause, TableClause

from nexus.storage.models import UTCDateTime

Convert = Callable[[Any], Any]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


# What `isoformat` appends to a time in UTC: cut off when stored, put back when read, cheaper
# than building a naive copy and an aware copy (a round converts ~2,000 times).
_UTC_SUFFIX = "+00:00"
_STORED_LENGTH = len("2026-01-01 00:00:00.000000")


def _time_to_sqlite(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME storage format, which SQL comparisons of these strings rely on.
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = _aware(value)
    return value.isoformat(" ", "microseconds").removesuffix(_UTC_SUFFIX)


def _time_from_sqlite(value: str | None) -> datetime | None:
    if value is None:
        return None
    if len(value) == _STORED_LENGTH:  # as stored: "YYYY-MM-DD HH:MM:SS.ffffff", in UTC
        return datetime.fromisoformat(value + _UTC_SUFFIX)
    # Written by something else (a date, an offset, no microseconds): read as SQLAlchemy does.
    return _time_from_server(datetime.fromisoformat(value))


def _time_to_server(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _time_from_server(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _blob_to_sqlite(value: bytes | None) -> bytearray | None:
    return None if value is None else bytearray(value)


def _flag_to_sqlite(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _json_encoder() -> Callable[[Any], str]:
    """`json.dumps` with its defaults (as SQLAlchemy's JSON type stores documents), its C encoder
    built once: `json.dumps` builds a new one on every call, which for a webhook's dozen headers
    is a third of the encoding. No check for circular references (there are none in a row's
    values): a cycle ends in RecursionError instead of ValueError."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return json.dumps
    defaults = json.JSONEncoder()
    encode = make(
        None,  # markers: no circular check
        defaults.default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        defaults.key_separator,
        defaults.item_separator,
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    return lambda value: "".join(encode(value, 0))


_encode_json = _json_encoder()


def _document_to_text(value: Any) -> str:
    return _encode_json(value)  # None becomes JSON null, as SQLAlchemy's JSON type stores it


def _document_from_text(value: str | None) -> Any:
    if value == "{}":  # most listings' channel_meta, and a new listing's timeline
        return {}
    return None if value is None else json.loads(value)


@dataclass(frozen=True, slots=True)
class _Codec:
    to_db: dict[str, Convert]
    from_db: dict[str, Convert]


@dataclass(frozen=True)
class PlainColumns:
    """An untyped view (`view`) of the columns `names` of `mapped`, and the conversions of their
    values. Statements over `view` bind and return the driver's own values: `writer` and
    `value` convert what is bound, `reader` what is read."""

    mapped: Table
    names: tuple[str, ...]
    view: TableClause = field(init=False)
    _codecs: dict[bool, _Codec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "view", table(self.mapped.name, *(column(name) for name in self.names)))
        object.__setattr__(self, "_codecs", {sqlite: self._codec(sqlite) for sqlite in (True, False)})

    def _codec(self, sqlite: bool) -> _Codec:
        to_db: dict[str, Convert] = {}
        from_db: dict[str, Convert] = {}
        for name in self.names:
            kind = self.mapped.c[name].type
            if isinstance(kind, UTCDateTime):
                to_db[name] = _time_to_sqlite if sqlite else _time_to_server
                from_db[name] = _time_from_sqlite if sqlite else _time_from_server
            elif isinstance(kind, JSON):
                # asyncpg, as SQLAlchemy sets it up, takes JSON as text and gives it decoded.
                to_db[name] = _document_to_text
                if sqlite:
                    from_db[name] = _document_from_text
            elif isinstance(kind, LargeBinary) and sqlite:
                # Of the byte types the SQLite driver binds only bytearray without an adapter
                # lookup (one that fails, ~3,000 instructions); a copy of a body costs less.
                to_db[name] = _blob_to_sqlite
            elif isinstance(kind, Boolean) and sqlite:
                # bool is a subclass of int, which the SQLite driver binds only after a failed
                # adapter lookup (two attribute errors, ~6,000 instructions); an int binds at once.
                to_db[name] = _flag_to_sqlite
                from_db[name] = bool
        return _Codec(to_db, from_db)

    def columns(self, names: Sequence[str]) -> list[ColumnClause[Any]]:
        return [self.view.c[name] for name in names]

    def reader(self, session: AsyncSession, names: Sequence[str]) -> Callable[[Sequence[Any]], list[Any]]:
        """Turns a row of `columns(names)` into Python values."""
        from_db = self._codec_of(session).from_db
        converts = [from_db.get(name) for name in names]

        def read(row: Sequence[Any]) -> list[Any]:
            return [
                value if convert is None or value is None else convert(value)
                for convert, value in zip(converts, row, strict=True)
            ]

        return read

    def writer(self, bind: AsyncSession | Connection) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
        """Turns values of some of `names` into what the driver takes."""
        to_db = self._codec_of(bind).to_db

        def write(values: Mapping[str, Any]) -> dict[str, Any]:
            return {
                name: value if (convert := to_db.get(name)) is None else convert(value)
                for name, value in values.items()
            }

        return write

    def positional(
        self, bind: AsyncSession | Connection, order: Sequence[str]
    ) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
        """Turns values of (at least) the columns `order` into the driver's positional
        parameters, in that order: `writer` and the tuple in one pass. Values are taken all at
        once and only the few kinds that need it are converted (a webhook row has 13 columns and
        3 conversions: this is on every delivery's path, docs/benchmarks.md section 2)."""
        to_db = self._codec_of(bind).to_db
        take = _taker(order)
        converting = [
            (position, convert) for position, name in enumerate(order) if (convert := to_db.get(name))
        ]
        if not converting:
            return take

        def write(values: Mapping[str, Any]) -> tuple[Any, ...]:
            row = list(take(values))
            for position, convert in converting:
                row[position] = convert(row[position])
            return tuple(row)

        return write

    def value(self, session: AsyncSession, name: str, value: Any) -> Any:
        """One value of column `name` as the driver takes it (a bound parameter)."""
        convert = self._codec_of(session).to_db.get(name)
        return value if convert is None else convert(value)

    async def executemany(
        self, session: AsyncSession, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Run `statement` once per row of Python values (converted as `positional` does; names
        that are not columns pass as they are), handing the driver the compiled SQL and plain
        tuples: SQLAlchemy's executemany builds and processes a parameter set per row, which for
        a round's 250 rows cost as much as the UPDATE itself."""
        connection = await session.connection()
        dialect = connection.dialect
        compiled = _compiled.get((id(statement), dialect.name))
        if compiled is None:
            compiled = cast("SQLCompiler", statement.compile(dialect=dialect))
            _compiled[(id(statement), dialect.name)] = compiled
        order = compiled.positiontup
        if order is None:
            raise ValueError("a statement run with executemany must compile to positional parameters")
        parameters = self.positional(session, order)
        await connection.exec_driver_sql(compiled.string, [parameters(row) for row in rows])

    def _codec_of(self, bind: AsyncSession | Connection) -> _Codec:
        dialect = bind.dialect if isinstance(bind, Connection) else bind.get_bind().dialect
        return self._codecs[dialect.name == "sqlite"]


def _taker(order: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of the keys `order`, as a tuple (`itemgetter` of one key gives the bare value)."""
    if not order:
        return lambda values: ()
    if len(order) == 1:
        (name,) = order
        return lambda values: (values[name],)
    return cast("Callable[[Mapping[str, Any]], tuple[Any, ...]]", operator.itemgetter(*order))


# Compiled once per statement and dialect; the statements are module constants.
_compiled: dict[tuple[int, str], SQLCompiler] = {}
