"""Conflicts the reconciler left to a person (policy `review`): list them, settle them.

Settling one chooses a side, as the automatic policies would have:
- `nexus`: the channel's level is forgotten (never learnt from a reading that may be old by
  now) and the listing is pushed what Nexus wants, without a compare-and-set;
- `channel`: the level the reconciler read is booked (a `reconcile` movement) against what Nexus
  believes now, and every channel follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.allocation import Allocator
from nexus.domain.belief import Sent, level_read, request_in_flight
from nexus.domain.stock import StockChangeResult
from nexus.domain.vocabulary import ConflictStatus, MovementReason
from nexus.errors import ListingBusyError, UnknownConflictError
from nexus.storage.database import Database
from nexus.storage.models import ChannelMapping, Conflict, utcnow
from nexus.sync.outcomes import book_level

Side = Literal["nexus", "channel"]


@dataclass(frozen=True, slots=True)
class ConflictView:
    id: int
    channel: str
    sku: str
    listing_id: int | None
    believed: int | None
    observed: int
    desired: int
    created_at: datetime

    @classmethod
    def of(cls, row: Conflict) -> ConflictView:
        return cls(
            row.id,
            row.channel,
            row.sku,
            row.listing_id,
            row.believed,
            row.observed,
            row.desired,
            row.created_at,
        )


async def open_conflicts(db: Database, channel: str | None = None) -> list[ConflictView]:
    async with db.read() as session:
        statement = select(Conflict).where(Conflict.status == ConflictStatus.OPEN).order_by(Conflict.id)
        if channel is not None:
            statement = statement.where(Conflict.channel == channel)
        return [ConflictView.of(row) for row in (await session.execute(statement)).scalars()]


async def resolve_conflict(
    db: Database, allocator: Allocator, conflict_id: int, side: Side
) -> StockChangeResult | None:
    """Settle an open conflict in favour of `side`; returns the ledger change, if any. Run again
    from the start when PostgreSQL aborts it for a deadlock (it writes only in its transaction)."""

    async def settle(session: AsyncSession) -> StockChangeResult | None:
        conflict = await session.get(Conflict, conflict_id, with_for_update=True)
        if conflict is None or conflict.status != ConflictStatus.OPEN:
            raise UnknownConflictError(f"no open conflict {conflict_id}")
        conflict.status = ConflictStatus.RESOLVED
        conflict.resolution = side
        conflict.resolved_at = utcnow()
        listing = None
        if conflict.listing_id is not None:
            listing = await session.get(ChannelMapping, conflict.listing_id, with_for_update=True)
        if listing is None:
            return None  # the listing is gone: nothing left to settle
        if request_in_flight(listing, utcnow()):
            raise ListingBusyError(f"listing {listing.id} has a request in flight; try again in a moment")
        delta = 0
        if side == "channel" and listing.remote_qty is not None:
            delta = level_read(listing, Sent(listing.remote_qty), conflict.observed)
        else:
            listing.remote_qty = None
            listing.verify_pending = True
        return await book_level(
            session,
            listing,
            delta,
            channel=conflict.channel,
            source=f"conflict {conflict.id}",
            allocator=allocator,
            reason=MovementReason.RECONCILE,
        )

    return await db.run(settle)
