"""the claim index holds queued listings only

The claim reads the oldest queued listings of a channel in (priority, dirty_since) order. The
index on (channel, priority, dirty_since) held every listing, the clean ones (dirty_since NULL)
first within each priority, so a claim stepped over every clean listing of the channel before
the first queued one: 12 ms a claim with 90,000 of 100,000 listings clean, on every round of a
catalog sync and of day-to-day pushes (docs/benchmarks.md, section 1, finding 12). A partial
index of the queued listings is as small as the queue.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "nexus_channel_mappings"
INDEX = "ix_nexus_channel_mappings_claim"
COLUMNS = ["channel", "priority", "dirty_since"]
QUEUED = "dirty_since IS NOT NULL AND failed_at IS NULL"


def upgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    op.create_index(
        INDEX, TABLE, COLUMNS, unique=False, sqlite_where=sa.text(QUEUED), postgresql_where=sa.text(QUEUED)
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    op.create_index(INDEX, TABLE, COLUMNS, unique=False)
