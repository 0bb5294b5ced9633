"""The one write path: every stock change, from the API, a webhook, a compare-and-set answer or
reconciliation, goes through `apply_stock_change`, in the caller's transaction. It writes the
ledger row, the stock row and the listings' desired quantities and dirty marks together, so they
can never disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from sqlalchemy import inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState

from nexus.domain.allocation import Allocator
from nexus.domain.belief import needs_push
from nexus.domain.vocabulary import MovementReason
from nexus.errors import UnknownSkuError
from nexus.events import InventoryUpdated
from nexus.storage.models import ChannelMapping, Item, StockMovement, utcnow


@dataclass(frozen=True, slots=True)
class StockChange:
    """Exactly one of `delta` and `quantity` (an absolute on-hand count) is given.

    A change that came from a channel (a sale there, a level it reported) moves that listing's
    belief through nexus.domain.belief before it is booked here, so the listing is not pushed
    back what the channel already shows.
    """

    sku: str
    reason: MovementReason
    idempotency_key: str
    delta: int | None = None
    quantity: int | None = None
    channel: str | None = None
    reference: str | None = None

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


@dataclass(slots=True)
class LockedStock:
    """What a caller about to apply many changes locked and looked up beforehand, one statement
    each: every listing of the SKUs (id order), then the items (SKU order) — the order a push
    round's record takes them in, so two such callers never deadlock — and which of the keys it
    will use are booked. A SKU or key it does not know is locked or looked up as usual.

    Valid for one transaction, and only while its objects are: after a savepoint rollback that
    expired any of them, call `still_valid()` and drop it if it says no."""

    items: dict[str, Item]  # the SKUs asked for that exist
    listings: dict[str, list[ChannelMapping]]  # every listing of each SKU asked for
    skus: frozenset[str]  # asked for, so a SKU missing from `items` does not exist
    keys: dict[str, bool]  # idempotency key -> booked
    _booked_since_mark: list[str] = field(default_factory=list)

    @classmethod
    async def lock(cls, session: AsyncSession, skus: Collection[str], keys: Collection[str]) -> LockedStock:
        wanted = sorted(set(skus))
        listings: dict[str, list[ChannelMapping]] = {sku: [] for sku in wanted}
        items: dict[str, Item] = {}
        if wanted:
            for listing in await listings_for_update(session, wanted):
                listings[listing.sku].append(listing)
            locking = select(Item).where(Item.sku.in_(wanted)).order_by(Item.sku).with_for_update()
            items = {item.sku: item for item in (await session.execute(locking)).scalars()}
        booked: set[str] = set()
        if keys:
            used = select(StockMovement.idempotency_key).where(StockMovement.idempotency_key.in_(set(keys)))
            booked = set((await session.execute(used)).scalars())
        return cls(items, listings, frozenset(wanted), {key: key in booked for key in keys})

    async def item(self, session: AsyncSession, sku: str) -> Item:
        if sku not in self.skus:
            return await lock_item(session, sku)
        item = self.items.get(sku)
        if item is None:
            raise UnknownSkuError(f"unknown SKU {sku!r}")
        return item

    def knows_item(self, sku: str) -> bool | None:
        """Whether the SKU exists, or None when it was not asked for."""
        return (sku in self.items) if sku in self.skus else None

    async def key_used(self, session: AsyncSession, key: str) -> bool:
        known = self.keys.get(key)
        return await key_used(session, key) if known is None else known

    async def listings_of(self, session: AsyncSession, sku: str) -> list[ChannelMapping]:
        if sku not in self.skus:
            return await listings_for_update(session, [sku])
        return self.listings[sku]

    def booked(self, key: str) -> None:
        self.keys[key] = True
        self._booked_since_mark.append(key)

    def mark(self) -> None:
        """Start of an attempt that a savepoint may roll back (see `rolled_back`)."""
        self._booked_since_mark.clear()

    def rolled_back(self) -> bool:
        """The attempt since `mark` was rolled back: forget its bookings. Returns whether the
        locked objects are still loaded (a rollback expires those the attempt modified)."""
        for key in self._booked_since_mark:
            self.keys[key] = False
        self._booked_since_mark.clear()
        objects: list[Item | ChannelMapping] = [*self.items.values()]
        for listings in self.listings.values():
            objects.extend(listings)
        return not any(_expired(obj) for obj in objects)


def _expired(obj: Item | ChannelMapping) -> bool:
    state: InstanceState[Item | ChannelMapping] = inspect(obj)
    return bool(state.expired_attributes)


async def apply_stock_change(
    session: AsyncSession, change: StockChange, allocator: Allocator, locked: LockedStock | None = None
) -> StockChangeResult:
    item = await (locked.item(session, change.sku) if locked else lock_item(session, change.sku))
    previous = item.on_hand
    result = StockChangeResult(
        applied=False, sku=item.sku, previous_on_hand=previous, on_hand=previous, delta=0
    )
    # The item row lock serialises changes to one SKU, and one key always names one SKU, so
    # checking the key before writing anything is race-free.
    key = change.idempotency_key
    if await (locked.key_used(session, key) if locked else key_used(session, key)):
        return result
    delta = change.delta if change.delta is not None else change.quantity - previous  # type: ignore[operator]
    listings = await (
        locked.listings_of(session, item.sku) if locked else listings_for_update(session, [item.sku])
    )
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
    if locked is not None:
        locked.booked(key)
    item.on_hand += delta
    item.version += 1
    result.applied = True
    result.delta = delta
    result.on_hand = item.on_hand
    result.events.append(
        InventoryUpdated(
            sku=item.sku,
            previous_on_hand=previous,
            on_hand=item.on_hand,
            delta=delta,
            reason=str(change.reason),
            channel=change.channel,
            reference=change.reference,
        )
    )
    result.dirty_listing_ids = refresh_desired(listings, item, allocator)
    return result


async def key_used(session: AsyncSession, idempotency_key: str) -> bool:
    """Whether a movement with this key was booked (call with the item locked, see below)."""
    used = await session.scalar(
        select(StockMovement.id).where(StockMovement.idempotency_key == idempotency_key)
    )
    return used is not None


async def listings_for_update(session: AsyncSession, skus: Sequence[str]) -> list[ChannelMapping]:
    statement = select(ChannelMapping).where(ChannelMapping.sku.in_(skus)).order_by(ChannelMapping.id)
    return list((await session.execute(statement.with_for_update())).scalars())


def refresh_desired(listings: Sequence[ChannelMapping], item: Item, allocator: Allocator) -> list[int]:
    """Recompute what each listing should show and mark it dirty while the channel differs (or
    its level is unknown or in doubt).

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
        if needs_push(listing, desired):
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
