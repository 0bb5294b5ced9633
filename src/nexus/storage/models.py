"""Tables (all prefixed `nexus_`). The queue of pending pushes *is* `channel_mappings`: a listing
is dirty while `dirty_since` is set, so a crash loses nothing and fifty sales coalesce into one push."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from nexus.domain.vocabulary import BatchState, ConflictStatus, DeadLetterStatus, Priority


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only autoincrements INTEGER keys


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Item(Base):
    __tablename__ = "nexus_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(512), default="")
    barcode: Mapped[str | None] = mapped_column(String(64), index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StockMovement(Base):
    __tablename__ = "nexus_stock_movements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(255), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(128))
    reference: Mapped[str | None] = mapped_column(String(255))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Channel(Base):
    __tablename__ = "nexus_channels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    driver: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Credentials stay in the environment (config `env:NAME`); this column holds encrypted values
    # for deployments that store them in the database instead.
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    rate_limit: Mapped[dict[str, Any]] = mapped_column(default=dict)
    allocation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def queued_listing(listings: Any) -> list[ColumnElement[bool]]:
    """Queued for a push: the rows the claim index holds, and what `nexus.sync.queue` claims.
    One definition for both, since the planner uses a partial index only for a query whose
    WHERE implies its predicate. `listings`: the mapped class or a table's columns."""
    return [listings.dirty_since.is_not(None), listings.failed_at.is_(None)]


class ChannelMapping(Base):
    """A listing: one SKU on one channel, with the quantities that decide whether it needs a push.

    desired_qty     what the channel should show: allocate(on_hand - reserved, rule)
    remote_qty      what Nexus believes the channel shows now; None when unknown
    pushed_qty      the quantity of our last acknowledged push
    drift_qty       units booked from the channel's levels that no order has explained yet; an
                    order that arrives later is absorbed by it instead of being counted twice
    timeline        the rest of the belief about the channel's timeline (nexus.domain.belief)
    verify_pending  the belief is in doubt: the listing is pushed (compare-and-set) or read back
                    even when desired equals remote
    dirty_since     set while the listing needs a push; the claim order is (priority, dirty_since)
    """

    __tablename__ = "nexus_channel_mappings"
    __table_args__ = (
        UniqueConstraint(
            "syncable_type", "syncable_id", "channel", name="uq_nexus_channel_mappings_syncable"
        ),
        Index("ix_nexus_channel_mappings_remote", "channel", "remote_id"),
        Index("ix_nexus_channel_mappings_inventory", "channel", "remote_inventory_id"),
        Index("ix_nexus_channel_mappings_remote_sku", "channel", "remote_sku"),
        Index("ix_nexus_channel_mappings_sku", "sku"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    syncable_type: Mapped[str] = mapped_column(String(128), default="nexus_item")
    syncable_id: Mapped[str] = mapped_column(String(128))
    sku: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(128))
    remote_id: Mapped[str] = mapped_column(String(255))
    remote_inventory_id: Mapped[str | None] = mapped_column(String(255))
    remote_sku: Mapped[str | None] = mapped_column(String(255))
    channel_meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    desired_qty: Mapped[int] = mapped_column(Integer, default=0)
    pushed_qty: Mapped[int | None] = mapped_column(Integer)
    remote_qty: Mapped[int | None] = mapped_column(Integer)
    drift_qty: Mapped[int] = mapped_column(Integer, default=0)
    timeline: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    verify_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Sales the channel reported while a push to it was in flight; added to the acknowledged quantity.
    inflight_delta: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, default=Priority.NORMAL)
    dirty_since: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    failed_at: Mapped[datetime | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column()
    # What the lease holder is sending. Kept after a crash: the next worker reads the channel and
    # does not push again a quantity that already landed.
    sending_qty: Mapped[int | None] = mapped_column(Integer)
    last_synced_at: Mapped[datetime | None] = mapped_column()
    # When the reconciler last read the listing back; the oldest are read first.
    reconciled_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# Queued listings only (migration 0009): the claim must not step over the clean ones. In the
# claim's whole order, id last (migration 0011): else PostgreSQL sorts every listing that shares
# the first one's dirty_since, a whole catalog sync's worth, to take one round.
_QUEUED = queued_listing(ChannelMapping.__table__.c)
Index(
    "ix_nexus_channel_mappings_claim",
    ChannelMapping.__table__.c.channel,
    ChannelMapping.__table__.c.priority,
    ChannelMapping.__table__.c.dirty_since,
    ChannelMapping.__table__.c.id,
    sqlite_where=and_(*_QUEUED),
    postgresql_where=and_(*_QUEUED),
)


class SyncBatch(Base):
    __tablename__ = "nexus_sync_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=BatchState.RUNNING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    # While `marking`: when the last chunk of its listings was queued (`nexus.sync.batches`).
    marked_at: Mapped[datetime | None] = mapped_column()


# Batches being marked only (migration 0010): what the look for stranded markings reads.
_MARKING = SyncBatch.__table__.c.status == BatchState.MARKING.value
Index(
    "ix_nexus_sync_batches_marking",
    SyncBatch.__table__.c.marked_at,
    sqlite_where=_MARKING,
    postgresql_where=_MARKING,
)


class SyncBatchProgress(Base):
    """Members of a batch that a push round finished, not yet folded into the batch's counts
    (`nexus.sync.batches`). No foreign key to the batch: its check would share-lock the batch row
    inside every push round, the very wait these rows exist to avoid."""

    __tablename__ = "nexus_sync_batch_progress"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(36), index=True)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncJob(Base):
    """The audit row of one push request to a channel."""

    __tablename__ = "nexus_sync_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(128), index=True)
    batch_id: Mapped[str | None] = mapped_column(String(36))
    count: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    duration_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DeadLetter(Base):
    __tablename__ = "nexus_dead_letter_queue"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(128), index=True)
    job_kind: Mapped[str] = mapped_column(String(64))
    listing_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("nexus_channel_mappings.id", ondelete="SET NULL"), index=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_exception: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=DeadLetterStatus.FAILED, index=True)
    failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()


