"""reconciliation: when each listing was last read back, and conflicts left to a person

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 05:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite only autoincrements INTEGER


def upgrade() -> None:
    with op.batch_alter_table("nexus_channel_mappings") as batch:
        batch.add_column(sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "nexus_conflicts",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column(
            "listing_id",
            BIG_ID,
            sa.ForeignKey("nexus_channel_mappings.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("believed", sa.Integer(), nullable=True),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("desired", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_nexus_conflicts_channel", "nexus_conflicts", ["channel"])
    op.create_index("ix_nexus_conflicts_status", "nexus_conflicts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_nexus_conflicts_status", "nexus_conflicts")
    op.drop_index("ix_nexus_conflicts_channel", "nexus_conflicts")
    op.drop_table("nexus_conflicts")
    with op.batch_alter_table("nexus_channel_mappings") as batch:
        batch.drop_column("reconciled_at")
