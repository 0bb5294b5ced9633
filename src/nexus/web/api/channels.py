"""Channels: their cards (state, bucket, queue, pace), success rates, pause and resume."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from nexus.sync.channel_state import ChannelHealth
from nexus.sync.overview import channel_overview, health_rates
from nexus.web.api.common import PageParams, known_channel, recorded, resource_router, sliced
from nexus.web.api.schemas import (
    ChannelCardOut,
    ChannelDetailOut,
    ChannelStateOut,
    HealthRatesOut,
    Page,
    PauseIn,
)
from nexus.web.auth import ManageAccess, ViewAccess

if TYPE_CHECKING:
    from nexus.engine import Nexus


def router(nexus: Nexus) -> APIRouter:
    api = resource_router("channels")

    async def state(health: ChannelHealth) -> dict[str, Any]:
        return {**health.as_dict(), "queued": await nexus.queue.queued(health.channel)}

    @api.get("/channels", response_model=Page[ChannelCardOut], summary="Every channel's card")
    async def channels(principal: ViewAccess, page: PageParams) -> dict[str, Any]:
        return sliced([card.as_dict() for card in await channel_overview(nexus)], page)

    @api.get(
        "/health",
        response_model=Page[HealthRatesOut],
        summary="Push success rates per channel over 1 h, 24 h and 7 days",
    )
    async def rates(principal: ViewAccess, page: PageParams) -> dict[str, Any]:
        return sliced([rate.as_dict() for rate in await health_rates(nexus)], page)

    @api.get("/channels/{channel}", response_model=ChannelDetailOut, summary="One channel's card and rates")
    async def channel(principal: ViewAccess, channel: str) -> dict[str, Any]:
        known_channel(nexus, channel)
        [card] = [card for card in await channel_overview(nexus) if card.channel == channel]
        [rate] = [rate for rate in await health_rates(nexus) if rate.channel == channel]
        return {**card.as_dict(), "rates": rate.as_dict()}

    @api.post(
        "/channels/{channel}/pause",
        response_model=ChannelStateOut,
        summary="Stop pushing to a channel in every process (webhooks are still booked)",
    )
    async def pause(principal: ManageAccess, channel: str, body: PauseIn | None = None) -> dict[str, Any]:
        reason = body.reason if body is not None else None
        health = await nexus.channel_states.pause(channel, reason=reason, actor=principal.actor)
        await recorded(nexus, principal, "channel.pause", channel, {"reason": reason})
        return await state(health)

    @api.post(
        "/channels/{channel}/resume",
        response_model=ChannelStateOut,
        summary="Push to a paused channel again",
    )
    async def resume(principal: ManageAccess, channel: str) -> dict[str, Any]:
        health = await nexus.channel_states.resume(channel, actor=principal.actor)
        await recorded(nexus, principal, "channel.resume", channel)
        return await state(health)

    return api
