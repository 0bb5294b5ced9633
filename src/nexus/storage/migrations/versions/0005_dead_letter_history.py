"""dead letters you can work: the status history of each dead letter, and dead letters by listing

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite only autoincrements INTEGER


def upgrade() -> None:
    op.create_index(
        "ix_nexus_dead_letter_queue_listing_id", "nexus_dead_letter_queue", ["listing_id"], unique=False
    )
    op.create_table(
        "nexus_dead_letter_history",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "dead_letter_id",
            BIG_ID,
            sa.ForeignKey(
                "nexus_dead_letter_queue.id",
                ondelete="CASCADE",
                name="fk_nexus_dead_letter_history_letter",
            ),
            nullable=False,
        ),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_nexus_dead_letter_history"),
    )
    op.create_index(
        "ix_nexus_dead_letter_history_dead_letter_id",
        "nexus_dead_letter_history",
        ["dead_letter_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_nexus_dead_letter_history_dead_letter_id", "nexus_dead_letter_history")
    op.drop_table("nexus_dead_letter_history")
    op.drop_index("ix_nexus_dead_letter_queue_listing_id", "nexus_dead_letter_queue")
