"""batches queued a chunk at a time: when a batch being marked last queued a chunk

A catalog sync queued every listing in one transaction: 0.9 s for 100,000 listings on SQLite,
during which the store's full bucket went unused and no push could start (docs/benchmarks.md,
section 1). A batch is now `marking` while its listings are queued a chunk at a time, pushed
meanwhile; `marked_at` tells a marking that stalled (its process died) from one under way.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "nexus_sync_batches"
INDEX = "ix_nexus_sync_batches_marking"
MARKING = "status = 'marking'"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("marked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        INDEX,
        TABLE,
        ["marked_at"],
        unique=False,
        sqlite_where=sa.text(MARKING),
        postgresql_where=sa.text(MARKING),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    op.drop_column(TABLE, "marked_at")
