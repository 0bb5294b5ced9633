"""Batch bookkeeping: count finished members of catalog-sync batches and complete them."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.vocabulary import BatchState
from nexus.events import BatchCompleted, BatchProgressed
from nexus.storage.models import SyncBatch, utcnow


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
