"""The listing queue: the only code that reads or writes the lease and dirty columns of listings.

The queue *is* the table (`nexus_channel_mappings`). A listing is queued while `dirty_since` is
set, not dead-lettered (`failed_at`), and its lease is free or expired; it is due when its
`next_attempt_at` has passed. Delivery semantics:

- claim: at most one live lease per listing (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one
  writer), highest priority then oldest first; a lease expires after `lease_seconds`.
- an expired lease whose holder sent something leaves the listing *reclaimed*: the fate of what
  was sent is unknown, and the next holder reads the channel first.
- release: unsent listings are free at once; sent ones keep their owner with an expired lease.

Everything a worker needs goes through `ListingQueue`; the worker holds no SQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.belief import Sent
from nexus.domain.vocabulary import Priority
from nexus.drivers.dto import NexusInventoryUpdate
from nexus.storage.database import Database
from nexus.storage.models import ChannelMapping, SyncBatch, queued_listing, utcnow
from nexus.storage.plain import PlainColumns


@dataclass(frozen=True, slots=True)
class ClaimedListing:
    id: int
    sku: str
    remote_id: str
    inventory_id: str | None
    channel_meta: dict[str, Any]
    desired: int
    remote_qty: int | None
    batch_id: str | None
    # A previous holder's lease expired mid-push: the fate of what it sent is unknown.
    reclaimed: bool = False
    # The belief is in doubt (docs/consistency.md): verified by this round.
    verify: bool = False

    @property
    def sent(self) -> Sent:
        return Sent(self.remote_qty)

    def update(self, quantity: int, *, compare_and_set: bool = False) -> NexusInventoryUpdate:
        """The request for this listing: `quantity`, expected to replace our belief when the
        channel has compare-and-set."""
        return NexusInventoryUpdate(
            listing_id=self.id,
            sku=self.sku,
            remote_id=self.remote_id,
            quantity=quantity,
            change_from=self.remote_qty if compare_and_set else None,
            inventory_id=self.inventory_id,
            channel_meta=self.channel_meta,
        )


@dataclass(frozen=True, slots=True)
class Marked:
    """What `ListingQueue.mark_for_batch` did to one chunk."""

    queued: int
    pushed: int  # already, since the batch opened: finished members, not queued
    taken_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """One channel's listings as the queue sees them."""

    listings: int = 0
    dirty: int = 0
    in_flight: int = 0
    failed: int = 0
    last_sync: datetime | None = None


