"""batch progress: the increments push rounds record instead of updating the batch row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # No foreign key to nexus_sync_batches: see SyncBatchProgress in nexus.storage.models.
    op.create_table(
        "nexus_sync_batch_progress",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_nexus_sync_batch_progress"),
    )
    op.create_index(
        "ix_nexus_sync_batch_progress_batch_id", "nexus_sync_batch_progress", ["batch_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_nexus_sync_batch_progress_batch_id", table_name="nexus_sync_batch_progress")
    op.drop_table("nexus_sync_batch_progress")
