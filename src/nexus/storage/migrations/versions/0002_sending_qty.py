"""listings remember the quantity in flight

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 10:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nexus_channel_mappings") as batch:
        batch.add_column(sa.Column("sending_qty", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nexus_channel_mappings") as batch:
        batch.drop_column("sending_qty")
