"""The dead-letter desk: list, show, replay and resolve dead letters, with a status history.

A listing is dead-lettered when a push of it failed for good (a terminal answer, or
`worker.max_attempts` retries): the listing gets `failed_at` and leaves the queue, and one dead
letter holds what was sent and why it failed. A listing has at most one *open* dead letter
(`failed` or `replaying`): failing again updates it instead of adding another.

    failed ──replay──> replaying ──a push of the listing succeeds──> resolved
      │                   └──────dead-lettered again──────────────> failed
      └──resolve (acknowledged, nothing replayed)───────────────────> resolved

A replay is level-triggered: the listing gets a fresh start in the queue (`ListingQueue.requeue`)
and the worker pushes what it should show *now*, never the stale payload. Any successful push of
a listing resolves its open dead letter, so the counts (`nexus status`) drop as soon as the
channel shows the right level. Every change of status is written to `nexus_dead_letter_history`
with its time, who made it and why.

These functions are what `nexus dlq` and the REST API call; they hold the SQL, callers none.
A replay never selects everything: it takes ids, or a filter with at least one criterion.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.vocabulary import DeadLetterStatus
from nexus.errors import DeadLetterError, UnknownDeadLetterError
from nexus.jsonable import jsonable
from nexus.paging import OffsetPage
from nexus.storage.database import Database
from nexus.storage.models import ChannelMapping, DeadLetter, DeadLetterHistory, utcnow
from nexus.sync.queue import ListingQueue

OPEN = frozenset({DeadLetterStatus.FAILED, DeadLetterStatus.REPLAYING})


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters: every criterion given must hold. `error` is a case-insensitive
    substring of the error; `older_than`: failed at least that long ago; `statuses`: None for
    every status (listing defaults to the open ones, `OPEN`)."""

    channel: str | None = None
    sku: str | None = None
    error: str | None = None
    older_than: timedelta | None = None
    statuses: frozenset[DeadLetterStatus] | None = OPEN
    batch: str | None = None  # letters of listings that failed in this sync batch

    @property
    def selective(self) -> bool:
        """Whether it narrows the selection at all (a status alone does not: a replay needs more)."""
        criteria = (self.channel, self.sku, self.error, self.older_than, self.batch)
        return any(value is not None for value in criteria)

    def conditions(self, now: datetime) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.channel is not None:
            conditions.append(DeadLetter.channel == self.channel)
        if self.sku is not None:
            conditions.append(ChannelMapping.sku == self.sku)
        if self.error is not None:
            conditions.append(DeadLetter.last_exception.icontains(self.error, autoescape=True))
        if self.older_than is not None:
            conditions.append(DeadLetter.failed_at <= now - self.older_than)
        if self.statuses is not None:
            conditions.append(DeadLetter.status.in_([str(status) for status in self.statuses]))
        if self.batch is not None:
            conditions.append(DeadLetter.payload["batch_id"].as_string() == self.batch)
        return conditions


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """One dead letter as a list shows it."""

    id: int
    channel: str
    sku: str | None
    listing_id: int | None
    status: str
    error: str
    attempts: int
    quantity: int | None  # what the failed push sent
    failed_at: datetime
    resolved_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    from_status: str | None
    status: str
    actor: str
    reason: str | None
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class ListingState:
    """The listing as it is now: what it should show (`desired`) and what Nexus believes the
    channel shows (`believed`; None: unknown)."""

    id: int
    sku: str
    channel: str
    desired: int
    believed: int | None
    verify_pending: bool
    dirty: bool
    failed: bool
    attempts: int
    last_error: str | None
    last_synced_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class DeadLetterDetail:
    """One dead letter whole: its payload, its history and the listing's current state."""

    letter: DeadLetterView
    job_kind: str
    payload: dict[str, Any]
    history: list[HistoryEntry]
    listing: ListingState | None  # None: the listing was deleted

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.letter.as_dict(),
            "job_kind": self.job_kind,
            "payload": jsonable(self.payload),
            "history": [entry.as_dict() for entry in self.history],
            "listing": self.listing.as_dict() if self.listing is not None else None,
        }


DeadLetterPage = OffsetPage[DeadLetterView]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """`replaying`: letters whose listing is queued again; `gone`: letters whose listing was
    deleted (resolved, nothing to push); `channels`: whose workers to wake."""

    replaying: list[int] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ResolveResult:
    resolved: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)  # were resolved before

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading --------------------------------------------------------------------------------


# The listing's SKU (a filter and a column) comes from the listing, which may be gone.
LISTING = (ChannelMapping, ChannelMapping.id == DeadLetter.listing_id)


