"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:32:43.566905
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nexus_channel_mappings",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("syncable_type", sa.String(length=128), nullable=False),
        sa.Column("syncable_id", sa.String(length=128), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("remote_id", sa.String(length=255), nullable=False),
        sa.Column("remote_inventory_id", sa.String(length=255), nullable=True),
        sa.Column("remote_sku", sa.String(length=255), nullable=True),
        sa.Column("channel_meta", sa.JSON(), nullable=False),
        sa.Column("desired_qty", sa.Integer(), nullable=False),
        sa.Column("pushed_qty", sa.Integer(), nullable=True),
        sa.Column("remote_qty", sa.Integer(), nullable=True),
        sa.Column("remote_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("drift_qty", sa.Integer(), nullable=False),
        sa.Column("inflight_delta", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("dirty_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_channel_mappings")),
        sa.UniqueConstraint(
            "syncable_type", "syncable_id", "channel", name="uq_nexus_channel_mappings_syncable"
        ),
    )
    with op.batch_alter_table("nexus_channel_mappings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nexus_channel_mappings_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(
            "ix_nexus_channel_mappings_claim", ["channel", "priority", "dirty_since"], unique=False
        )
        batch_op.create_index(
            "ix_nexus_channel_mappings_inventory", ["channel", "remote_inventory_id"], unique=False
        )
        batch_op.create_index("ix_nexus_channel_mappings_remote", ["channel", "remote_id"], unique=False)
        batch_op.create_index("ix_nexus_channel_mappings_remote_sku", ["channel", "remote_sku"], unique=False)
        batch_op.create_index("ix_nexus_channel_mappings_sku", ["sku"], unique=False)

    op.create_table(
        "nexus_channels",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("driver", sa.String(length=64), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("credentials", sa.LargeBinary(), nullable=True),
        sa.Column("rate_limit", sa.JSON(), nullable=False),
        sa.Column("allocation", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_nexus_channels_name")),
    )
    op.create_table(
        "nexus_items",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("barcode", sa.String(length=64), nullable=True),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_items")),
        sa.UniqueConstraint("sku", name=op.f("uq_nexus_items_sku")),
    )
    with op.batch_alter_table("nexus_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nexus_items_barcode"), ["barcode"], unique=False)

    op.create_table(
        "nexus_rate_limit_logs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("throttled", sa.Integer(), nullable=False),
        sa.Column("waited_ms", sa.Float(), nullable=False),
        sa.Column("min_tokens", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_rate_limit_logs")),
        sa.UniqueConstraint("channel", "minute", name="uq_nexus_rate_limit_logs_minute"),
    )
    op.create_table(
        "nexus_stock_movements",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("on_hand_after", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=128), nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_stock_movements")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_nexus_stock_movements_idempotency_key")),
    )
    with op.batch_alter_table("nexus_stock_movements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nexus_stock_movements_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_nexus_stock_movements_sku"), ["sku"], unique=False)

    op.create_table(
        "nexus_sync_batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_sync_batches")),
    )
    op.create_table(
        "nexus_sync_jobs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_sync_jobs")),
    )
    with op.batch_alter_table("nexus_sync_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nexus_sync_jobs_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_nexus_sync_jobs_created_at"), ["created_at"], unique=False)

    op.create_table(
        "nexus_webhook_logs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=True),
        sa.Column("delivery_id", sa.String(length=255), nullable=True),
        sa.Column("event_id", sa.String(length=255), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_webhook_logs")),
        sa.UniqueConstraint("channel", "delivery_id", name="uq_nexus_webhook_logs_delivery"),
        sa.UniqueConstraint("channel", "event_id", name="uq_nexus_webhook_logs_event"),
    )
    with op.batch_alter_table("nexus_webhook_logs", schema=None) as batch_op:
        batch_op.create_index("ix_nexus_webhook_logs_pending", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_nexus_webhook_logs_received_at"), ["received_at"], unique=False)

    op.create_table(
        "nexus_dead_letter_queue",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("channel", sa.String(length=128), nullable=False),
        sa.Column("job_kind", sa.String(length=64), nullable=False),
        sa.Column("listing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("last_exception", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["listing_id"],
            ["nexus_channel_mappings.id"],
            name=op.f("fk_nexus_dead_letter_queue_listing_id_nexus_channel_mappings"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nexus_dead_letter_queue")),
    )
    with op.batch_alter_table("nexus_dead_letter_queue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nexus_dead_letter_queue_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_nexus_dead_letter_queue_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nexus_dead_letter_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nexus_dead_letter_queue_status"))
        batch_op.drop_index(batch_op.f("ix_nexus_dead_letter_queue_channel"))

    op.drop_table("nexus_dead_letter_queue")
    with op.batch_alter_table("nexus_webhook_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nexus_webhook_logs_received_at"))
        batch_op.drop_index("ix_nexus_webhook_logs_pending")

    op.drop_table("nexus_webhook_logs")
    with op.batch_alter_table("nexus_sync_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nexus_sync_jobs_created_at"))
        batch_op.drop_index(batch_op.f("ix_nexus_sync_jobs_channel"))

    op.drop_table("nexus_sync_jobs")
    op.drop_table("nexus_sync_batches")
    with op.batch_alter_table("nexus_stock_movements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nexus_stock_movements_sku"))
        batch_op.drop_index(batch_op.f("ix_nexus_stock_movements_created_at"))

    op.drop_table("nexus_stock_movements")
    op.drop_table("nexus_rate_limit_logs")
    with op.batch_alter_table("nexus_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nexus_items_barcode"))

    op.drop_table("nexus_items")
    op.drop_table("nexus_channels")
    with op.batch_alter_table("nexus_channel_mappings", schema=None) as batch_op:
        batch_op.drop_index("ix_nexus_channel_mappings_sku")
        batch_op.drop_index("ix_nexus_channel_mappings_remote_sku")
        batch_op.drop_index("ix_nexus_channel_mappings_remote")
        batch_op.drop_index("ix_nexus_channel_mappings_inventory")
        batch_op.drop_index("ix_nexus_channel_mappings_claim")
        batch_op.drop_index(batch_op.f("ix_nexus_channel_mappings_batch_id"))

    op.drop_table("nexus_channel_mappings")
