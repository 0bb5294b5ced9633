"""Turn a delivery's inbound events into stock changes, through the one write path.

Three signals can report the same sale: the order webhook, the level webhook and a refused
compare-and-set. Orders are the ledger's source of sales; an observed level only books the part
no order has explained yet (drift), and an order that arrives later absorbs that drift. A level
equal to what Nexus believes the channel shows, or to what it last pushed, is an echo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.allocation import Allocator
from nexus.domain.stock import StockChange, StockChangeResult, apply_stock_change, refresh_desired
from nexus.drivers.contract import InboundEvent, ListingRef, ObservedLevel, SaleEvent
from nexus.storage.models import ChannelMapping, Item, MovementReason, utcnow


class ListingBusy(Exception):
    """A push to this listing is in flight: its level cannot be judged until the answer is recorded."""


@dataclass(slots=True)
class InboundOutcome:
    changes: list[StockChangeResult] = field(default_factory=list)
    echoes: int = 0
    stale: int = 0
    duplicates: int = 0
    unmatched: list[str] = field(default_factory=list)


async def find_listing(session: AsyncSession, channel: str, ref: ListingRef) -> ChannelMapping | None:
    for column, value in (
        (ChannelMapping.remote_inventory_id, ref.inventory_id),
        (ChannelMapping.remote_id, ref.remote_id),
        (ChannelMapping.remote_sku, ref.remote_sku),
    ):
        if value is None:
            continue
        statement = select(ChannelMapping).where(ChannelMapping.channel == channel, column == value).limit(1)
        listing = (await session.execute(statement.with_for_update())).scalar_one_or_none()
        if listing is not None:
            return listing
    return None


async def apply_inbound(
    session: AsyncSession,
    channel: str,
    events: list[InboundEvent],
    allocator: Allocator,
    *,
    delivery_key: str,
    reassert_after_sale: bool = False,
) -> InboundOutcome:
    """Apply every event of one delivery in the caller's transaction. Raises ListingBusy to
    have the whole delivery retried later (sales are idempotent, so a retry is harmless).

    `reassert_after_sale`, for channels without compare-and-set: a sale there may have happened
    before our last absolute push landed, which then wrote over it; nothing tells us which came
    first, so the listing is pushed again (what it should show now) after every sale."""
    outcome = InboundOutcome()
    for index, event in enumerate(events):
        listing = await find_listing(session, channel, event.listing)
        if isinstance(event, SaleEvent):
            change = await _sale(session, channel, listing, event)
        else:
            change = await _observed(
                session, channel, listing, event, allocator, f"{delivery_key}:{index}", outcome
            )
        if change is None:
            if listing is None:
                outcome.unmatched.append(_describe(event.listing))
            continue
        result = await apply_stock_change(session, change, allocator)
        if result.applied and reassert_after_sale and listing is not None and isinstance(event, SaleEvent):
            listing.dirty_since = listing.dirty_since or utcnow()
            if listing.id not in result.dirty_listing_ids:
                result.dirty_listing_ids.append(listing.id)
        if result.applied:
            outcome.changes.append(result)
        else:
            outcome.duplicates += 1
    return outcome


async def _sale(
    session: AsyncSession, channel: str, listing: ChannelMapping | None, event: SaleEvent
) -> StockChange | None:
    sku = listing.sku if listing is not None else None
    if sku is None and event.listing.remote_sku:
        # Sold on the channel but not linked yet: the stock still left the shelf.
        known = await session.execute(select(Item.sku).where(Item.sku == event.listing.remote_sku))
        sku = known.scalar_one_or_none()
    if sku is None or event.quantity <= 0:
        return None
    return StockChange(
        sku=sku,
        reason=MovementReason.SALE,
        idempotency_key=f"{channel}:order:{event.order_id}:line:{event.line_id}",
        delta=-event.quantity,
        channel=channel,
        reference=f"order {event.order_id}",
        source_listing_id=listing.id if listing is not None else None,
    )


async def _observed(
    session: AsyncSession,
    channel: str,
    listing: ChannelMapping | None,
    event: ObservedLevel,
    allocator: Allocator,
    key: str,
    outcome: InboundOutcome,
) -> StockChange | None:
    if listing is None:
        return None
    if listing.lease_owner is not None and listing.lease_until is not None and listing.lease_until > utcnow():
        raise ListingBusy(listing.id)
    # A channel that stamps nothing on our pushes (Amazon) is ordered against when we got its
    # answer: a report older than that describes a push we have since replaced.
    known_at = listing.remote_updated_at or listing.last_synced_at
    if _not_newer(event.observed_at, known_at):
        outcome.stale += 1
        return None
    if event.quantity in (listing.remote_qty, listing.pushed_qty):
        outcome.echoes += 1
        _advance_clock(listing, event.observed_at)
        return None
    if listing.remote_qty is None:
        # Nothing to compare with: learn the level, and let the worker push ours.
        listing.remote_qty = event.quantity
        _advance_clock(listing, event.observed_at)
        item = (await session.execute(select(Item).where(Item.sku == listing.sku))).scalar_one()
        refresh_desired([listing], item, allocator)
        return None
    return StockChange(
        sku=listing.sku,
        reason=MovementReason.CHANNEL_ADJUSTMENT,
        idempotency_key=f"{channel}:level:{key}",
        delta=event.quantity - listing.remote_qty,
        channel=channel,
        reference="level observed on the channel",
        source_listing_id=listing.id,
        observed_quantity=event.quantity,
        observed_at=event.observed_at,
    )


def _not_newer(observed_at: datetime | None, known_at: datetime | None) -> bool:
    # Channel timestamps are often whole seconds; an observation stamped the same second as our
    # last acknowledged push cannot be ordered against it, and orders still account for sales.
    return observed_at is not None and known_at is not None and observed_at <= known_at


def _advance_clock(listing: ChannelMapping, observed_at: datetime | None) -> None:
    if observed_at is not None and (
        listing.remote_updated_at is None or observed_at > listing.remote_updated_at
    ):
        listing.remote_updated_at = observed_at


def _describe(ref: ListingRef) -> str:
    return (
        ", ".join(
            f"{k}={v}"
            for k, v in (
                ("inventory_id", ref.inventory_id),
                ("remote_id", ref.remote_id),
                ("sku", ref.remote_sku),
            )
            if v
        )
        or "no identifier"
    )
