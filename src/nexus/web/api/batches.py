"""Starting a sync (a batch) and following batches: progress, failed members, retrying them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from nexus.sync.batches import list_batches, retry_failed, show_batch
from nexus.web.api.common import PageParams, page_of, recorded, resource_router
from nexus.web.api.schemas import BatchDetailOut, BatchOut, Page, ReplayOut, SyncIn, SyncOut
from nexus.web.auth import ManageAccess, ViewAccess

if TYPE_CHECKING:
    from nexus.engine import Nexus


def router(nexus: Nexus) -> APIRouter:
    api = resource_router("sync")

    @api.post(
        "/sync",
        response_model=SyncOut,
        status_code=202,
        summary="Queue a push of every listing (of some SKUs, on some channels); answers the batch id",
        responses={409: {"description": "a channel is paused or disconnected (`channel_unavailable`)"}},
    )
    async def sync(principal: ManageAccess, body: SyncIn | None = None) -> dict[str, Any]:
        body = body or SyncIn()
        channels = body.channels or nexus.channel_names()
        await nexus.channel_states.require_pushable(channels)  # its batch could never finish
        batch_id = await nexus.catalog(body.skus).sync_all(channels, trigger="api")
        await recorded(
            nexus,
            principal,
            "sync.start",
            batch_id,
            {"channels": channels, "skus": len(body.skus) if body.skus is not None else None},
        )
        return {"batch_id": batch_id, "channels": channels}

    @api.get("/batches", response_model=Page[BatchOut], summary="Sync batches, newest first")
    async def batches(principal: ViewAccess, page: PageParams) -> dict[str, Any]:
        views, total = await list_batches(nexus.db, limit=page.limit, offset=page.offset)
        return page_of([view.as_dict() for view in views], total, page)

    @api.get(
        "/batches/{batch_id}",
        response_model=BatchDetailOut,
        summary="A batch's progress, its failed members (open dead letters) and push requests",
    )
    async def batch(principal: ViewAccess, batch_id: str) -> dict[str, Any]:
        return (await show_batch(nexus.db, batch_id)).as_dict()

    @api.post(
        "/batches/{batch_id}/retry-failed",
        response_model=ReplayOut,
        summary="Replay the batch's failed members at what they should show now",
    )
    async def retry(principal: ManageAccess, batch_id: str) -> dict[str, Any]:
        result = await retry_failed(nexus.db, batch_id, actor=principal.actor)
        nexus.notify(result.channels)
        await recorded(nexus, principal, "batch.retry_failed", batch_id, {"replaying": len(result.replaying)})
        return result.as_dict()

    return api
