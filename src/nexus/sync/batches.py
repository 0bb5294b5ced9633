"""Catalog-sync batches: the bookkeeping of their finished members (the push worker's outcomes),
and reading and retrying them (`nexus batches`; no SQL in the CLI). A batch's failed listings
are dead-lettered with the batch's id in the letter's payload; retrying them is a replay through
the dead-letter desk (`nexus.sync.dead_letters`), never new SQL over the listings.

A batch is queued a chunk of listings at a time (`open_batch`, `add_members`, `start_batch`;
`nexus.api`'s `sync_all`), each chunk in a transaction of its own, so pushes start with the
first chunk instead of after the whole catalog (0.9 s for 100,000 listings on SQLite, while the
store's bucket sat full). Until every chunk is queued the batch is `marking`: its finished
members are counted as below, but it cannot complete. A marking whose process died is started
with the members it has by the look for stranded work below (`start_stranded`).

Counting finished members happens in two steps, so that no push round waits on the batch row
(every round of every channel and worker of a catalog sync finishes members of the same batch):

1. `record_progress`, inside the round's own transaction: one increment row per batch
   (`nexus_sync_batch_progress`), an INSERT that contends with nothing. The increments commit
   or roll back with the listings' outcomes: a crash loses both or neither.
2. `settle`, in a short transaction of its own after that commit: lock the batch row, delete
   its increments and add what was deleted to `processed`/`failed` (one DELETE ... RETURNING,
   so exactly what is folded is counted), and mark the batch completed when every member has
   finished and it is still running. The row lock orders concurrent settles of one batch, and
   the status check under it completes a batch once.

On SQLite, whose one writer leaves no row to wait on, a round adds what it finished to the
batch row directly, in its own transaction (`count_in_round`): no increment rows at all.

Delivery: progress is never lost and never counted twice (an increment is counted by the one
transaction that deletes it). A settle that fails (the database gone, the process killed after
the round committed) leaves the increments in place; they are folded by the next settle of the
batch, or as stranded (older than `STRANDED_AFTER`) after the next push round of any channel
(`BatchSettler`) or by `nexus.batch(id).status()`. The readers (`list_batches`,
`show_batch`, `read_batch`) add increments not yet folded, so their counts are never behind;
their status is the row's, so a stranded batch reads `running` with nothing pending until then.
`BatchProgressed` and `BatchCompleted` are dispatched after the settle commits by the process
that settled, at most once: `BatchCompleted` once per batch unless that process dies between
the commit and the dispatch. Rounds do not wait for the settle (`BatchSettler`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import CursorResult, Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.vocabulary import BatchState, DeadLetterStatus
from nexus.errors import BatchStrandedError, UnknownBatchError
from nexus.events import BatchCompleted, BatchProgressed
from nexus.storage.database import IN_LIST_CHUNK, Database, describe, unavailable
from nexus.storage.models import SyncBatch, SyncBatchProgress, SyncJob, utcnow
from nexus.sync.dead_letters import (
    DeadLetterFilter,
    DeadLetterPage,
    ReplayResult,
    list_dead_letters,
    replay_dead_letters,
)
from nexus.sync.queue import ListingQueue, Marked

log = structlog.get_logger("nexus.batches")

BatchEvent = BatchProgressed | BatchCompleted
_BATCH_TABLE = cast("Table", SyncBatch.__table__)

# Increments older than this were left by a settle that failed (a round settles its own within
# moments of writing them); anyone may fold them. Younger ones are left to their round.
STRANDED_AFTER = timedelta(seconds=10)
# Listings (or SKUs) queued per transaction while a batch is marked: ~50 ms of SQLite's one
# writer on a slow core, so push rounds take their turns between chunks.
MARK_CHUNK = 5000
# A batch still `marking` this long after it last queued a chunk (a chunk takes well under a
# second) lost the process queueing it: it runs with the members it has (`start_stranded`).
MARKING_STRANDED_AFTER = timedelta(minutes=5)


def _per_batch(finished: Counter[tuple[str, bool]]) -> dict[str, list[int]]:
    """`finished` (members per (batch id, failed)) as [processed, failed] per batch."""
    counts: dict[str, list[int]] = {}
    for (batch_id, failed), count in finished.items():
        counts.setdefault(batch_id, [0, 0])[int(failed)] += count
    return counts


async def record_progress(session: AsyncSession, finished: Counter[tuple[str, bool]]) -> set[str]:
    """Record, in the push round's transaction, the members it finished: `finished` counts them
    per (batch id, failed). Returns the batches to `settle` once that transaction committed."""
    counts = _per_batch(finished)
    if counts:
        await session.execute(
            insert(SyncBatchProgress),
            [
                {"batch_id": batch_id, "processed": processed, "failed": failed}
                for batch_id, (processed, failed) in counts.items()
            ],
        )
    return set(counts)


async def queue_batch(
    db: Database,
    batch_id: str,
    trigger: str,
    channels: Sequence[str],
    skus: Sequence[str] | None,
    *,
    queued: Callable[[], Awaitable[None]],
    dispatch: Callable[[object], Awaitable[None]],
) -> None:
    """Queue every listing of `channels` (of `skus`, or all) for a push in a new batch, a chunk
    of `MARK_CHUNK` at a time, calling `queued` after each chunk commits (to wake the push
    workers), then start it and `dispatch` its events. Raises `BatchStrandedError` when the
    batch was given up as stranded meanwhile. Cancelled or failed part-way, the batch is
    started with the chunks queued so far, and the error raised."""

    opened = utcnow()  # also every chunk's queueing time: the chunks keep their order in the claim

    async def open_(session: AsyncSession) -> None:
        await open_batch(session, batch_id, trigger, opened)

    await db.run(open_)

    async def counted(session: AsyncSession, marked: Sequence[Marked]) -> list[BatchEvent]:
        """Count the chunk in the batch; complete the batches it took listings from that have no
        member left to wait for. Returns their events, for after the commit."""
        queued, pushed = sum(m.queued for m in marked), sum(m.pushed for m in marked)
        if not await add_members(session, batch_id, queued, pushed):
            raise BatchStrandedError(
                f"batch {batch_id} stalled for over {MARKING_STRANDED_AFTER} while queueing and runs "
                "with the listings queued so far; run the sync again for the rest"
            )
        events: list[BatchEvent] = []
        for taken_from in sorted({old for m in marked for old in m.taken_from}):
            events.extend(await _fold(session, taken_from, unchanged=False))
        return events

    async def mark_all() -> None:
        if skus is None:
            after: int | None = 0
            while after is not None:

                async def mark_ids(
                    session: AsyncSession, after: int = after
                ) -> tuple[int | None, list[BatchEvent]]:
                    # Run again from the start on a PostgreSQL deadlock (Database.run): it only writes
                    # inside the transaction, and the chunk's end is read again.
                    up_to = await ListingQueue.id_bound(session, channels, after, MARK_CHUNK)
                    ids = (after, up_to)
                    marked = await ListingQueue.mark_for_batch(
                        session, batch_id, channels, None, opened=opened, ids=ids
                    )
                    return up_to, await counted(session, [marked])

                after, events = await db.run(mark_ids)
                for event in events:
                    await dispatch(event)
                await queued()
        else:
            for first_sku in range(0, len(skus), MARK_CHUNK):
                part = skus[first_sku : first_sku + MARK_CHUNK]

                async def mark_skus(session: AsyncSession, part: Sequence[str] = part) -> list[BatchEvent]:
                    marked = [
                        await ListingQueue.mark_for_batch(
                            session, batch_id, channels, part[first : first + IN_LIST_CHUNK], opened=opened
                        )
                        for first in range(0, len(part), IN_LIST_CHUNK)
                    ]
                    return await counted(session, marked)

                for event in await db.run(mark_skus):
                    await dispatch(event)
                await queued()

    async def run(session: AsyncSession) -> list[BatchEvent]:
        return await start_batch(session, batch_id)

    try:
        await mark_all()
    except BatchStrandedError:
        raise
    except BaseException as exc:
        # Cancelled (a client gone, Ctrl-C) or failed part-way: the chunks queued so far are
        # real and being pushed. Start the batch with them now rather than in five minutes;
        # with the database away, the look for stranded markings does it later.
        with contextlib.suppress(Exception):
            events = await asyncio.shield(db.run(run))
            _cut_short(batch_id, error=describe(exc) if isinstance(exc, Exception) else type(exc).__name__)
            for event in events:
                await dispatch(event)
        raise
    for event in await db.run(run):
        await dispatch(event)


async def opened_at(session: AsyncSession, batch_ids: Iterable[str]) -> dict[str, datetime]:
    """When each of these batches opened (was asked for): a push sent since counts for it."""
    wanted = sorted(set(batch_ids))
    if not wanted:
        return {}
    rows = await session.execute(select(SyncBatch.id, SyncBatch.created_at).where(SyncBatch.id.in_(wanted)))
    return {batch_id: created_at for batch_id, created_at in rows.all()}


async def open_batch(session: AsyncSession, batch_id: str, trigger: str, opened: datetime) -> None:
    """A new batch, `marking` until `start_batch`: members are added a chunk at a time
    (`add_members`) and pushed meanwhile, but it cannot complete before it runs."""
    marking = BatchState.MARKING
    session.add(
        SyncBatch(id=batch_id, trigger=trigger, total=0, status=marking, created_at=opened, marked_at=opened)
    )


async def add_members(session: AsyncSession, batch_id: str, queued: int, pushed: int = 0) -> bool:
    """Count members just added to the batch: `queued` for a push, and `pushed` already since it
    opened (finished at once). False when it is no longer `marking` (given up as stranded:
    `start_stranded`), and the caller must not add them."""
    batches = _BATCH_TABLE.c
    result = await session.execute(
        update(_BATCH_TABLE)
        .where(batches.id == batch_id, batches.status == BatchState.MARKING)
        .values(
            total=batches.total + queued + pushed, processed=batches.processed + pushed, marked_at=utcnow()
        )
    )
    return cast("CursorResult[Any]", result).rowcount == 1


async def start_batch(session: AsyncSession, batch_id: str) -> list[BatchEvent]:
    """Every member is queued: the batch runs, and completes here if they have all finished
    (or it has none). Returns its events, for the caller to dispatch after the commit."""
    batches = _BATCH_TABLE.c
    await session.execute(
        update(_BATCH_TABLE)
        .where(batches.id == batch_id, batches.status == BatchState.MARKING)
        .values(status=BatchState.RUNNING, marked_at=None)
    )
    return await _fold(session, batch_id, unchanged=False)


async def settle(db: Database, batch_ids: Iterable[str]) -> AsyncIterator[BatchEvent]:
    """Fold the batches' increments into their counts and complete those now done, one short
    transaction per batch. Yields each batch's events once its transaction committed: progress
    for every batch settled, completion for those this settle completed."""
    for batch_id in sorted(set(batch_ids)):

        async def fold(session: AsyncSession, batch_id: str = batch_id) -> list[BatchEvent]:
            return await _fold(session, batch_id)

        for event in await db.run(fold):
            yield event


async def _fold(session: AsyncSession, batch_id: str, *, unchanged: bool = True) -> list[BatchEvent]:
    """Fold the batch's increments into its row and complete it when done; its events
    (progress even when nothing was folded, unless not `unchanged`)."""
    batch = (
        await session.execute(
            select(SyncBatch)
            .where(SyncBatch.id == batch_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    folded = (
        await session.execute(
            delete(SyncBatchProgress)
            .where(SyncBatchProgress.batch_id == batch_id)
            .returning(SyncBatchProgress.processed, SyncBatchProgress.failed)
        )
    ).all()
    if batch is None:
        return []  # no such batch (any more): its increments count for nothing
    batch.processed += sum(row.processed for row in folded)
    batch.failed += sum(row.failed for row in folded)
    events = _progressed(batch.id, batch.total, batch.processed, batch.failed, batch.status)
    if len(events) > 1:
        batch.status = BatchState.COMPLETED
        batch.completed_at = utcnow()
    if not folded and not unchanged:
        return events[1:]
    return events


def _progressed(batch_id: str, total: int, processed: int, failed: int, status: str) -> list[BatchEvent]:
    """The events of a batch whose counts just grew to these (`status` as before): progress,
    and completion when every member has finished and it was still running. The caller marks
    it completed when completion is among them, under the same row lock."""
    events: list[BatchEvent] = [BatchProgressed(batch_id, total, processed, failed)]
    if status == BatchState.RUNNING and processed + failed >= total:
        events.append(BatchCompleted(batch_id, total, processed, failed))
    return events


async def settle_stranded(db: Database, batch_id: str | None = None) -> AsyncIterator[BatchEvent]:
    """`settle` the batches (or this one) holding increments older than `STRANDED_AFTER`, and
    start those whose marking stalled (`start_stranded`). Looked up outside a write
    transaction: when there are none, no writer is taken."""
    now = utcnow()
    statement = select(SyncBatchProgress.batch_id).where(SyncBatchProgress.created_at < now - STRANDED_AFTER)
    marking = select(SyncBatch.id).where(
        SyncBatch.status == BatchState.MARKING, SyncBatch.marked_at < now - MARKING_STRANDED_AFTER
    )
    if batch_id is not None:
        statement = statement.where(SyncBatchProgress.batch_id == batch_id)
        marking = marking.where(SyncBatch.id == batch_id)
    async with db.read() as session:
        stranded = set((await session.execute(statement.distinct())).scalars())
        stalled = list((await session.execute(marking)).scalars())
    for stalled_id in stalled:
        for event in await start_stranded(db, stalled_id):
            yield event
    async for event in settle(db, stranded):
        yield event


def _stalled(marked_at: datetime | None) -> bool:
    return marked_at is None or marked_at < utcnow() - MARKING_STRANDED_AFTER


async def start_stranded(db: Database, batch_id: str) -> list[BatchEvent]:
    """Start a batch whose marking stalled: the process queueing its listings died (or stopped
    for longer than `MARKING_STRANDED_AFTER`). The members it queued are real and being pushed;
    it runs with them and completes when they finish. The rest of the catalog was never queued:
    a person must run the sync again (the marker, if it is still alive, gets a
    `BatchStrandedError` at its next chunk)."""

    async def start(session: AsyncSession) -> tuple[int | None, list[BatchEvent]]:
        batch = await session.get(SyncBatch, batch_id, with_for_update=True, populate_existing=True)
        if batch is None or batch.status != BatchState.MARKING or not _stalled(batch.marked_at):
            return None, []  # started meanwhile, or a chunk was queued since it was looked up
        return batch.total, await start_batch(session, batch_id)

    total, events = await db.run(start)
    if total is not None:
        _cut_short(batch_id, queued=total)
    return events


def _cut_short(batch_id: str, **context: object) -> None:
    """A batch started before all its listings were queued: a person must run the sync again."""
    log.warning(
        "a catalog sync stopped while queueing its listings; its batch runs with those queued, "
        "run the sync again for the rest",
        batch_id=batch_id,
        **context,
    )


async def count_in_round(session: AsyncSession, finished: Counter[tuple[str, bool]]) -> list[BatchEvent]:
    """SQLite: add the members a round finished to their batches' counts in the round's own
    transaction, one UPDATE per batch, no increment rows. With one writer there is no row for
    other rounds to wait on, and a settle of its own would cost every round a second commit (an
    fsync). The events are the caller's to dispatch after the commit."""
    events: list[BatchEvent] = []
    for batch_id, (processed, failed) in sorted(_per_batch(finished).items()):
        # Core, not the ORM's UPDATE: this runs in every round's transaction.
        batches = _BATCH_TABLE.c
        row = (
            await session.execute(
                update(_BATCH_TABLE)
                .where(batches.id == batch_id)
                .values(processed=batches.processed + processed, failed=batches.failed + failed)
                .returning(batches.total, batches.processed, batches.failed, batches.status)
            )
        ).one_or_none()
        if row is None:
            continue  # no such batch (any more)
        progressed = _progressed(batch_id, row.total, row.processed, row.failed, row.status)
        if len(progressed) > 1:
            await session.execute(
                update(SyncBatch)
                .where(SyncBatch.id == batch_id)
                .values(status=BatchState.COMPLETED, completed_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        events.extend(progressed)
    return events


class StrandedLookout:
    """Whether to look for stranded increments now: at most once per `STRANDED_AFTER`, since
    younger ones are not stranded yet (one read saved per round)."""

    def __init__(self) -> None:
        self._looked_at: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._looked_at is not None and now - self._looked_at < STRANDED_AFTER.total_seconds():
            return False
        self._looked_at = now
        return True


async def settle_or_log(db: Database, batch_ids: Iterable[str], *, stranded: bool = True) -> list[BatchEvent]:
    """Settle these batches and, when `stranded`, any stranded ones.

    Never raises: the rounds are written, and an error here must not make anyone write them
    again. What could not be folded stays recorded, for the next settle; the events of what was
    are returned all the same."""
    events: list[BatchEvent] = []
    try:
        async for event in settle(db, batch_ids):
            events.append(event)
        if stranded:
            async for event in settle_stranded(db):
                events.append(event)
    except Exception as exc:
        if unavailable(exc):
            log.warning("could not settle batch progress; the next settle will", error=describe(exc))
        else:
            log.exception("settling batch progress failed; the next settle will try again")
    return events


class BatchSettler:
    """Settles, in the background, the batches this process's push rounds progressed; one per
    process (`Nexus.batch_settler`).

    A round hands its batches over once its own events are dispatched (`request`) and goes on
    at once. One settle runs at a time per process, and batches handed over meanwhile are
    settled together by the next, so at most one transaction per process waits on a batch row,
    where every round in flight used to wait on it before going on (docs/benchmarks.md,
    section 6). The settle's events (`BatchProgressed`, `BatchCompleted`) are dispatched after
    its commit, in the order settled, so after those of the rounds that asked for it.
    `BatchHandle.wait` polls the row and sees the completion once it committed.

    Any request also looks for stranded increments, at most once per `STRANDED_AFTER`, so the
    next round of any channel folds what a failed settle left. On SQLite the rounds count in
    their own transaction (`count_in_round`) and hand nothing over but that look."""

    def __init__(self, db: Database, dispatch: Callable[[object], Awaitable[None]]) -> None:
        self._db = db
        self._dispatch = dispatch
        self._wanted: set[str] = set()
        self._stranded = StrandedLookout()
        self._look_for_stranded = False
        self._task: asyncio.Task[None] | None = None

    def request(self, batch_ids: Iterable[str]) -> None:
        self._wanted.update(batch_ids)
        if self._stranded.due():
            self._look_for_stranded = True
        if (self._wanted or self._look_for_stranded) and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batch-settle")

    async def _run(self) -> None:
        while self._wanted or self._look_for_stranded:
            wanted, self._wanted = self._wanted, set()
            stranded, self._look_for_stranded = self._look_for_stranded, False
            for event in await settle_or_log(self._db, wanted, stranded=stranded):
                await self._dispatch(event)  # the bus logs a failing listener and goes on

    async def drain(self) -> None:
        """Until every batch handed over is settled (shutdown, tests)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


# -- reading and working batches (`nexus batches`) -------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchView:
    """One catalog-sync batch: `processed` and `failed` count its finished listings."""

    id: str
    trigger: str
    status: str
    total: int
    processed: int
    failed: int
    created_at: datetime
    completed_at: datetime | None

    @property
    def pending(self) -> int:
        return max(0, self.total - self.processed - self.failed)

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["pending"] = self.pending
        return {key: v.isoformat() if isinstance(v, datetime) else v for key, v in document.items()}


@dataclass(frozen=True, slots=True)
class BatchDetail:
    """A batch with its dead letters still open (`nexus dlq show` for each) and its push requests
    (the audit rows): how many, how many listings they carried and how many succeeded."""

    batch: BatchView
    dead_letters: DeadLetterPage
    requests: int
    pushed: int
    succeeded: int

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.batch.as_dict(),
            "dead_letters": self.dead_letters.as_dict(),
            "push_requests": {
                "requests": self.requests,
                "listings": self.pushed,
                "succeeded": self.succeeded,
            },
        }


def _batch_view(row: SyncBatch, unfolded: tuple[int, int] = (0, 0)) -> BatchView:
    return BatchView(
        row.id,
        row.trigger,
        str(row.status),
        row.total,
        row.processed + unfolded[0],
        row.failed + unfolded[1],
        row.created_at,
        row.completed_at,
    )


async def _unfolded(session: AsyncSession, batch_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Members finished (processed, failed) per batch whose increments no settle folded yet."""
    statement = (
        select(
            SyncBatchProgress.batch_id,
            func.sum(SyncBatchProgress.processed),
            func.sum(SyncBatchProgress.failed),
        )
        .where(SyncBatchProgress.batch_id.in_(list(batch_ids)))
        .group_by(SyncBatchProgress.batch_id)
    )
    return {
        batch_id: (int(processed or 0), int(failed or 0))
        for batch_id, processed, failed in (await session.execute(statement)).all()
    }


async def list_batches(db: Database, *, limit: int = 50, offset: int = 0) -> tuple[list[BatchView], int]:
    """A page of batches, newest first, and how many there are."""
    if limit < 1 or offset < 0:
        raise UnknownBatchError(f"limit must be at least 1 and offset at least 0 (got {limit}, {offset})")
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(SyncBatch))
        statement = (
            select(SyncBatch).order_by(SyncBatch.created_at.desc(), SyncBatch.id).limit(limit).offset(offset)
        )
        rows = list((await session.execute(statement)).scalars())
        unfolded = await _unfolded(session, [row.id for row in rows])
    return [_batch_view(row, unfolded.get(row.id, (0, 0))) for row in rows], int(total or 0)


async def read_batch(db: Database, batch_id: str) -> BatchView:
    async with db.read() as session:
        return await _read_batch(session, batch_id)


async def _read_batch(session: AsyncSession, batch_id: str) -> BatchView:
    row = await session.get(SyncBatch, batch_id)
    if row is None:
        raise UnknownBatchError(f"no batch {batch_id}")
    return _batch_view(row, (await _unfolded(session, [batch_id])).get(batch_id, (0, 0)))


async def show_batch(db: Database, batch_id: str) -> BatchDetail:
    async with db.read() as session:
        view = await _read_batch(session, batch_id)
        audit = (
            await session.execute(
                select(func.count(), func.sum(SyncJob.count), func.sum(SyncJob.succeeded)).where(
                    SyncJob.batch_id == batch_id
                )
            )
        ).one()
    letters = await list_dead_letters(db, DeadLetterFilter(batch=batch_id), limit=100)
    return BatchDetail(view, letters, int(audit[0] or 0), int(audit[1] or 0), int(audit[2] or 0))


async def retry_failed(db: Database, batch_id: str, *, actor: str, note: str | None = None) -> ReplayResult:
    """Replay the batch's failed dead letters (`nexus.sync.dead_letters`): their listings are
    queued again and pushed at what they should show now. The batch's own counts stay as they
    were; the letters go to `replaying`, then `resolved` when the push lands."""
    async with db.read() as session:
        if await session.get(SyncBatch, batch_id) is None:
            raise UnknownBatchError(f"no batch {batch_id}")
    where = DeadLetterFilter(batch=batch_id, statuses=frozenset({DeadLetterStatus.FAILED}))
    return await replay_dead_letters(db, None, where, actor=actor, note=note or f"retry of batch {batch_id}")
