"""What differs between SQLite and PostgreSQL and is not hidden by SQLAlchemy's core."""

from __future__ import annotations

from typing import Any


def upsert_insert(is_sqlite: bool) -> Any:
    """The dialect's `insert` construct, which has `on_conflict_do_update/nothing`."""
    if is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert

    return postgresql_insert
