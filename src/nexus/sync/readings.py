"""Writing what the reconciler read back to the listing rows, under the lease it holds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.allocation import Allocator
from nexus.domain.belief import Semantics
from nexus.domain.reconcile import Finding, Reading, reconcile_reading
from nexus.domain.stock import StockChangeResult
from nexus.domain.vocabulary import ConflictPolicy, ConflictStatus, MovementReason
from nexus.storage.database import Database
from nexus.storage.models import ChannelMapping, Conflict, utcnow
from nexus.sync.outcomes import book_level
from nexus.sync.queue import ClaimedListing, ListingQueue


@dataclass(frozen=True, slots=True)
class Difference:
    """A listing whose channel level differs from what Nexus believed."""

    channel: str
    listing_id: int
    sku: str
    believed: int | None
    observed: int
    desired: int
    finding: Finding


@dataclass(slots=True)
class ReconcileRound:
    """What one read-back round found."""

    channel: str
    read: int = 0
    unread: int = 0  # the channel gave no level for them (unknown to it, or the read failed)
    lost_lease: int = 0
    findings: Counter[Finding] = field(default_factory=Counter)
    differences: list[Difference] = field(default_factory=list)
    changes: list[StockChangeResult] = field(default_factory=list)

    def absorb(self, other: ReconcileRound) -> None:
        self.read += other.read
        self.unread += other.unread
        self.lost_lease += other.lost_lease
        self.findings.update(other.findings)
        self.differences.extend(other.differences)
        self.changes.extend(other.changes)


class ReadingWriter:
    """Records one channel's read-backs for one reconciler (`owner`, the lease holder)."""

    def __init__(
        self,
        db: Database,
        allocator: Allocator,
        *,
        channel: str,
        semantics: Semantics,
        policy: ConflictPolicy,
        order_grace: timedelta,
        owner: str,
    ) -> None:
        self.db = db
        self.allocator = allocator
        self.channel = channel
        self.semantics = semantics
        self.policy = policy
        self.order_grace = order_grace
        self.owner = owner

    async def record(
        self, claimed: Sequence[ClaimedListing], levels: Mapping[int, int], round_: ReconcileRound
    ) -> None:
        async def work(session: AsyncSession) -> ReconcileRound:
            # Counted afresh on each attempt: Database.run runs it again after a deadlock.
            found = ReconcileRound(self.channel)
            rows = await ListingQueue.lock_held(session, self.owner, [c.id for c in claimed])
            now = utcnow()
            for listing in claimed:
                row = rows.get(listing.id)
                if row is None:
                    found.lost_lease += 1
                    continue
                row.reconciled_at = now
                level = levels.get(listing.id)
                if level is None:
                    found.unread += 1
                    # Nothing learnt; sales the channel reported meanwhile still move the belief.
                    if row.remote_qty is not None:
                        row.remote_qty += row.inflight_delta
                    row.inflight_delta = 0
                    await book_level(
                        session, row, 0, channel=self.channel, source="", allocator=self.allocator
                    )
                    continue
                reading = reconcile_reading(
                    row,
                    listing.sent,
                    level,
                    self.semantics,
                    self.policy,
                    now=now,
                    order_grace=self.order_grace,
                )
                found.read += 1
                found.findings[reading.finding] += 1
                if reading.differs:
                    found.differences.append(self._difference(row, reading))
                if reading.finding is Finding.REVIEW:
                    await self._open_conflict(session, row, reading)
                change = await book_level(
                    session,
                    row,
                    reading.delta,
                    channel=self.channel,
                    source="reconcile",
                    allocator=self.allocator,
                    reason=MovementReason.RECONCILE,
                )
                if change is not None:
                    found.changes.append(change)
            return found

        # A deadlock with webhook processing or a push round runs the recording again instead of
        # losing the round (its listings stay leased until then).
        round_.absorb(await self.db.run(work))

    def _difference(self, row: ChannelMapping, reading: Reading) -> Difference:
        return Difference(
            self.channel,
            row.id,
            row.sku,
            reading.believed,
            reading.observed,
            row.desired_qty,
            reading.finding,
        )

    async def _open_conflict(self, session: AsyncSession, row: ChannelMapping, reading: Reading) -> None:
        statement = select(Conflict).where(
            Conflict.listing_id == row.id, Conflict.status == ConflictStatus.OPEN
        )
        existing = (await session.execute(statement)).scalars().first()
        if existing is not None:
            existing.observed = reading.observed
            existing.desired = row.desired_qty
            return
        session.add(
            Conflict(
                channel=self.channel,
                listing_id=row.id,
                sku=row.sku,
                believed=reading.believed,
                observed=reading.observed,
                desired=row.desired_qty,
                status=ConflictStatus.OPEN,
            )
        )
