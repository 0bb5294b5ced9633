"""The inbound rules: turn a delivery's events into stock changes, through the one write path.

Three signals can report the same sale: the order webhook, the level webhook and a refused
compare-and-set. What each proves, and so what is booked, is decided by nexus.domain.belief
(docs/consistency.md): orders book sales where the channel reports them; a level books only a
drop nothing explained yet (drift, absorbed by the order that explains it later), and only when
it can be placed in the channel's timeline; otherwise it is covered, waits for our push's own
report, or puts the listing in doubt so that the worker verifies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, or_, select
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
    LockedStock,
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

    def __init__(self, listing_id: int) -> None:
        super().__init__(listing_id)
        self.listing_id = listing_id


@dataclass(slots=True)
class InboundOutcome:
    changes: list[StockChangeResult] = field(default_factory=list)
    echoes: int = 0  # levels that told nothing new
    stale: int = 0  # levels older than a push that verified the level
    in_doubt: int = 0  # levels that could not be placed: the listing is verified
    duplicates: int = 0
    orders_not_booked: int = 0  # orders of a channel whose sales are booked from its levels
    unmatched: list[str] = field(default_factory=list)


_REF_COLUMNS = (
    ("inventory_id", ChannelMapping.remote_inventory_id),
    ("remote_id", ChannelMapping.remote_id),
    ("remote_sku", ChannelMapping.remote_sku),
)


def _ref_values(ref: ListingRef) -> list[tuple[str, str]]:
    """The identifiers a reference carries, in the order a listing is looked up by them."""
    values = (ref.inventory_id, ref.remote_id, ref.remote_sku)
    return [(name, value) for (name, _), value in zip(_REF_COLUMNS, values, strict=True) if value is not None]


def sale_key(channel: str, event: SaleEvent) -> str:
    return f"{channel}:order:{event.order_id}:line:{event.line_id}"


def level_key(channel: str, delivery_key: str, index: int) -> str:
    return f"{channel}:level:{delivery_key}:{index}"


def drift_key(sale: str) -> str:
    return f"{sale}:absorbs-drift"


@dataclass(slots=True)
class InboundScope:
    """Everything a batch of deliveries will touch, locked and looked up before the first one is
    applied: the listings their events name, every listing and item of those SKUs, and the
    ledger keys they may book (`LockedStock`). Each delivery then costs no lookups, and
    concurrent batches take their locks in one order. A reference it was not asked about, or
    whose listing changed hands in between, is looked up as usual."""

    stock: LockedStock
    listings: dict[tuple[str, str, str], ChannelMapping | None]  # (channel, column, value)

    @classmethod
    async def lock(
        cls, session: AsyncSession, deliveries: Sequence[tuple[str, str, Sequence[InboundEvent]]]
    ) -> InboundScope:
        """`deliveries`: (channel, delivery key, events) of each delivery to apply."""
        wanted: dict[tuple[str, str], set[str]] = {}
        sold_skus: set[str] = set()
        keys: list[str] = []
        for channel, delivery_key, events in deliveries:
            for index, event in enumerate(events):
                for name, value in _ref_values(event.listing):
                    wanted.setdefault((channel, name), set()).add(value)
                if isinstance(event, SaleEvent):
                    key = sale_key(channel, event)
                    keys += [key, drift_key(key)]
                    if event.listing.remote_sku:
                        sold_skus.add(event.listing.remote_sku)
                else:
                    keys.append(level_key(channel, delivery_key, index))
        columns = dict(_REF_COLUMNS)
        named: list[tuple[int, str | None]] = []
        if wanted:
            condition = or_(
                *(
                    and_(ChannelMapping.channel == channel, columns[name].in_(sorted(values)))
                    for (channel, name), values in wanted.items()
                )
            )
            names = select(ChannelMapping.id, ChannelMapping.sku).where(condition)
            named = [(row.id, row.sku) for row in await session.execute(names)]
        skus = {sku for _, sku in named if sku is not None}
        stock = await LockedStock.lock(session, skus | sold_skus, keys)
        loaded = {listing.id: listing for listings in stock.listings.values() for listing in listings}
        unlinked = [listing_id for listing_id, sku in named if sku is None]
        if unlinked:
            rest = select(ChannelMapping).where(ChannelMapping.id.in_(unlinked)).with_for_update()
            loaded.update({listing.id: listing for listing in (await session.execute(rest)).scalars()})
        found: dict[tuple[str, str, str], ChannelMapping | None] = {}
        for listing in sorted(loaded.values(), key=lambda listing: listing.id):
            for name, column in _REF_COLUMNS:
                value = getattr(listing, column.key)
                if value is not None and value in wanted.get((listing.channel, name), ()):
                    found.setdefault((listing.channel, name, value), listing)
        listings: dict[tuple[str, str, str], ChannelMapping | None] = {}
        for (channel, name), values in wanted.items():
            for value in values:
                listings[(channel, name, value)] = found.get((channel, name, value))
        if any(listing_id not in loaded for listing_id, _ in named):
            # A listing named by the events changed SKU between the two statements: whatever
            # was not found among the locked rows is looked up again, not taken as absent.
            listings = {ref: listing for ref, listing in listings.items() if listing is not None}
        return cls(stock, listings)

    def level_in_flight(self, channel: str, events: Sequence[InboundEvent], now: datetime) -> int | None:
        """The id of a listing that one of the delivery's levels names while a request to it is
        in flight: applying the delivery would raise ListingBusy (`_observed`), so it can be
        deferred without an attempt. None when no such listing is known."""
        for event in events:
            if isinstance(event, ObservedLevel):
                for name, value in _ref_values(event.listing):
                    if (channel, name, value) not in self.listings:
                        break  # looked up when applied: the attempt decides
                    listing = self.listings[(channel, name, value)]
                    if listing is not None:
                        if request_in_flight(listing, now):
                            return listing.id
                        break
        return None


async def find_listing(
    session: AsyncSession, channel: str, ref: ListingRef, scope: InboundScope | None = None
) -> ChannelMapping | None:
    for name, value in _ref_values(ref):
        if scope is not None and (channel, name, value) in scope.listings:
            listing = scope.listings[(channel, name, value)]
        else:
            column = dict(_REF_COLUMNS)[name]
            statement = (
                select(ChannelMapping).where(ChannelMapping.channel == channel, column == value).limit(1)
            )
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
    scope: InboundScope | None = None,
) -> InboundOutcome:
    """Apply every event of one delivery in the caller's transaction. Raises ListingBusy to
    have the whole delivery retried later (sales are idempotent, so a retry is harmless).
    `scope`: the rows locked beforehand for a batch of deliveries that includes this one."""
    outcome = InboundOutcome()
    locked = scope.stock if scope is not None else None
    for index, event in enumerate(events):
        listing = await find_listing(session, channel, event.listing, scope)
        if isinstance(event, SaleEvent):
            matched = await _sale(session, channel, listing, event, allocator, semantics, outcome, locked)
        else:
            key = level_key(channel, delivery_key, index)
            matched = await _observed(
                session, channel, listing, event, allocator, semantics, key, outcome, locked
            )
        if not matched:
            outcome.unmatched.append(_describe(event.listing))
    return outcome


async def _book(
    session: AsyncSession,
    change: StockChange,
    allocator: Allocator,
    outcome: InboundOutcome,
    locked: LockedStock | None,
) -> None:
    result = await apply_stock_change(session, change, allocator, locked)
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
    locked: LockedStock | None,
) -> bool:
    sku = listing.sku if listing is not None else None
    if sku is None and event.listing.remote_sku:
        # Sold on the channel but not linked yet: the stock still left the shelf.
        exists = locked.knows_item(event.listing.remote_sku) if locked is not None else None
        if exists is None:
            known = await session.execute(select(Item.sku).where(Item.sku == event.listing.remote_sku))
            sku = known.scalar_one_or_none()
        elif exists:
            sku = event.listing.remote_sku
    if sku is None:
        return False
    if event.quantity <= 0:
        return True
    if not semantics.orders:
        outcome.orders_not_booked += 1  # its levels book the sale
        return True
    key = sale_key(channel, event)
    if locked is not None:
        await locked.item(session, sku)
        used = await locked.key_used(session, key)
    else:
        await lock_item(session, sku)
        used = await key_used(session, key)
    if used:
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
    await _book(session, change, allocator, outcome, locked)
    if absorbed:
        # A level already booked this sale as an unexplained drop: reverse that booking, so
        # the units are counted once (as the sale).
        reversal = StockChange(
            sku,
            MovementReason.CHANNEL_ADJUSTMENT,
            drift_key(key),
            delta=absorbed,
            channel=channel,
            reference=f"drift explained by {reference}",
        )
        await _book(session, reversal, allocator, outcome, locked)
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
    locked: LockedStock | None,
) -> bool:
    if listing is None:
        return False
    now = utcnow()
    if request_in_flight(listing, now):
        raise ListingBusy(listing.id)
    item = await (
        locked.item(session, listing.sku) if locked is not None else lock_item(session, listing.sku)
    )
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
        await _book(session, change, allocator, outcome, locked)
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
