"""access: API/dashboard tokens (hashed), dashboard sessions, and the operator action log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "nexus_api_tokens",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_nexus_api_tokens"),
        sa.UniqueConstraint("name", name="uq_nexus_api_tokens_name"),
        sa.UniqueConstraint("secret_hash", name="uq_nexus_api_tokens_secret_hash"),
    )
    op.create_table(
        "nexus_dashboard_sessions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("token_id", BigId, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_nexus_dashboard_sessions"),
        sa.UniqueConstraint("secret_hash", name="uq_nexus_dashboard_sessions_secret_hash"),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["nexus_api_tokens.id"],
            name="fk_nexus_dashboard_sessions_token_id_nexus_api_tokens",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_nexus_dashboard_sessions_token_id", "nexus_dashboard_sessions", ["token_id"], unique=False
    )
    op.create_table(
        "nexus_operator_actions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_nexus_operator_actions"),
    )
    op.create_index("ix_nexus_operator_actions_at", "nexus_operator_actions", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_nexus_operator_actions_at", table_name="nexus_operator_actions")
    op.drop_table("nexus_operator_actions")
    op.drop_index("ix_nexus_dashboard_sessions_token_id", table_name="nexus_dashboard_sessions")
    op.drop_table("nexus_dashboard_sessions")
    op.drop_table("nexus_api_tokens")
