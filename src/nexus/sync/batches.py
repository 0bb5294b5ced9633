"""Catalog-sync batches: the bookkeeping of their finished members (the push worker's outcomes),
and reading and retrying them (`nexus batches`; no SQL in the CLI). A batch's failed listings
are dead-lettered with the batch's id in the letter's payload; retrying them is a replay through
the dead-letter desk (`nexus.sync.dead_letters`), never new SQL over the listings."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.vocabulary import BatchState, DeadLetterStatus
from nexus.errors import UnknownBatchError
from nexus.events import BatchCompleted, BatchProgressed
from nexus.storage.database import Database
from nexus.storage.models import SyncBatch, SyncJob, utcnow
from nexus.sync.dead_letters import (
    DeadLetterFilter,
    DeadLetterPage,
    ReplayResult,
    list_dead_letters,
    replay_dead_letters,
)


async def finish_members(
    session: AsyncSession, finished: Counter[tuple[str, bool]]
) -> list[BatchProgressed | BatchCompleted]:
    """`finished` counts members per (batch id, failed). Returns the events to dispatch after
    the commit: progress for every batch touched, completion for those now done."""
    events: list[BatchProgressed | BatchCompleted] = []
    for (batch_id, failed), count in finished.items():
        column = SyncBatch.failed if failed else SyncBatch.processed
        await session.execute(
            update(SyncBatch).where(SyncBatch.id == batch_id).values({column: column + count})
        )
    for batch_id in {batch_id for batch_id, _ in finished}:
        batch = await session.get(SyncBatch, batch_id, populate_existing=True)
        if batch is None:
            continue
        events.append(BatchProgressed(batch.id, batch.total, batch.processed, batch.failed))
        if batch.status == BatchState.RUNNING and batch.processed + batch.failed >= batch.total:
            batch.status = BatchState.COMPLETED
            batch.completed_at = utcnow()
            events.append(BatchCompleted(batch.id, batch.total, batch.processed, batch.failed))
    return events


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


def _batch_view(row: SyncBatch) -> BatchView:
    return BatchView(
        row.id,
        row.trigger,
        str(row.status),
        row.total,
        row.processed,
        row.failed,
        row.created_at,
        row.completed_at,
    )


async def list_batches(db: Database, *, limit: int = 50, offset: int = 0) -> tuple[list[BatchView], int]:
    """A page of batches, newest first, and how many there are."""
    if limit < 1 or offset < 0:
        raise UnknownBatchError(f"limit must be at least 1 and offset at least 0 (got {limit}, {offset})")
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(SyncBatch))
        statement = (
            select(SyncBatch).order_by(SyncBatch.created_at.desc(), SyncBatch.id).limit(limit).offset(offset)
        )
        return [_batch_view(row) for row in (await session.execute(statement)).scalars()], int(total or 0)


async def show_batch(db: Database, batch_id: str) -> BatchDetail:
    async with db.read() as session:
        row = await session.get(SyncBatch, batch_id)
        if row is None:
            raise UnknownBatchError(f"no batch {batch_id}")
        audit = (
            await session.execute(
                select(func.count(), func.sum(SyncJob.count), func.sum(SyncJob.succeeded)).where(
                    SyncJob.batch_id == batch_id
                )
            )
        ).one()
    letters = await list_dead_letters(db, DeadLetterFilter(batch=batch_id), limit=100)
    return BatchDetail(_batch_view(row), letters, int(audit[0] or 0), int(audit[1] or 0), int(audit[2] or 0))


async def retry_failed(db: Database, batch_id: str, *, actor: str, note: str | None = None) -> ReplayResult:
    """Replay the batch's failed dead letters (`nexus.sync.dead_letters`): their listings are
    queued again and pushed at what they should show now. The batch's own counts stay as they
    were; the letters go to `replaying`, then `resolved` when the push lands."""
    async with db.read() as session:
        if await session.get(SyncBatch, batch_id) is None:
            raise UnknownBatchError(f"no batch {batch_id}")
    where = DeadLetterFilter(batch=batch_id, statuses=frozenset({DeadLetterStatus.FAILED}))
    return await replay_dead_letters(db, None, where, actor=actor, note=note or f"retry of batch {batch_id}")
