"""Plain rows (`nexus.storage.plain`) agree with the mapped column types both ways, on both
databases: what one writes the other reads back unchanged, and SQL compares their times alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Table, select, update

from nexus.storage.database import Database
from nexus.storage.models import ChannelMapping
from nexus.storage.plain import PlainColumns, _document_to_text

NAMES = ("id", "timeline", "verify_pending", "lease_until", "dirty_since", "remote_qty", "last_error")
PLAIN = PlainColumns(cast("Table", ChannelMapping.__table__), NAMES)
# Microseconds, none at all (SQLite stores those as text: the two must still sort alike), and
# a zone other than UTC.
WHEN = datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC)
ROUND = datetime(2026, 12, 3, 10, 0, 1, tzinfo=UTC)
ELSEWHERE = datetime(2026, 12, 3, 12, 0, 2, tzinfo=timezone(timedelta(hours=2)))
TIMELINE = {"pushed": {"at": "2026-12-03T10:00:00+00:00", "qty": 4}, "stamp": None, "ids": [1, 2]}


async def _listing(db: Database, **values: Any) -> int:
    async with db.transaction() as session:
        row = ChannelMapping(syncable_id="S1", sku="S1", channel="shop", remote_id="r1", **values)
        session.add(row)
        await session.flush()
        return row.id


async def test_values_the_model_wrote_read_back_plainly_as_the_same_python_values(db: Database) -> None:
    listing = await _listing(
        db, timeline=TIMELINE, verify_pending=True, lease_until=WHEN, dirty_since=ROUND, remote_qty=7
    )
    async with db.read() as session:
        read = PLAIN.reader(session, NAMES)
        row = (await session.execute(select(*PLAIN.columns(NAMES)).where(PLAIN.view.c.id == listing))).one()
        values = dict(zip(NAMES, read(row), strict=True))
    assert values == {
        "id": listing,
        "timeline": TIMELINE,
        "verify_pending": True,
        "lease_until": WHEN,
        "dirty_since": ROUND,
        "remote_qty": 7,
        "last_error": None,
    }
    assert values["lease_until"].tzinfo == UTC and values["verify_pending"] is True


async def test_values_written_plainly_read_back_through_the_model_and_compare_in_sql(db: Database) -> None:
    listing = await _listing(db)
    async with db.transaction() as session:
        write = PLAIN.writer(session)
        await session.execute(
            update(PLAIN.view)
            .where(PLAIN.view.c.id == listing)
            .values(
                write(
                    {
                        "timeline": TIMELINE,
                        "verify_pending": True,
                        "lease_until": ELSEWHERE,
                        "dirty_since": ROUND,
                        "last_error": "boom",
                    }
                )
            )
        )
    async with db.read() as session:
        row = (await session.execute(select(ChannelMapping).where(ChannelMapping.id == listing))).scalar_one()
        assert (row.timeline, row.verify_pending, row.last_error) == (TIMELINE, True, "boom")
        assert row.lease_until == ELSEWHERE and row.lease_until.tzinfo == UTC
        assert row.dirty_since == ROUND
        # Typed parameters against plainly written times: equal is equal, earlier is earlier.
        for condition in (
            ChannelMapping.dirty_since == ROUND,
            ChannelMapping.dirty_since < ROUND + timedelta(microseconds=1),
            ChannelMapping.dirty_since > ROUND - timedelta(microseconds=1),
            ChannelMapping.lease_until == ELSEWHERE,
        ):
            assert await session.scalar(select(ChannelMapping.id).where(condition)) == listing, condition
        # And the other way round: plain parameters against times the model wrote.
        plain = PLAIN.value(session, "dirty_since", ROUND)
        found = await session.scalar(select(PLAIN.view.c.id).where(PLAIN.view.c.dirty_since == plain))
        assert found == listing


async def test_a_naive_time_is_refused_as_the_model_refuses_it(db: Database) -> None:
    async with db.read() as session:
        with pytest.raises(ValueError, match="naive datetime"):
            PLAIN.value(session, "lease_until", datetime(2026, 12, 3, 10, 0, 0))


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-12-03 10:00:00.123456", WHEN),  # as Nexus and SQLAlchemy store it
        ("2026-12-03 10:00:01", ROUND),  # without microseconds (SQLite's own datetime())
        ("2026-12-03T12:00:01+02:00", ROUND),  # with an offset
        ("2026-12-03T10:00:01Z", ROUND),
        ("2026-12-03", datetime(2026, 12, 3, tzinfo=UTC)),  # SQLite's date()
    ],
)
async def test_a_time_stored_by_something_else_reads_as_aware_utc(
    tmp_path: Path, stored: str, expected: datetime
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}")
    try:
        async with db.read() as session:
            (read,) = PLAIN.reader(session, ["lease_until"])((stored,))
    finally:
        await db.dispose()
    assert read == expected and read.tzinfo is UTC


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_documents_are_stored_as_the_json_type_stores_them(value: Any) -> None:
    # The plain codec builds its encoder once; the text must stay what json.dumps (SQLAlchemy's
    # JSON type's serializer) writes, NaN and non-ASCII text included.
    assert _document_to_text(value) == json.dumps(value)


def test_a_document_that_is_not_json_is_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        _document_to_text({"when": object()})
