"""A channel's listings, with dirty/failed filters, and pushing one listing now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query

from nexus.sync.history import list_listings
from nexus.sync.listings import force_push
from nexus.web.api.common import PageParams, known_channel, recorded, resource_router
from nexus.web.api.schemas import ForcePushOut, ListingOut, Page
from nexus.web.auth import ManageAccess, ViewAccess

if TYPE_CHECKING:
    from nexus.engine import Nexus


def router(nexus: Nexus) -> APIRouter:
    api = resource_router("listings")

    @api.get(
        "/channels/{channel}/listings",
        response_model=Page[ListingOut],
        summary="A channel's listings (oldest first)",
    )
    async def channel_listings(
        principal: ViewAccess,
        channel: str,
        page: PageParams,
        dirty: Annotated[bool | None, Query(description="marked for a push (true) or not (false)")] = None,
        failed: Annotated[bool | None, Query(description="dead-lettered (true) or not (false)")] = None,
    ) -> dict[str, Any]:
        known_channel(nexus, channel)
        listings = await list_listings(
            nexus.db, channel, dirty=dirty, failed=failed, limit=page.limit, offset=page.offset
        )
        return listings.as_dict()

    @api.post(
        "/channels/{channel}/listings/{sku}/push",
        response_model=ForcePushOut,
        summary="Push one listing now, whatever it shows",
        responses={409: {"description": "the channel is paused or disconnected (`channel_unavailable`)"}},
    )
    async def push_listing(principal: ManageAccess, channel: str, sku: str) -> dict[str, Any]:
        known_channel(nexus, channel)
        pushed = await force_push(nexus, channel, sku)
        await recorded(nexus, principal, "listing.push", f"{channel}/{sku}", {"in_sync": pushed.in_sync})
        return pushed.as_dict()

    return api
