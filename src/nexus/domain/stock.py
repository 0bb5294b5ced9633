"""The one write path: every stock change, from the API, a webhook, a compare-and-set answer or
reconciliation, goes through `apply_stock_change`, in the caller's transaction. It writes the
ledger row, the stock row and the listings' desired quantities and dirty marks together, so they
can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.allocation import Allocator
from nexus.errors import UnknownSkuError
from nexus.events import InventoryUpdated
from nexus.storage.models import ChannelMapping, Item, MovementReason, StockMovement, utcnow


@dataclass(frozen=True, slots=True)
class StockChange:
    """Exactly one of `delta` and `quantity` (an absolute on-hand count) is given.

    `source_listing_id` names the channel listing that already applied this change on its own
    side (a sale on that channel, a level observed there): its believed remote quantity moves
    with the change instead of the listing being pushed back what it already shows.
    `observed_quantity` is the level the source channel reported, when the change came from one.
    """

    sku: str
    reason: MovementReason
    idempotency_key: str
    delta: int | None = None
    quantity: int | None = None
    channel: str | None = None
    reference: str | None = None
    source_listing_id: int | None = None
    observed_quantity: int | None = None
    observed_at: datetime | None = None

    def __post_init__(self) -> None:
        if (self.delta is None) == (self.quantity is None):
            raise ValueError("give exactly one of delta and quantity")
        if self.quantity is not None and self.quantity < 0:
            raise ValueError("an on-hand quantity cannot be negative")


@dataclass(slots=True)
class StockChangeResult:
    applied: bool
    sku: str
    previous_on_hand: int
    on_hand: int
    delta: int
    dirty_listing_ids: list[int] = field(default_factory=list)
    events: list[InventoryUpdated] = field(default_factory=list)


def _insert(session: AsyncSession) -> type[sqlite.Insert] | type[postgresql.Insert]:
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert  # type: ignore[return-value]


async def _record_movement(
    session: AsyncSession,
    *,
    sku: str,
    delta: int,
    on_hand_after: int,
    reason: str,
    key: str,
    channel: str | None,
    reference: str | None,
) -> bool:
    """Append to the ledger; False when the idempotency key was already used."""
    insert = _insert(session)
    statement = (
        insert(StockMovement)
        .values(
            sku=sku,
            delta=delta,
            on_hand_after=on_hand_after,
            reason=str(reason),
            channel=channel,
            reference=reference,
            idempotency_key=key,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(StockMovement.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def lock_item(session: AsyncSession, sku: str) -> Item:
    item = (await session.execute(select(Item).where(Item.sku == sku).with_for_update())).scalar_one_or_none()
    if item is None:
        raise UnknownSkuError(f"unknown SKU {sku!r}")
    return item


async def apply_stock_change(
    session: AsyncSession, change: StockChange, allocator: Allocator
) -> StockChangeResult:
    item = await lock_item(session, change.sku)
    previous = item.on_hand
    result = StockChangeResult(
        applied=False, sku=item.sku, previous_on_hand=previous, on_hand=previous, delta=0
    )
    # The item row lock serialises changes to one SKU, and one key always names one SKU, so
    # checking the key before writing anything is race-free.
    used = await session.scalar(
        select(StockMovement.id).where(StockMovement.idempotency_key == change.idempotency_key)
    )
    if used is not None:
        return result
    delta = change.delta if change.delta is not None else change.quantity - previous  # type: ignore[operator]
    listings = await listings_for_update(session, [item.sku])
    source = next((row for row in listings if row.id == change.source_listing_id), None)

    absorbed = 0
    if source is not None and change.observed_quantity is None and change.reason == MovementReason.SALE:
        absorbed = min(max(0, -delta), max(0, -source.drift_qty))
    if absorbed:
        # This sale was already seen as an unexplained drop of the channel's level and booked as
        # drift: reverse that booking first, so the units are counted once.
        await _record_movement(
            session,
            sku=item.sku,
            delta=absorbed,
            on_hand_after=item.on_hand + absorbed,
            reason=MovementReason.CHANNEL_ADJUSTMENT,
            key=f"{change.idempotency_key}:absorbs-drift",
            channel=change.channel,
            reference=f"drift explained by {change.reference}",
        )
        item.on_hand += absorbed
        assert source is not None
        source.drift_qty += absorbed
    await _record_movement(
        session,
        sku=item.sku,
        delta=delta,
        on_hand_after=item.on_hand + delta,
        reason=change.reason,
        key=change.idempotency_key,
        channel=change.channel,
        reference=change.reference,
    )
    item.on_hand += delta
    item.version += 1
    net = delta + absorbed
    if source is not None:
        _move_source_listing(source, change, net)

    result.applied = True
    result.delta = net
    result.on_hand = item.on_hand
    result.events.append(
        InventoryUpdated(
            sku=item.sku,
            previous_on_hand=previous,
            on_hand=item.on_hand,
            delta=net,
            reason=str(change.reason),
            channel=change.channel,
            reference=change.reference,
        )
    )
    result.dirty_listing_ids = refresh_desired(listings, item, allocator)
    return result


def _move_source_listing(listing: ChannelMapping, change: StockChange, net: int) -> None:
    """Keep the source channel's believed quantity in step with what it did on its own side."""
    if change.observed_quantity is not None:
        listing.remote_qty = change.observed_quantity
        listing.drift_qty = min(0, listing.drift_qty + net)
        if change.observed_at is not None:
            listing.remote_updated_at = max(filter(None, (listing.remote_updated_at, change.observed_at)))
        return
    if listing.lease_owner is not None:
        # A push is in flight: if it succeeds, the channel applied this change on top of it.
        listing.inflight_delta += net
    if listing.remote_qty is not None:
        listing.remote_qty = max(0, listing.remote_qty + net)


async def listings_for_update(session: AsyncSession, skus: Sequence[str]) -> list[ChannelMapping]:
    statement = select(ChannelMapping).where(ChannelMapping.sku.in_(skus)).order_by(ChannelMapping.id)
    return list((await session.execute(statement.with_for_update())).scalars())


def refresh_desired(listings: Sequence[ChannelMapping], item: Item, allocator: Allocator) -> list[int]:
    """Recompute what each listing should show and mark it dirty while the channel differs.

    A listing whose push is in flight is left to the worker: it decides, when the answer comes
    back, whether the desired quantity moved meanwhile.
    """
    now = utcnow()
    available = item.on_hand - item.reserved
    dirty: list[int] = []
    for listing in listings:
        desired = allocator.desired(listing.channel, available)
        changed = desired != listing.desired_qty
        listing.desired_qty = desired
        if changed and listing.failed_at is not None:
            listing.failed_at = None
            listing.attempts = 0
        if listing.remote_qty is None or desired != listing.remote_qty:
            priority = allocator.priority(desired)
            if listing.dirty_since is None:
                listing.dirty_since = now
                listing.priority = priority
            else:
                listing.priority = min(listing.priority, priority)
            dirty.append(listing.id)
        elif listing.lease_owner is None and listing.batch_id is None:
            # (a listing in a catalog batch keeps its mark: the batch asked for a push regardless)
            listing.dirty_since = None
    return dirty
