"""What happened, for a person reading it: the push audit (`sync_jobs`, secrets masked), a SKU's
ledger, the items and a channel's listings, each a page with its total.

These functions are what the REST API and the dashboard call; they hold the SQL (the listing
columns are read through `ListingQueue.listing_page`), callers none.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, or_, select

from nexus.errors import InvalidArgumentError, UnknownSkuError
from nexus.jsonable import jsonable
from nexus.masking import mask_secrets
from nexus.paging import OffsetPage
from nexus.storage.database import Database
from nexus.storage.models import ChannelMapping, Item, StockMovement, SyncJob, utcnow
from nexus.sync.queue import ListingQueue

PUSH_STATUSES = ("ok", "partial", "failed", "retry", "stale")  # what nexus.sync.audit writes


@dataclass(frozen=True, slots=True)
class PushAuditView:
    """One push request to a channel: how many listings it carried, how many the channel took."""

    id: int
    channel: str
    batch_id: str | None
    count: int
    succeeded: int
    status: str
    duration_ms: float
    error: str | None
    payload: dict[str, Any]  # what was sent and what came back, secrets masked
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class MovementView:
    """One ledger row: `on_hand_after` is the running total after this movement."""

    id: int
    sku: str
    delta: int
    on_hand_after: int
    reason: str
    channel: str | None
    reference: str | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class ItemView:
    sku: str
    title: str
    barcode: str | None
    on_hand: int
    reserved: int
    available: int
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class ListingView:
    """One listing on a channel: what it should show (`desired`), what Nexus believes the channel
    shows (`believed`; None: unknown), and where it is in the push queue."""

    id: int
    sku: str
    channel: str
    remote_id: str
    desired: int
    believed: int | None
    dirty: bool
    dirty_since: datetime | None
    failed: bool
    failed_at: datetime | None
    in_flight: bool
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_synced_at: datetime | None
    batch_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


PushAuditPage = OffsetPage[PushAuditView]
LedgerPage = OffsetPage[MovementView]
ItemPage = OffsetPage[ItemView]
ListingPage = OffsetPage[ListingView]


def _check_page(limit: int, offset: int) -> None:
    if limit < 1 or offset < 0:
        raise InvalidArgumentError(f"limit must be at least 1 and offset at least 0 (got {limit}, {offset})")


# -- push audit -----------------------------------------------------------------------------


async def list_push_audit(
    db: Database,
    *,
    channel: str | None = None,
    sku: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> PushAuditPage:
    """A page of push requests, newest first. `sku`: requests that carried that SKU."""
    _check_page(limit, offset)
    if status is not None and status not in PUSH_STATUSES:
        raise InvalidArgumentError(
            f"status {status!r} is not a push status; use one of: {', '.join(PUSH_STATUSES)}"
        )
    conditions = []
    if channel is not None:
        conditions.append(SyncJob.channel == channel)
    if status is not None:
        conditions.append(SyncJob.status == status)
    if sku is not None:
        # The payload is JSON text written by nexus.sync.audit (json.dumps: `"sku": "..."`) on
        # both backends; a text match avoids each backend's own JSON-array operators.
        needle = f'"sku": {json.dumps(sku)}'
        conditions.append(cast(SyncJob.payload, String).contains(needle, autoescape=True))
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(SyncJob).where(*conditions))
        statement = (
            select(SyncJob)
            .where(*conditions)
            .order_by(SyncJob.created_at.desc(), SyncJob.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [
            PushAuditView(
                id=row.id,
                channel=row.channel,
                batch_id=row.batch_id,
                count=row.count,
                succeeded=row.succeeded,
                status=row.status,
                duration_ms=row.duration_ms,
                error=row.error,
                # Masked when written; masked again so rows written before that rule are safe too.
                payload=mask_secrets(dict(row.payload or {})),
                created_at=row.created_at,
            )
            for row in (await session.execute(statement)).scalars()
        ]
    return PushAuditPage(items, int(total or 0), offset, limit)


# -- ledger ---------------------------------------------------------------------------------


def _movement(row: StockMovement) -> MovementView:
    return MovementView(
        id=row.id,
        sku=row.sku,
        delta=row.delta,
        on_hand_after=row.on_hand_after,
        reason=row.reason,
        channel=row.channel,
        reference=row.reference,
        created_at=row.created_at,
    )


async def ledger(db: Database, sku: str, *, limit: int = 50, offset: int = 0) -> LedgerPage:
    """A page of the SKU's stock movements, newest first; an unknown SKU is an UnknownSkuError."""
    _check_page(limit, offset)
    async with db.read() as session:
        if await session.scalar(select(Item.id).where(Item.sku == sku)) is None:
            raise UnknownSkuError(f"unknown SKU {sku!r}")
        condition = StockMovement.sku == sku
        total = await session.scalar(select(func.count()).select_from(StockMovement).where(condition))
        statement = (
            select(StockMovement)
            .where(condition)
            .order_by(StockMovement.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [_movement(row) for row in (await session.execute(statement)).scalars()]
    return LedgerPage(items, int(total or 0), offset, limit)


async def movement_by_key(db: Database, idempotency_key: str) -> MovementView | None:
    """The movement booked under `idempotency_key`, if any: what a repeated request answers."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(StockMovement).where(StockMovement.idempotency_key == idempotency_key)
            )
        ).scalar_one_or_none()
    return None if row is None else _movement(row)


# -- items and listings ---------------------------------------------------------------------


async def list_items(db: Database, *, query: str | None = None, limit: int = 50, offset: int = 0) -> ItemPage:
    """A page of items by SKU; `query`: those whose SKU starts with it, or whose title does (any case)."""
    _check_page(limit, offset)
    conditions = []
    if query:
        conditions.append(
            or_(
                Item.sku.startswith(query, autoescape=True),
                Item.title.istartswith(query, autoescape=True),
            )
        )
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(Item).where(*conditions))
        statement = select(Item).where(*conditions).order_by(Item.sku).limit(limit).offset(offset)
        items = [
            ItemView(
                sku=row.sku,
                title=row.title,
                barcode=row.barcode,
                on_hand=row.on_hand,
                reserved=row.reserved,
                available=row.on_hand - row.reserved,
                updated_at=row.updated_at,
            )
            for row in (await session.execute(statement)).scalars()
        ]
    return ItemPage(items, int(total or 0), offset, limit)


async def list_listings(
    db: Database,
    channel: str,
    *,
    dirty: bool | None = None,
    failed: bool | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> ListingPage:
    """A page of `channel`'s listings, oldest first; `dirty`/`failed` filter when given."""
    _check_page(limit, offset)
    now = now or utcnow()
    async with db.read() as session:
        rows, total = await ListingQueue.listing_page(
            session, channel, dirty=dirty, failed=failed, limit=limit, offset=offset
        )
    return ListingPage([_listing(row, now) for row in rows], total, offset, limit)


async def listing_of(db: Database, channel: str, sku: str) -> ListingView:
    """The listing of `sku` on `channel`; UnknownSkuError when the SKU is not listed there."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(ChannelMapping).where(ChannelMapping.channel == channel, ChannelMapping.sku == sku)
            )
        ).scalar_one_or_none()
    if row is None:
        raise UnknownSkuError(f"SKU {sku!r} is not listed on {channel}")
    return _listing(row, utcnow())


def _listing(row: ChannelMapping, now: datetime) -> ListingView:
    return ListingView(
        id=row.id,
        sku=row.sku,
        channel=row.channel,
        remote_id=row.remote_id,
        desired=row.desired_qty,
        believed=row.remote_qty,
        dirty=row.dirty_since is not None,
        dirty_since=row.dirty_since,
        failed=row.failed_at is not None,
        failed_at=row.failed_at,
        in_flight=row.lease_until is not None and row.lease_until > now,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        last_synced_at=row.last_synced_at,
        batch_id=row.batch_id,
    )