@dataclass(slots=True)
class ListingQueue:
    db: Database
    lease_seconds: float
    _clock: Any = field(default=utcnow, repr=False)

    @staticmethod
    def _queued(channel: str, listings: Any = ChannelMapping) -> list[Any]:
        """Queued for a push; `listings`: the mapped class or a plain view's columns."""
        return [listings.channel == channel, *queued_listing(listings)]

    async def claim(
        self, channel: str, owner: str, limit: int, listing_ids: Sequence[int] | None = None
    ) -> list[ClaimedListing]:
        """Lease up to `limit` due listings of `channel` to `owner`. Explicit `listing_ids` (a
        sync asked for them) skip the backoff."""
        now = self._clock()
        # Plain columns, not ORM objects, and one UPDATE for the whole round: a claim is on the
        # push path of every round, and loading and flushing 250 tracked objects, or even running
        # a type processor on each of their values, cost more than the SQL itself
        # (docs/benchmarks.md, section 1).
        listings = _LISTINGS.view.c
        async with self.db.transaction() as session:
            value = _LISTINGS.writer(session)
            at = _LISTINGS.value(session, "lease_until", now)  # every time column binds alike
            conditions = [
                *self._queued(channel, listings),
                or_(listings.lease_until.is_(None), listings.lease_until < at),
            ]
            if listing_ids is None:
                conditions.append(or_(listings.next_attempt_at.is_(None), listings.next_attempt_at <= at))
            else:
                conditions.append(listings.id.in_(listing_ids))
            statement = (
                select(*_LISTINGS.columns(_CLAIM_NAMES))
                .where(*conditions)
                .order_by(listings.priority, listings.dirty_since, listings.id)
                .limit(limit)
            )
            if not self.db.is_sqlite:
                statement = statement.with_for_update(of=_LISTINGS.view, skip_locked=True)
            read = _LISTINGS.reader(session, _CLAIM_NAMES)
            rows = [_ClaimRow(*read(row)) for row in (await session.execute(statement)).all()]
            if not rows:
                return []
            # An expired lease leaves the fate of its push unknown: the channel may show it
            # already, and a compare-and-set against our old belief would book our own push as a
            # channel sale. The worker reads the channel first.
            claimed = [_claimed(row, reclaimed=row.lease_owner is not None) for row in rows]
            # The rows are ours until commit (PostgreSQL: locked above; SQLite: one writer), so
            # `desired_qty` here is the value just read.
            await session.execute(
                update(_LISTINGS.view)
                .where(listings.id.in_(bindparam("claimed", expanding=True)))
                .values(
                    {
                        **value(
                            {
                                "lease_owner": owner,
                                "lease_until": now + timedelta(seconds=self.lease_seconds),
                                "inflight_delta": 0,
                                "updated_at": now,
                            }
                        ),
                        "sending_qty": listings.desired_qty,
                    }
                ),
                {"claimed": [row.id for row in rows]},
            )
            return claimed

    @staticmethod
    def _quiet(channel: str) -> list[Any]:
        return [
            ChannelMapping.channel == channel,
            ChannelMapping.dirty_since.is_(None),
            ChannelMapping.failed_at.is_(None),
        ]

    async def claim_for_reconcile(
        self,
        channel: str,
        owner: str,
        limit: int,
        listing_ids: Sequence[int] | None = None,
        *,
        read_before: datetime | None = None,
    ) -> list[ClaimedListing]:
        """Lease up to `limit` quiet listings of `channel` (not queued for a push, not
        dead-lettered, lease free), those read back longest ago first, for the reconciler to
        read; with `read_before`, only those not read since. The lease keeps pushes and inbound
        readings off them while they are read."""
        now = self._clock()
        conditions = [*self._quiet(channel), ChannelMapping.lease_owner.is_(None)]
        if read_before is not None:
            conditions.append(
                or_(ChannelMapping.reconciled_at.is_(None), ChannelMapping.reconciled_at < read_before)
            )
        if listing_ids is not None:
            conditions.append(ChannelMapping.id.in_(listing_ids))
        statement = (
            select(ChannelMapping)
            .where(*conditions)
            .order_by(
                ChannelMapping.reconciled_at.is_not(None), ChannelMapping.reconciled_at, ChannelMapping.id
            )
            .limit(limit)
        )
        async with self.db.transaction() as session:
            if not self.db.is_sqlite:
                statement = statement.with_for_update(skip_locked=True)
            rows = list((await session.execute(statement)).scalars())
            lease_until = now + timedelta(seconds=self.lease_seconds)
            for row in rows:
                row.lease_owner = owner
                row.lease_until = lease_until
                row.inflight_delta = 0
            return [_claimed(row, reclaimed=False) for row in rows]

    async def quiet_listings(self, channel: str) -> list[ClaimedListing]:
        """Every quiet listing of `channel`, unleased: what a dry run reads and reports."""
        async with self.db.read() as session:
            statement = select(ChannelMapping).where(*self._quiet(channel)).order_by(ChannelMapping.id)
            return [_claimed(row, reclaimed=False) for row in (await session.execute(statement)).scalars()]

    async def queued_quiet(self, channel: str) -> int:
        """How many listings of `channel` a reconciliation cycle reads."""
        async with self.db.read() as session:
            statement = select(func.count()).select_from(ChannelMapping).where(*self._quiet(channel))
            return int((await session.execute(statement)).scalar_one())

    async def release(self, owner: str, listing_ids: Sequence[int], *, sent: bool) -> None:
        """Give back listings `owner` holds (shutdown, cancellation). Unsent ones are free at
        once; sent ones keep their owner with an expired lease (their fate is unknown)."""
        values: dict[str, Any] = {"lease_until": self._clock() - timedelta(seconds=1)}
        if not sent:
            values.update(lease_owner=None, lease_until=None, sending_qty=None)
        async with self.db.transaction() as session:
            await session.execute(
                update(ChannelMapping)
                .where(ChannelMapping.id.in_(listing_ids), ChannelMapping.lease_owner == owner)
                .values(values)
            )

    async def adopt_levels(self, owner: str, levels: Mapping[int, int]) -> None:
        """Levels read from the channel for reclaimed listings become what we believe it shows."""
        async with self.db.transaction() as session:
            for listing_id, level in sorted(levels.items()):  # id order, as every listing lock
                await session.execute(
                    update(ChannelMapping)
                    .where(ChannelMapping.id == listing_id, ChannelMapping.lease_owner == owner)
                    .values(remote_qty=level)
                )

    @staticmethod
    async def lock_held_state(
        session: AsyncSession, owner: str, listing_ids: Sequence[int]
    ) -> dict[int, HeldListing]:
        """`lock_held` as plain records rather than ORM objects, for a round's outcomes to be
        written back in one statement (`write_held`): the rows `owner` still holds, locked in id
        order and, in the records, freed of their lease."""
        if not listing_ids:
            return {}
        read = _LISTINGS.reader(session, _HELD_NAMES)
        held: dict[int, HeldListing] = {}
        for values in (await session.execute(_LOCK_HELD, {"held": list(listing_ids)})).all():
            row = HeldListing(*read(values))
            if row.lease_owner != owner:
                continue
            row.lease_owner = None
            row.lease_until = None
            row.sending_qty = None
            held[row.id] = row
        return held

    @staticmethod
    async def write_held(session: AsyncSession, rows: Collection[HeldListing]) -> None:
        """Write records from `lock_held_state` back: one UPDATE by primary key, executed once
        for all of them (executemany), instead of an ORM flush of every object."""
        if not rows:
            return
        updated_at = utcnow()
        await _LISTINGS.executemany(
            session,
            _WRITE_HELD,
            [{"held_id": row.id, **row.written(), "updated_at": updated_at} for row in rows],
        )

    @staticmethod
    async def lock_held(
        session: AsyncSession, owner: str, listing_ids: Sequence[int]
    ) -> dict[int, ChannelMapping]:
        """The rows `owner` still holds, locked for recording a round's outcome and freed of
        their lease; a listing another worker took over (our lease expired) is left out.

        Locked in id order, as the write path locks a SKU's listings (`listings_for_update`):
        two transactions that lock listings in one order cannot deadlock on them."""
        statement = (
            select(ChannelMapping)
            .where(ChannelMapping.id.in_(listing_ids))
            .order_by(ChannelMapping.id)
            .with_for_update()
        )
        held: dict[int, ChannelMapping] = {}
        for row in (await session.execute(statement)).scalars():
            if row.lease_owner != owner:
                continue
            row.lease_owner = None
            row.lease_until = None
            row.sending_qty = None
            held[row.id] = row
        return held

    async def next_due(self, channel: str) -> datetime | None:
        """When the earliest listing waiting for a retry is due."""
        async with self.db.read() as session:
            return (
                await session.execute(
                    select(ChannelMapping.next_attempt_at)
                    .where(*self._queued(channel), ChannelMapping.next_attempt_at.is_not(None))
                    .order_by(ChannelMapping.next_attempt_at)
                    .limit(1)
                )
            ).scalar_one_or_none()

    async def queued(self, channel: str | None = None) -> int:
        """Listings waiting for a push (every channel when `channel` is None)."""
        conditions: list[ColumnElement[bool]] = [
            ChannelMapping.dirty_since.is_not(None),
            ChannelMapping.failed_at.is_(None),
        ]
        if channel is not None:
            conditions.append(ChannelMapping.channel == channel)
        async with self.db.read() as session:
            statement = select(func.count()).select_from(ChannelMapping).where(*conditions)
            return int((await session.execute(statement)).scalar_one())

    async def queued_for_sku(self, sku: str, channels: Collection[str]) -> dict[str, list[int]]:
        """The listings of `sku` on `channels` waiting for a push, per channel."""
        async with self.db.read() as session:
            statement = (
                select(ChannelMapping.channel, ChannelMapping.id)
                .where(
                    ChannelMapping.sku == sku,
                    ChannelMapping.channel.in_(channels),
                    ChannelMapping.dirty_since.is_not(None),
                    ChannelMapping.failed_at.is_(None),
                )
                .order_by(ChannelMapping.id)
            )
            pending: dict[str, list[int]] = {}
            for channel, listing_id in await session.execute(statement):
                pending.setdefault(channel, []).append(listing_id)
            return pending

    async def dirty(self) -> int:
        """Listings marked for a push, dead-lettered ones included (nothing is quiet while any)."""
        async with self.db.read() as session:
            statement = (
                select(func.count())
                .select_from(ChannelMapping)
                .where(ChannelMapping.dirty_since.is_not(None))
            )
            return int((await session.execute(statement)).scalar_one())

    async def counts(self) -> dict[str, QueueCounts]:
        now = self._clock()
        async with self.db.read() as session:
            rows = await session.execute(
                select(
                    ChannelMapping.channel,
                    func.count().label("listings"),
                    func.sum(case((ChannelMapping.dirty_since.is_not(None), 1), else_=0)).label("dirty"),
                    func.sum(case((ChannelMapping.lease_until > now, 1), else_=0)).label("in_flight"),
                    func.sum(case((ChannelMapping.failed_at.is_not(None), 1), else_=0)).label("failed"),
                    func.max(ChannelMapping.last_synced_at).label("last_sync"),
                ).group_by(ChannelMapping.channel)
            )
            return {
                row.channel: QueueCounts(
                    listings=int(row.listings),
                    dirty=int(row.dirty or 0),
                    in_flight=int(row.in_flight or 0),
                    failed=int(row.failed or 0),
                    last_sync=row.last_sync,
                )
                for row in rows
            }

    async def backlog(self) -> dict[str, tuple[int, datetime]]:
        """Per channel with listings waiting for a push (dirty, not dead-lettered): how many, and
        since when the oldest has been dirty (what `/nexus/metrics` reports at each scrape)."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(ChannelMapping.channel, func.count(), func.min(ChannelMapping.dirty_since))
                .where(ChannelMapping.dirty_since.is_not(None), ChannelMapping.failed_at.is_(None))
                .group_by(ChannelMapping.channel)
            )
            backlog: dict[str, tuple[int, datetime]] = {}
            for channel, waiting, oldest in rows.all():
                if oldest is None:  # never: the rows counted are dirty
                    continue
                if isinstance(oldest, str):  # SQLite's MIN() returns text, not the column's type
                    oldest = datetime.fromisoformat(oldest)
                if oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=UTC)
                backlog[channel] = (int(waiting), oldest)
            return backlog

    @staticmethod
    async def requeue(session: AsyncSession, listing_ids: Collection[int]) -> int:
        """Give listings a fresh start (a dead letter replayed): no failure, no attempts, no
        backoff, and dirty whatever they show, so the worker pushes what each should show *now*.
        Returns how many listings there were."""
        if not listing_ids:
            return 0
        result = await session.execute(
            update(ChannelMapping)
            .where(ChannelMapping.id.in_(listing_ids))
            .values(
                dirty_since=func.coalesce(ChannelMapping.dirty_since, utcnow()),
                priority=case(
                    (ChannelMapping.dirty_since.is_(None), int(Priority.NORMAL)),
                    else_=ChannelMapping.priority,
                ),
                failed_at=None,
                attempts=0,
                next_attempt_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        return int(cast("CursorResult[Any]", result).rowcount)

    @staticmethod
    async def mark_for_batch(
        session: AsyncSession,
        batch_id: str,
        channels: Sequence[str],
        skus: Sequence[str] | None,
        *,
        opened: datetime,
        ids: tuple[int, int | None] | None = None,
    ) -> Marked:
        """Queue every listing of `channels` (of `skus`, or all; with `ids` (after, up to), only
        those with an id after the first and up to the second, None: no end) for a push in batch
        `batch_id`, opened at `opened`, whatever it shows. Dead-lettered listings get a fresh
        start. A clean listing whose push landed since `opened` is not queued again: the batch is
        queued a chunk at a time while pushes run, and that push did what the batch asks.
        Returns how many were queued and already pushed, and the batches listings were taken from
        (their totals lowered: each may have no member left to wait for)."""
        conditions: list[ColumnElement[bool]] = [ChannelMapping.channel.in_(channels)]
        if skus is not None:
            conditions.append(ChannelMapping.sku.in_(skus))
        if ids is not None:
            after, up_to = ids
            conditions.append(ChannelMapping.id > after)
            if up_to is not None:
                conditions.append(ChannelMapping.id <= up_to)
        if session.get_bind().dialect.name != "sqlite":
            # Lock the rows first, in id order as every listing lock is taken: the counts and the
            # UPDATE below then see the same rows (READ COMMITTED takes a snapshot per
            # statement); a round recording one of them commits before, or waits until after.
            # SQLite's one writer gives that already.
            await session.execute(
                select(ChannelMapping.id).where(*conditions).order_by(ChannelMapping.id).with_for_update()
            )
        synced = ChannelMapping.last_synced_at
        pushed_since = and_(ChannelMapping.dirty_since.is_(None), synced >= opened)
        already = int(
            await session.scalar(
                select(func.count()).select_from(ChannelMapping).where(*conditions, pushed_since)
            )
            or 0
        )
        if already:
            # Not NOT(pushed_since): a listing never pushed (NULL) would drop out of both.
            conditions.append(or_(ChannelMapping.dirty_since.is_not(None), synced.is_(None), synced < opened))
        # Listings taken over from an unfinished batch no longer count there.
        moved = await session.execute(
            select(ChannelMapping.batch_id, func.count())
            .where(*conditions, ChannelMapping.batch_id.is_not(None))
            .group_by(ChannelMapping.batch_id)
        )
        taken_from: list[str] = []
        for old_batch, count in cast("list[tuple[str, int]]", moved.all()):
            await session.execute(
                update(SyncBatch).where(SyncBatch.id == old_batch).values(total=SyncBatch.total - count)
            )
            taken_from.append(old_batch)
        result = await session.execute(
            update(ChannelMapping)
            .where(*conditions)
            .values(
                batch_id=batch_id,
                dirty_since=func.coalesce(ChannelMapping.dirty_since, opened),
                # Bulk work is LOW; a listing already waiting with its own (higher) priority keeps
                # it. A clean listing's priority is left over from its last push and must not count.
                priority=case(
                    (ChannelMapping.dirty_since.is_(None), int(Priority.LOW)), else_=ChannelMapping.priority
                ),
                failed_at=None,
                attempts=0,
                next_attempt_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        return Marked(int(cast("CursorResult[Any]", result).rowcount), already, tuple(taken_from))

    @staticmethod
    async def id_bound(session: AsyncSession, channels: Sequence[str], after: int, size: int) -> int | None:
        """The id that ends a chunk of `size` listings of `channels` with ids after `after`, in id
        order; None when fewer are left (the last chunk has no end)."""
        return cast(
            "int | None",
            await session.scalar(
                select(ChannelMapping.id)
                .where(ChannelMapping.channel.in_(channels), ChannelMapping.id > after)
                .order_by(ChannelMapping.id)
                .offset(size - 1)
                .limit(1)
            ),
        )

    @staticmethod
    async def listing_page(
        session: AsyncSession,
        channel: str,
        *,
        dirty: bool | None = None,
        failed: bool | None = None,
        limit: int,
        offset: int,
    ) -> tuple[list[ChannelMapping], int]:
        """A page of `channel`'s listings (oldest first) and how many match: `dirty` marked for a
        push or not, `failed` dead-lettered or not; None: either (what the API's listing shows)."""
        conditions: list[ColumnElement[bool]] = [ChannelMapping.channel == channel]
        if dirty is not None:
            column = ChannelMapping.dirty_since
            conditions.append(column.is_not(None) if dirty else column.is_(None))
        if failed is not None:
            column = ChannelMapping.failed_at
            conditions.append(column.is_not(None) if failed else column.is_(None))
        total = await session.scalar(select(func.count()).select_from(ChannelMapping).where(*conditions))
        statement = (
            select(ChannelMapping).where(*conditions).order_by(ChannelMapping.id).limit(limit).offset(offset)
        )
        return list((await session.execute(statement)).scalars()), int(total or 0)


@dataclass(slots=True)
class HeldListing:
    """A listing row a push round holds, as a plain record: what its outcome reads and writes
    (the belief of nexus.domain.belief, the retry and dirty columns, the lease). Cheaper than
    an ORM object by an order of magnitude when a round records 250 of them."""

    id: int
    sku: str
    desired_qty: int
    remote_qty: int | None
    drift_qty: int
    pushed_qty: int | None
    timeline: dict[str, Any]
    inflight_delta: int
    verify_pending: bool
    attempts: int
    next_attempt_at: datetime | None
    failed_at: datetime | None
    last_error: str | None
    last_synced_at: datetime | None
    dirty_since: datetime | None
    batch_id: str | None
    lease_owner: str | None
    lease_until: datetime | None
    sending_qty: int | None

    def written(self) -> dict[str, Any]:
        """The columns a round may change, as written back."""
        return {name: getattr(self, name) for name in _HELD_WRITTEN}


_HELD_NAMES = tuple(f.name for f in dataclasses.fields(HeldListing))
# Not written back: the key, and what a round reads but never changes (an UPDATE that sets an
# indexed column, even to its own value, rewrites the index entry in SQLite).
_HELD_WRITTEN = tuple(name for name in _HELD_NAMES if name not in {"id", "sku", "desired_qty"})


@dataclass(frozen=True, slots=True)
class _ClaimRow:
    """What a claim reads of each listing: `_claimed` takes this (or a whole ChannelMapping)."""

    id: int
    sku: str
    remote_id: str
    remote_inventory_id: str | None
    channel_meta: dict[str, Any] | None
    desired_qty: int
    remote_qty: int | None
    batch_id: str | None
    verify_pending: bool
    lease_owner: str | None


_CLAIM_NAMES = tuple(f.name for f in dataclasses.fields(_ClaimRow))
# The listing table as the push path reads and writes it, a round at a time (`PlainColumns`).
_LISTINGS = PlainColumns(
    cast("Table", ChannelMapping.__table__),
    (
        *dict.fromkeys((*_HELD_NAMES, *_CLAIM_NAMES)),
        "channel",
        "priority",
        "updated_at",
    ),
)


def _claimed(row: Any, *, reclaimed: bool) -> ClaimedListing:
    return ClaimedListing(
        id=row.id,
        sku=row.sku,
        remote_id=row.remote_id,
        inventory_id=row.remote_inventory_id,
        channel_meta=dict(row.channel_meta or {}),
        desired=row.desired_qty,
        remote_qty=None if reclaimed else row.remote_qty,
        batch_id=row.batch_id,
        reclaimed=reclaimed,
        verify=row.verify_pending,
    )


# The two statements of every round's record, built once (a statement over 250 ids costs a
# coercion per id when built): the rows a round holds, and each of them written back.
_LOCK_HELD = (
    select(*_LISTINGS.columns(_HELD_NAMES))
    .where(_LISTINGS.view.c.id.in_(bindparam("held", expanding=True)))
    .order_by(_LISTINGS.view.c.id)
    .with_for_update()
)
_WRITE_HELD = (
    update(_LISTINGS.view)
    .where(_LISTINGS.view.c.id == bindparam("held_id"))
    .values({name: bindparam(name) for name in (*_HELD_WRITTEN, "updated_at")})
)
