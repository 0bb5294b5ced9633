"""Dead letters: list with filters, show, replay and resolve a selection.

A replay or resolve acts on `{"ids": [...]}` or on a filter with at least one criterion; an empty
body is refused (422 `unfiltered`): nothing acts on every dead letter at once (Horizon refused an
unfiltered "retry all" for the accidents it causes).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query

from nexus.domain.vocabulary import DeadLetterStatus
from nexus.masking import mask_secrets
from nexus.sync.dead_letters import (
    OPEN,
    DeadLetterFilter,
    list_dead_letters,
    replay_dead_letters,
    resolve_dead_letters,
    show_dead_letter,
)
from nexus.web.api.common import MAX_LIMIT, PageParams, RowId, recorded, resource_router
from nexus.web.api.schemas import (
    DeadLetterDetailOut,
    DeadLetterOut,
    DeadLetterSelectionIn,
    Page,
    ReplayOut,
    ResolveOut,
)
from nexus.web.auth import ManageAccess, ViewAccess
from nexus.web.errors import ApiError

if TYPE_CHECKING:
    from nexus.engine import Nexus

STATUSES: dict[str, frozenset[DeadLetterStatus] | None] = {
    "open": OPEN,
    "failed": frozenset({DeadLetterStatus.FAILED}),
    "replaying": frozenset({DeadLetterStatus.REPLAYING}),
    "resolved": frozenset({DeadLetterStatus.RESOLVED}),
    "all": None,
}
StatusName = Literal["open", "failed", "replaying", "resolved", "all"]
SELECTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "an id names no dead letter"},
    409: {"description": "a dead letter named is resolved already (replay)"},
    422: {"description": "no ids and no filter (`unfiltered`), or both (`invalid_request`)"},
}


def selection(body: DeadLetterSelectionIn | None) -> tuple[list[int] | None, DeadLetterFilter | None]:
    """The ids, or the filter, a replay or resolve acts on; never everything."""
    if body is None:
        body = DeadLetterSelectionIn()
    where = DeadLetterFilter(
        channel=body.channel,
        sku=body.sku,
        error=body.error,
        older_than=timedelta(seconds=body.older_than) if body.older_than is not None else None,
        batch=body.batch,
    )
    if body.ids and where.selective:
        raise ApiError(422, "invalid_request", "give dead letter ids or a filter, not both")
    if body.ids:
        return list(body.ids), None
    if not where.selective:
        raise ApiError(
            422,
            "unfiltered",
            "select dead letters by ids or by a filter (channel, sku, error, older_than, batch); "
            "nothing acts on every dead letter at once",
        )
    return None, where


def router(nexus: Nexus) -> APIRouter:
    api = resource_router("dead letters")

    @api.get("/dead-letters", response_model=Page[DeadLetterOut], summary="Dead letters, newest first")
    async def dead_letters(
        principal: ViewAccess,
        page: PageParams,
        channel: str | None = None,
        sku: str | None = None,
        error: Annotated[str | None, Query(description="a case-insensitive part of the error")] = None,
        older_than: Annotated[
            float | None, Query(ge=0, le=10 * 365 * 86400, description="seconds since it failed, at least")
        ] = None,
        status: Annotated[StatusName, Query(description="open: failed or replaying")] = "open",
        batch: Annotated[str | None, Query(description="failed members of this sync batch")] = None,
    ) -> dict[str, Any]:
        where = DeadLetterFilter(
            channel=channel,
            sku=sku,
            error=error,
            older_than=timedelta(seconds=older_than) if older_than is not None else None,
            statuses=STATUSES[status],
            batch=batch,
        )
        found = await list_dead_letters(nexus.db, where, limit=page.limit, offset=page.offset)
        return found.as_dict()

    @api.get(
        "/dead-letters/{letter_id}",
        response_model=DeadLetterDetailOut,
        summary="A dead letter with its payload, history and the listing's current state",
    )
    async def dead_letter(principal: ViewAccess, letter_id: RowId) -> dict[str, Any]:
        detail = (await show_dead_letter(nexus.db, letter_id)).as_dict()
        detail["payload"] = mask_secrets(detail["payload"])
        return detail

    @api.post(
        "/dead-letters/replay",
        response_model=ReplayOut,
        summary="Queue the selected dead letters' listings for a push of what they should show now",
        responses=SELECTION_RESPONSES,
    )
    async def replay(principal: ManageAccess, body: DeadLetterSelectionIn | None = None) -> dict[str, Any]:
        ids, where = selection(body)
        note = body.note if body is not None else None
        result = await replay_dead_letters(nexus.db, ids, where, actor=principal.actor, note=note)
        nexus.notify(result.channels)
        await recorded(
            nexus, principal, "dead_letter.replay", _target(ids, where), {"replaying": result.replaying}
        )
        return result.as_dict()

    @api.post(
        "/dead-letters/resolve",
        response_model=ResolveOut,
        summary="Acknowledge the selected dead letters without replaying them",
        responses=SELECTION_RESPONSES,
    )
    async def resolve(principal: ManageAccess, body: DeadLetterSelectionIn | None = None) -> dict[str, Any]:
        ids, where = selection(body)
        if ids is None:
            assert where is not None
            ids = await _matching(nexus, where)
        note = body.note if body is not None else None
        if ids:
            outcome = (await resolve_dead_letters(nexus.db, ids, actor=principal.actor, note=note)).as_dict()
        else:
            outcome = {"resolved": [], "already": []}  # a filter that matches nothing resolves nothing
        await recorded(
            nexus, principal, "dead_letter.resolve", _target(ids, where), {"resolved": outcome["resolved"]}
        )
        return outcome

    return api


async def _matching(nexus: Nexus, where: DeadLetterFilter) -> list[int]:
    """Every open dead letter matching `where`, through the listing's pages."""
    ids: list[int] = []
    offset = 0
    while True:
        page = await list_dead_letters(nexus.db, where, limit=MAX_LIMIT, offset=offset)
        ids.extend(letter.id for letter in page.items)
        if page.next_offset is None:
            return ids
        offset = page.next_offset


def _target(ids: list[int] | None, where: DeadLetterFilter | None) -> str:
    if ids is not None and where is None:
        return "ids:" + ",".join(str(letter_id) for letter_id in ids[:20]) + ("..." if len(ids) > 20 else "")
    assert where is not None
    criteria = {
        "channel": where.channel,
        "sku": where.sku,
        "error": where.error,
        "older_than": where.older_than.total_seconds() if where.older_than is not None else None,
        "batch": where.batch,
    }
    return "filter:" + ",".join(f"{key}={value}" for key, value in criteria.items() if value is not None)
