"""The inbound rules: turn a delivery's events into stock changes, through the one write path.

Three signals can report the same sale: the order webhook, the level webhook and a refused
compare-and-set. What each proves, and so what is booked, is decided by nexus.domain.belief
(docs/consistency.md): orders book sales where the channel reports them; a level books only a
drop nothing explained yet (drift, absorbed by the order that explains it later), and only when
it can be placed in the channel's timeline; otherwise it is covered, waits for our push's own
report, or puts the listing in doubt so that the worker verifies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.allocation import Allocator
from nexus.domain.belief import (
    Placement,
    Semantics,
    WaitForEcho,
    place_reading,
    place_sale,
    request_in_flight,
)
from nexus.domain.stock import (
    StockChange,
    StockChangeResult,
    apply_stock_change,
    key_used,
    lock_item,
    refresh_desired,
)
from nexus.domain.vocabulary import MovementReason
from nexus.drivers.contract import InboundEvent, ListingRef, ObservedLevel, SaleEvent
from nexus.storage.models import ChannelMapping, Item, utcnow


class ListingBusy(Exception):
    """The listing's level cannot be judged yet (a request to it is in flight, or our push's own
    report may still come to place it): retry the delivery later."""


@dataclass(slots=True)
class InboundOutcome:
    changes: list[StockChangeResult] = field(default_factory=list)
    echoes: int = 0  # levels that told nothing new
    stale: int = 0  # levels older than a push that verified the level
    in_doubt: int = 0  # levels that could not be placed: the listing is verified
    duplicates: int = 0
    orders_not_booked: int = 0  # orders of a channel whose sales are booked from its levels
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
    semantics: Semantics,
) -> InboundOutcome:
    """Apply every event of one delivery in the caller's transaction. Raises ListingBusy to
    have the whole delivery retried later (sales are idempotent, so a retry is harmless)."""
    outcome = InboundOutcome()
    for index, event in enumerate(events):
        listing = await find_listing(session, channel, event.listing)
        if isinstance(event, SaleEvent):
            matched = await _sale(session, channel, listing, event, allocator, semantics, outcome)
        else:
            key = f"{channel}:level:{delivery_key}:{index}"
            matched = await _observed(session, channel, listing, event, allocator, semantics, key, outcome)
        if not matched:
            outcome.unmatched.append(_describe(event.listing))
    return outcome


async def _book(
    session: AsyncSession, change: StockChange, allocator: Allocator, outcome: InboundOutcome
) -> None:
    result = await apply_stock_change(session, change, allocator)
    if result.applied:
        outcome.changes.append(result)


async def _sale(
    session: AsyncSession,
    channel: str,
    listing: ChannelMapping | None,
    event: SaleEvent,
    allocator: Allocator,
    semantics: Semantics,
    outcome: InboundOutcome,
) -> bool:
    sku = listing.sku if listing is not None else None
    if sku is None and event.listing.remote_sku:
        # Sold on the channel but not linked yet: the stock still left the shelf.
        known = await session.execute(select(Item.sku).where(Item.sku == event.listing.remote_sku))
        sku = known.scalar_one_or_none()
    if sku is None:
        return False
    if event.quantity <= 0:
        return True
    if not semantics.orders:
        outcome.orders_not_booked += 1  # its levels book the sale
        return True
    key = f"{channel}:order:{event.order_id}:line:{event.line_id}"
    await lock_item(session, sku)
    if await key_used(session, key):
        outcome.duplicates += 1
        return True
    absorbed = 0
    if listing is not None:
        now = utcnow()
        if request_in_flight(listing, now) and not semantics.compare_and_set and semantics.levels_book_sales:
            raise ListingBusy(listing.id)  # placed against the push's answer, not around it
        try:
            absorbed = place_sale(listing, event.quantity, semantics.span(event.occurred_at), semantics, now)
        except WaitForEcho:
            raise ListingBusy(listing.id) from None
    reference = f"order {event.order_id}"
    change = StockChange(
        sku, MovementReason.SALE, key, delta=-event.quantity, channel=channel, reference=reference
    )
    await _book(session, change, allocator, outcome)
    if absorbed:
        # A level already booked this sale as an unexplained drop: reverse that booking, so
        # the units are counted once (as the sale).
        reversal = StockChange(
            sku,
            MovementReason.CHANNEL_ADJUSTMENT,
            f"{key}:absorbs-drift",
            delta=absorbed,
            channel=channel,
            reference=f"drift explained by {reference}",
        )
        await _book(session, reversal, allocator, outcome)
    return True


async def _observed(
    session: AsyncSession,
    channel: str,
    listing: ChannelMapping | None,
    event: ObservedLevel,
    allocator: Allocator,
    semantics: Semantics,
    key: str,
    outcome: InboundOutcome,
) -> bool:
    if listing is None:
        return False
    now = utcnow()
    if request_in_flight(listing, now):
        raise ListingBusy(listing.id)
    item = await lock_item(session, listing.sku)
    verdict = place_reading(listing, event.quantity, semantics.span(event.observed_at), semantics, now)
    if verdict.placement is Placement.WAIT:
        raise ListingBusy(listing.id)
    if verdict.placement in (Placement.CONFIRMED, Placement.ECHO, Placement.AWAITS_ORDER):
        outcome.echoes += 1
    elif verdict.placement is Placement.COVERED:
        outcome.stale += 1
    elif verdict.placement is Placement.IN_DOUBT:
        outcome.in_doubt += 1
    if verdict.delta:
        reason = "level reported by the channel"
        if verdict.placement is Placement.BOOKED_BEFORE_PUSH:
            reason = "level reported by the channel, sold before our push overwrote it"
        change = StockChange(
            listing.sku,
            MovementReason.CHANNEL_ADJUSTMENT,
            key,
            delta=verdict.delta,
            channel=channel,
            reference=reason,
        )
        await _book(session, change, allocator, outcome)
    else:
        refresh_desired([listing], item, allocator)
    return True


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