def _view(letter: DeadLetter, sku: str | None) -> DeadLetterView:
    payload = letter.payload or {}
    quantity = payload.get("quantity")
    return DeadLetterView(
        id=letter.id,
        channel=letter.channel,
        sku=sku if sku is not None else payload.get("sku"),
        listing_id=letter.listing_id,
        status=str(letter.status),
        error=letter.last_exception,
        attempts=letter.attempts,
        quantity=quantity if isinstance(quantity, int) else None,
        failed_at=letter.failed_at,
        resolved_at=letter.resolved_at,
    )


async def list_dead_letters(
    db: Database,
    where: DeadLetterFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> DeadLetterPage:
    """A page of the dead letters matching `where` (default: the open ones), newest first."""
    if limit < 1 or offset < 0:
        raise DeadLetterError(f"limit must be at least 1 and offset at least 0 (got {limit}, {offset})")
    where = where or DeadLetterFilter()
    conditions = where.conditions(now or utcnow())
    async with db.read() as session:
        total = await session.scalar(
            select(func.count()).select_from(DeadLetter).outerjoin(*LISTING).where(*conditions)
        )
        statement = (
            select(DeadLetter, ChannelMapping.sku)
            .outerjoin(*LISTING)
            .where(*conditions)
            .order_by(DeadLetter.failed_at.desc(), DeadLetter.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [_view(letter, sku) for letter, sku in (await session.execute(statement)).all()]
    return DeadLetterPage(items, int(total or 0), offset, limit)


async def show_dead_letter(db: Database, letter_id: int) -> DeadLetterDetail:
    async with db.read() as session:
        letter = await session.get(DeadLetter, letter_id)
        if letter is None:
            raise UnknownDeadLetterError(f"no dead letter {letter_id}")
        listing = await session.get(ChannelMapping, letter.listing_id) if letter.listing_id else None
        history = (
            await session.execute(
                select(DeadLetterHistory)
                .where(DeadLetterHistory.dead_letter_id == letter_id)
                .order_by(DeadLetterHistory.at, DeadLetterHistory.id)
            )
        ).scalars()
        return DeadLetterDetail(
            letter=_view(letter, listing.sku if listing is not None else None),
            job_kind=letter.job_kind,
            payload=dict(letter.payload or {}),
            history=[
                HistoryEntry(row.from_status, row.status, row.actor, row.reason, row.at) for row in history
            ],
            listing=_listing_state(listing) if listing is not None else None,
        )


def _listing_state(row: ChannelMapping) -> ListingState:
    return ListingState(
        id=row.id,
        sku=row.sku,
        channel=row.channel,
        desired=row.desired_qty,
        believed=row.remote_qty,
        verify_pending=row.verify_pending,
        dirty=row.dirty_since is not None,
        failed=row.failed_at is not None,
        attempts=row.attempts,
        last_error=row.last_error,
        last_synced_at=row.last_synced_at,
    )


# -- working them ---------------------------------------------------------------------------


async def replay_dead_letters(
    db: Database,
    ids: Sequence[int] | None = None,
    where: DeadLetterFilter | None = None,
    *,
    actor: str,
    note: str | None = None,
) -> ReplayResult:
    """Queue the listings of the dead letters `ids` (every one must exist and not be resolved),
    or of every `failed` dead letter matching `where` (which must narrow the selection), for a
    push of their *current* desired quantity. The letters go to `replaying`. Wake the workers
    of `result.channels` afterwards (`Nexus.notify`)."""
    if ids and where is not None:
        raise DeadLetterError("replay takes dead letter ids or a filter, not both")
    if not ids and (where is None or not where.selective):
        raise DeadLetterError(
            "replay needs dead letter ids or a filter (channel, SKU, error or age); "
            "nothing replays every dead letter at once"
        )
    now = utcnow()
    async with db.transaction() as session:
        if ids:
            chosen = await _by_ids(session, ids)
            resolved = [letter.id for letter in chosen if letter.status == DeadLetterStatus.RESOLVED]
            if resolved:
                raise DeadLetterError(f"dead letter {_names(resolved)} already resolved: nothing to replay")
        else:
            assert where is not None
            statement = (
                select(DeadLetter)
                .outerjoin(*LISTING)
                .where(
                    *replace(where, statuses=None).conditions(now),
                    DeadLetter.status == DeadLetterStatus.FAILED,
                )
            )
            chosen = list((await session.execute(statement.order_by(DeadLetter.id))).scalars())
        # Listings first, then letters: the order a push round's outcome locks them in.
        await ListingQueue.requeue(session, {letter.listing_id for letter in chosen if letter.listing_id})
        result = ReplayResult()
        for letter in await _lock(session, [letter.id for letter in chosen]):
            if letter.status == DeadLetterStatus.RESOLVED:
                continue  # resolved meanwhile (its listing is queued anyway: harmless)
            if letter.listing_id is None:
                _move(session, letter, DeadLetterStatus.RESOLVED, actor, "the listing is gone", now)
                result.gone.append(letter.id)
                continue
            _move(session, letter, DeadLetterStatus.REPLAYING, actor, note or "replayed", now)
            result.replaying.append(letter.id)
            if letter.channel not in result.channels:
                result.channels.append(letter.channel)
        return result


async def resolve_dead_letters(
    db: Database, ids: Sequence[int], *, actor: str, note: str | None = None
) -> ResolveResult:
    """Acknowledge dead letters without replaying them: their listings stay out of the queue
    until their stock next changes (or a replay, or a sync)."""
    if not ids:
        raise DeadLetterError("resolve needs at least one dead letter id")
    now = utcnow()
    async with db.transaction() as session:
        await _by_ids(session, ids)
        result = ResolveResult()
        for letter in await _lock(session, ids):
            if letter.status == DeadLetterStatus.RESOLVED:
                result.already.append(letter.id)
                continue
            _move(session, letter, DeadLetterStatus.RESOLVED, actor, note or "resolved without a replay", now)
            result.resolved.append(letter.id)
        return result


# -- what a push round's outcome writes (nexus.sync.outcomes), with the listings locked ---------


async def record_dead_letter(
    session: AsyncSession,
    *,
    channel: str,
    listing_id: int,
    payload: dict[str, Any],
    error: str,
    attempts: int,
    now: datetime,
    actor: str,
) -> DeadLetter:
    """The listing's push failed for good: its open dead letter is updated (back to `failed`
    from `replaying`), else a new one is written."""
    letter = (
        await session.execute(
            select(DeadLetter)
            .where(DeadLetter.listing_id == listing_id, DeadLetter.status.in_([str(s) for s in OPEN]))
            .order_by(DeadLetter.id.desc())
            .limit(1)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if letter is None:
        letter = DeadLetter(
            channel=channel,
            job_kind="push_inventory",
            listing_id=listing_id,
            payload=payload,
            last_exception=error,
            attempts=attempts,
            status=DeadLetterStatus.FAILED,
            failed_at=now,
        )
        session.add(letter)
        await session.flush()
        session.add(_entry(letter.id, None, DeadLetterStatus.FAILED, actor, error, now))
        return letter
    letter.payload = payload
    letter.last_exception = error
    letter.attempts = attempts
    letter.failed_at = now
    _move(session, letter, DeadLetterStatus.FAILED, actor, error, now)
    return letter


async def resolve_pushed(session: AsyncSession, listing_ids: Collection[int], *, actor: str) -> list[int]:
    """Pushes of these listings succeeded: their open dead letters are resolved. Returns their ids."""
    if not listing_ids:
        return []
    letters = (
        await session.execute(
            select(DeadLetter)
            .where(DeadLetter.listing_id.in_(listing_ids), DeadLetter.status.in_([str(s) for s in OPEN]))
            .order_by(DeadLetter.id)
            .with_for_update()
        )
    ).scalars()
    now = utcnow()
    resolved = []
    for letter in letters:
        _move(session, letter, DeadLetterStatus.RESOLVED, actor, "a push of the listing succeeded", now)
        resolved.append(letter.id)
    return resolved


# -- helpers --------------------------------------------------------------------------------


async def _by_ids(session: AsyncSession, ids: Sequence[int]) -> list[DeadLetter]:
    wanted = list(dict.fromkeys(ids))
    found = {
        letter.id: letter
        for letter in (await session.execute(select(DeadLetter).where(DeadLetter.id.in_(wanted)))).scalars()
    }
    missing = [letter_id for letter_id in wanted if letter_id not in found]
    if missing:
        raise UnknownDeadLetterError(f"no dead letter {_names(missing)}")
    return [found[letter_id] for letter_id in wanted]


async def _lock(session: AsyncSession, ids: Sequence[int]) -> list[DeadLetter]:
    if not ids:
        return []
    statement = (
        select(DeadLetter)
        .where(DeadLetter.id.in_(ids))
        .order_by(DeadLetter.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(statement)).scalars())


def _move(
    session: AsyncSession,
    letter: DeadLetter,
    status: DeadLetterStatus,
    actor: str,
    reason: str | None,
    now: datetime,
) -> None:
    previous = letter.status
    letter.status = status
    letter.resolved_at = now if status == DeadLetterStatus.RESOLVED else None
    session.add(_entry(letter.id, previous, status, actor, reason, now))


def _entry(
    letter_id: int,
    previous: str | None,
    status: DeadLetterStatus,
    actor: str,
    reason: str | None,
    now: datetime,
) -> DeadLetterHistory:
    return DeadLetterHistory(
        dead_letter_id=letter_id,
        from_status=None if previous is None else str(previous),
        status=str(status),
        actor=actor[:128],
        reason=reason,
        at=now,
    )


def _names(ids: Sequence[int]) -> str:
    return ", ".join(str(letter_id) for letter_id in ids)