class DeadLetterHistory(Base):
    """One status change of a dead letter: failed -> replaying -> resolved | failed, and who did it."""

    __tablename__ = "nexus_dead_letter_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dead_letter_id: Mapped[int] = mapped_column(
        BigId,
        # The convention's name is over PostgreSQL's 63 characters.
        ForeignKey(
            "nexus_dead_letter_queue.id", ondelete="CASCADE", name="fk_nexus_dead_letter_history_letter"
        ),
        index=True,
    )
    from_status: Mapped[str | None] = mapped_column(String(16))  # None: the letter was written
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Conflict(Base):
    """A difference the reconciler found and the channel's policy (`review`) left to a person."""

    __tablename__ = "nexus_conflicts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(128), index=True)
    listing_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("nexus_channel_mappings.id", ondelete="SET NULL")
    )
    sku: Mapped[str] = mapped_column(String(255))
    believed: Mapped[int | None] = mapped_column(Integer)  # what Nexus believed the channel showed
    observed: Mapped[int] = mapped_column(Integer)  # what the channel showed when read
    desired: Mapped[int] = mapped_column(Integer)  # what Nexus wanted it to show
    status: Mapped[str] = mapped_column(String(16), default=ConflictStatus.OPEN, index=True)
    resolution: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()


class WebhookLog(Base):
    __tablename__ = "nexus_webhook_logs"
    __table_args__ = (
        UniqueConstraint("channel", "delivery_id", name="uq_nexus_webhook_logs_delivery"),
        UniqueConstraint("channel", "event_id", name="uq_nexus_webhook_logs_event"),
        Index("ix_nexus_webhook_logs_pending", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(128))
    topic: Mapped[str | None] = mapped_column(String(128))
    delivery_id: Mapped[str | None] = mapped_column(String(255))
    event_id: Mapped[str | None] = mapped_column(String(255))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # received -> processed | failed (bad payload after verification) ; rejected (never processed)
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int] = mapped_column(Integer)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class RateLimitLog(Base):
    """One row per (channel, minute): counters, not one row per request, so it never becomes a hot spot."""

    __tablename__ = "nexus_rate_limit_logs"
    __table_args__ = (UniqueConstraint("channel", "minute", name="uq_nexus_rate_limit_logs_minute"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(128))
    minute: Mapped[datetime] = mapped_column()
    requests: Mapped[int] = mapped_column(Integer, default=0)
    throttled: Mapped[int] = mapped_column(Integer, default=0)
    waited_ms: Mapped[float] = mapped_column(Float, default=0.0)
    min_tokens: Mapped[float | None] = mapped_column(Float)


class ChannelStateRow(Base):
    """A channel's health, shared by every process (`nexus.sync.channel_state`): paused by a
    person, disconnected by refused credentials, throttled by consecutive 429s. A channel with
    no row is connected."""

    __tablename__ = "nexus_channel_states"

    channel: Mapped[str] = mapped_column(String(128), primary_key=True)
    paused_at: Mapped[datetime | None] = mapped_column()
    paused_by: Mapped[str | None] = mapped_column(String(128))
    pause_reason: Mapped[str | None] = mapped_column(Text)
    disconnected_at: Mapped[datetime | None] = mapped_column()
    throttled_at: Mapped[datetime | None] = mapped_column()
    # The error that disconnected the channel (or the last probe's), kept after it reconnects.
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column()
    # When a disconnected channel is probed next; taken by one process at a time.
    next_probe_at: Mapped[datetime | None] = mapped_column()
    # When the state shown (connected, throttled, paused, disconnected) began.
    since: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """An API/dashboard token (`nexus.access.tokens`). Only a SHA-256 of the secret is kept: the
    secrets are 256 random bits, so a fast hash is as safe as a slow one and costs nothing per
    request."""

    __tablename__ = "nexus_api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown by `nexus token list` to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class DashboardSession(Base):
    """A signed-in dashboard browser. The cookie carries a random secret; only its hash is kept,
    with the CSRF token its forms must echo. Revoking the token ends its sessions."""

    __tablename__ = "nexus_dashboard_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("nexus_api_tokens.id", ondelete="CASCADE"), index=True
    )
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class OperatorAction(Base):
    """Who did what, when: one row per state-changing API or dashboard action."""

    __tablename__ = "nexus_operator_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(160))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any] | None] = mapped_column()
