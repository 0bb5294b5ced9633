"""The webhook log: search stored deliveries, show one with its raw body, process one again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query

from nexus.domain.vocabulary import WebhookStatus
from nexus.web.api.common import PageParams, RowId, recorded, resource_router
from nexus.web.api.schemas import Page, ReprocessOut, WebhookDetailOut, WebhookOut
from nexus.web.auth import ManageAccess, ViewAccess
from nexus.web.errors import ApiError
from nexus.webhooks.log import WebhookFilter, list_webhooks, reprocess_webhooks, show_webhook

if TYPE_CHECKING:
    from nexus.engine import Nexus

RAW_BODY_LIMIT = 1 << 20  # bytes: what the detail shows at most


def router(nexus: Nexus) -> APIRouter:
    api = resource_router("webhooks")

    @api.get("/webhooks", response_model=Page[WebhookOut], summary="Stored webhook deliveries, newest first")
    async def webhooks(
        principal: ViewAccess,
        page: PageParams,
        channel: str | None = None,
        topic: str | None = None,
        status: WebhookStatus | None = None,
        verified: Annotated[
            bool | None, Query(description="signature verified (false: rejected at the door)")
        ] = None,
        remote_id: Annotated[str | None, Query(description="the channel's delivery or event id")] = None,
        received_from: Annotated[
            datetime | None, Query(description="received at or after (ISO 8601)")
        ] = None,
        received_to: Annotated[datetime | None, Query(description="received before (ISO 8601)")] = None,
        since: Annotated[
            float | None,
            Query(gt=0, le=10 * 365 * 86400, description="received at most this many seconds ago"),
        ] = None,
    ) -> dict[str, Any]:
        where = WebhookFilter(
            channel=channel,
            status=status,
            topic=topic,
            since=timedelta(seconds=since) if since is not None else None,
            verified=verified,
            remote_id=remote_id,
            received_from=_aware(received_from),
            received_to=_aware(received_to),
        )
        found = await list_webhooks(nexus.db, where, limit=page.limit, offset=page.offset)
        return found.as_dict()

    @api.get(
        "/webhooks/{log_id}",
        response_model=WebhookDetailOut,
        summary="A stored delivery with its headers (secrets masked) and raw body",
    )
    async def webhook(
        principal: ViewAccess,
        log_id: RowId,
        body_limit: Annotated[
            int, Query(ge=0, le=RAW_BODY_LIMIT, description="bytes of body to show")
        ] = 65536,
    ) -> dict[str, Any]:
        return (await show_webhook(nexus.db, log_id, body_limit=body_limit)).as_dict()

    @api.post(
        "/webhooks/{log_id}/reprocess",
        response_model=ReprocessOut,
        summary="Process a stored delivery again (idempotent: a sale is booked once)",
        responses={409: {"description": "the delivery was rejected at the door and is never processed"}},
    )
    async def reprocess(principal: ManageAccess, log_id: RowId) -> dict[str, Any]:
        result = await reprocess_webhooks(nexus, [log_id])
        status = result.statuses.get(log_id, "received")
        await recorded(nexus, principal, "webhook.reprocess", str(log_id), {"status": status})
        return {"id": log_id, "status": status, "error": result.errors.get(log_id)}

    return api


def _aware(value: datetime | None) -> datetime | None:
    """The time in UTC (every stored time is); one given without a zone is UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # the first or last day of year 1 or 9999, moved across midnight
        raise ApiError(422, "invalid_request", f"{value.isoformat()} is out of range") from None
