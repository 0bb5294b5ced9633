"""the claim index holds the claim's whole order

The claim takes a channel's queued listings in (priority, dirty_since, id) order. The index held
(channel, priority, dirty_since): SQLite's indexes end with the rowid, which `id` is, so there the
index gave the whole order; PostgreSQL's do not, so it read every queued listing of the channel
that shared the first listing's priority and dirty_since and sorted them to take one round. A
catalog sync queues a channel's listings in one statement, all with one dirty_since: 12 ms a claim
with 8,000 queued, against 0.2 ms when the index ends with `id` (docs/benchmarks.md, section 6,
finding 21).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 02:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "nexus_channel_mappings"
INDEX = "ix_nexus_channel_mappings_claim"
QUEUED = "dirty_since IS NOT NULL AND failed_at IS NULL"


def _create(columns: list[str]) -> None:
    op.create_index(
        INDEX, TABLE, columns, unique=False, sqlite_where=sa.text(QUEUED), postgresql_where=sa.text(QUEUED)
    )


def upgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    _create(["channel", "priority", "dirty_since", "id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    _create(["channel", "priority", "dirty_since"])
