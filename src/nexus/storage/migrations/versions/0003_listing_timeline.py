"""listings keep the channel's timeline (docs/consistency.md) instead of one timestamp

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 02:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nexus_channel_mappings") as batch:
        batch.add_column(sa.Column("timeline", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("verify_pending", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.drop_column("remote_updated_at")


def downgrade() -> None:
    with op.batch_alter_table("nexus_channel_mappings") as batch:
        batch.add_column(sa.Column("remote_updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_column("verify_pending")
        batch.drop_column("timeline")
