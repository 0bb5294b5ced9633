"""What every resource module shares: the one mapping of service errors to API errors, the
paging parameters, and the record of a manage action.

Service errors become `ApiError`s in `ServiceRoute`, the route class of every API router, so no
route catches them itself and every answer has the one error shape (`nexus.web.errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from nexus.access.actions import record_action
from nexus.access.tokens import Principal
from nexus.errors import (
    ChannelBlockedError,
    ConfigError,
    DeadLetterError,
    InvalidArgumentError,
    ListingBusyError,
    NexusError,
    UnknownBatchError,
    UnknownChannelError,
    UnknownConflictError,
    UnknownDeadLetterError,
    UnknownSkuError,
)
from nexus.web.api.schemas import MAX_ID, NUL_PROBLEM, ErrorOut, has_nul
from nexus.web.auth import manage_access, view_access
from nexus.web.errors import ApiError
from nexus.webhooks.log import UnknownWebhookError, WebhookLogError

if TYPE_CHECKING:
    from nexus.engine import Nexus

MAX_LIMIT = 500
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]
ROLE_KEY = "x-required-role"

# Most specific first: the first class an error is an instance of decides.
SERVICE_ERRORS: tuple[tuple[type[NexusError], int, str], ...] = (
    (UnknownDeadLetterError, 404, "not_found"),
    (UnknownWebhookError, 404, "not_found"),
    (UnknownChannelError, 404, "not_found"),
    (UnknownSkuError, 404, "not_found"),
    (UnknownBatchError, 404, "not_found"),
    (UnknownConflictError, 404, "not_found"),
    (ChannelBlockedError, 409, "channel_unavailable"),
    (ListingBusyError, 409, "conflict"),
    (DeadLetterError, 409, "conflict"),
    (WebhookLogError, 409, "conflict"),
    (InvalidArgumentError, 422, "invalid_request"),
    # A channel whose driver cannot be built (credentials missing from the environment).
    (ConfigError, 503, "unavailable"),
)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no token, or an unknown or revoked one"},
    403: {"model": ErrorOut, "description": "the token's role may not do this (or a missing CSRF token)"},
    422: {"model": ErrorOut, "description": "the request does not match the API"},
}


def api_error(exc: NexusError) -> ApiError | None:
    """The API error a service error answers as; None: not one a caller can act on (a 500)."""
    for kind, status, code in SERVICE_ERRORS:
        if isinstance(exc, kind):
            return ApiError(status, code, str(exc))
    return None


class ServiceRoute(APIRoute):
    """An API route: service errors answer as `ApiError`s, and the OpenAPI operation names the
    role it needs (`x-required-role`, read from its auth dependency)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        role = _role(self)
        if role is not None:
            self.openapi_extra = {**(self.openapi_extra or {}), ROLE_KEY: role}
            if self.description:
                self.description += f"\n\nRequires a `{role}` token."
            else:
                self.description = f"Requires a `{role}` token."

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            # A NUL in a path or query value reaches PostgreSQL as an error (a 500); refuse it here.
            if has_nul(request.path_params) or has_nul(request.query_params.multi_items()):
                raise ApiError(422, "invalid_request", NUL_PROBLEM)
            try:
                return await handler(request)
            except NexusError as exc:
                error = api_error(exc)
                if error is None:
                    raise
                raise error from exc

        return translated


def _role(route: APIRoute) -> str | None:
    calls = {dependency.call for dependency in route.dependant.dependencies}
    if manage_access in calls:
        return "manage"
    if view_access in calls:
        return "view"
    return None


# Declares the Bearer scheme in the OpenAPI document (for clients and generated tests); it checks
# nothing itself (auto_error=False): `view_access`/`manage_access` do.
BEARER = HTTPBearer(auto_error=False, description="a token from `nexus token create NAME --role view|manage`")


def resource_router(tag: str) -> APIRouter:
    return APIRouter(
        tags=[tag], route_class=ServiceRoute, responses=ERROR_RESPONSES, dependencies=[Depends(BEARER)]
    )


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int


async def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="items to skip")] = 0,
) -> Paging:
    return Paging(limit, offset)


PageParams = Annotated[Paging, Depends(paging)]


def page_of(items: Sequence[dict[str, Any]], total: int, paging: Paging) -> dict[str, Any]:
    """A page answer for a listing whose service pages itself and gave `items` and `total`."""
    following = paging.offset + len(items)
    return {
        "items": list(items),
        "total": total,
        "limit": paging.limit,
        "offset": paging.offset,
        "next_offset": following if following < total else None,
    }


def sliced(items: Sequence[dict[str, Any]], paging: Paging) -> dict[str, Any]:
    """A page of a short listing a service answers whole (channels, conflicts)."""
    return page_of(items[paging.offset : paging.offset + paging.limit], len(items), paging)


async def recorded(
    nexus: Nexus, principal: Principal, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """The one audit row of a manage action that was carried out: who, what, when."""
    await record_action(nexus.db, principal, action, target[:255], detail)


def known_channel(nexus: Nexus, channel: str) -> None:
    if channel not in nexus.settings.channels:
        names = ", ".join(sorted(nexus.settings.channels)) or "none"
        raise ApiError(404, "not_found", f"no channel named {channel!r} is configured (configured: {names})")
