"""What happened: the push audit (`sync_jobs`, masked), open conflicts, the operator action log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query

from nexus.access.actions import list_actions
from nexus.sync.conflicts import open_conflicts, resolve_conflict
from nexus.sync.history import list_push_audit
from nexus.web.api.common import PageParams, RowId, page_of, recorded, resource_router, sliced
from nexus.web.api.schemas import (
    ActionOut,
    ConflictOut,
    ConflictResolveIn,
    ConflictResolveOut,
    Page,
    PushAuditOut,
)
from nexus.web.auth import ManageAccess, ViewAccess

if TYPE_CHECKING:
    from nexus.engine import Nexus

PushStatus = Literal["ok", "partial", "failed", "retry", "stale"]


def router(nexus: Nexus) -> APIRouter:
    api = resource_router("records")

    @api.get(
        "/audit", response_model=Page[PushAuditOut], summary="Push requests (newest first), secrets masked"
    )
    async def audit(
        principal: ViewAccess,
        page: PageParams,
        channel: str | None = None,
        sku: Annotated[str | None, Query(description="requests that carried this SKU")] = None,
        status: PushStatus | None = None,
    ) -> dict[str, Any]:
        found = await list_push_audit(
            nexus.db, channel=channel, sku=sku, status=status, limit=page.limit, offset=page.offset
        )
        return found.as_dict()

    @api.get("/conflicts", response_model=Page[ConflictOut], summary="Open reconciliation conflicts")
    async def conflicts(
        principal: ViewAccess, page: PageParams, channel: str | None = None
    ) -> dict[str, Any]:
        rows = await open_conflicts(nexus.db, channel)
        return sliced(
            [
                {
                    "id": row.id,
                    "channel": row.channel,
                    "sku": row.sku,
                    "listing_id": row.listing_id,
                    "believed": row.believed,
                    "observed": row.observed,
                    "desired": row.desired,
                    "created_at": row.created_at,
                }
                for row in rows
            ],
            page,
        )

    @api.post(
        "/conflicts/{conflict_id}/resolve",
        response_model=ConflictResolveOut,
        summary="Settle a conflict for Nexus or for the channel",
        responses={409: {"description": "the listing has a request in flight; try again shortly"}},
    )
    async def resolve(principal: ManageAccess, conflict_id: RowId, body: ConflictResolveIn) -> dict[str, Any]:
        change = await resolve_conflict(nexus.db, nexus.allocator, conflict_id, body.take)
        if change is not None:
            await nexus.after_changes([change])
        await recorded(nexus, principal, "conflict.resolve", str(conflict_id), {"take": body.take})
        return {
            "id": conflict_id,
            "take": body.take,
            "booked": change.delta if change is not None else 0,
            "sku": change.sku if change is not None else None,
            "on_hand": change.on_hand if change is not None else None,
        }

    @api.get("/actions", response_model=Page[ActionOut], summary="Operator actions (who did what, when)")
    async def actions(principal: ViewAccess, page: PageParams) -> dict[str, Any]:
        views, total = await list_actions(nexus.db, limit=page.limit, offset=page.offset)
        return page_of([view.as_dict() for view in views], total, page)

    return api
