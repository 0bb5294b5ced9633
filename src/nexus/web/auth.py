"""Authentication for the API and the dashboard; closed by default.

* API clients send `Authorization: Bearer <token>` (`nexus token create NAME --role view|manage`).
* The dashboard signs in with a token once and then carries a session cookie (HttpOnly,
  SameSite=Strict, Secure when served over HTTPS). A state-changing request that comes with the
  cookie must also carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`):
  SameSite alone does not cover older browsers or same-site subdomains.
* A host application that mounts Nexus may replace all of this with its own check:
  `create_app(nexus, auth=check)`, where `await check(request)` returns a `Principal` or None
  (like Horizon's gate). CSRF is then the host's concern.

Webhook routes are not behind this: a delivery's signature is its authentication.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Response

from nexus.access.tokens import Principal
from nexus.web.errors import ApiError

if TYPE_CHECKING:
    from nexus.engine import Nexus

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "HostAuth",
    "ManageAccess",
    "ViewAccess",
    "csrf_token",
    "manage_access",
    "session_principal",
    "sign_in",
    "sign_out",
    "view_access",
]

SESSION_COOKIE = "nexus_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/nexus"

HostAuth = Callable[[Request], Awaitable[Principal | None]]

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _nexus(request: Request) -> Nexus:
    nexus: Nexus = request.app.state.nexus
    return nexus


def _host_auth(request: Request) -> HostAuth | None:
    return getattr(request.app.state, "nexus_auth", None)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiError(401, "unauthenticated", "use 'Authorization: Bearer <token>'")
    return credentials.strip()


async def _from_cookie(request: Request) -> tuple[Principal, str] | None:
    """The cookie's principal and its CSRF token, cached on the request."""
    if "nexus_session" in request.scope:
        cached: tuple[Principal, str] | None = request.scope["nexus_session"]
        return cached
    secret = request.cookies.get(SESSION_COOKIE)
    found = await _nexus(request).tokens.session(secret) if secret else None
    request.scope["nexus_session"] = found
    return found


async def _authenticate(request: Request) -> tuple[Principal, bool]:
    """The caller, and whether it came by the session cookie (and so needs CSRF)."""
    host = _host_auth(request)
    if host is not None:
        principal = await host(request)
        if principal is None:
            raise ApiError(
                401, "unauthenticated", "the host application's authentication refused the request"
            )
        return principal, False
    secret = _bearer(request)
    if secret is not None:
        principal = await _nexus(request).tokens.authenticate(secret)
        if principal is None:
            raise ApiError(401, "unauthenticated", "unknown or revoked token")
        return principal, False
    session = await _from_cookie(request)
    if session is None:
        raise ApiError(
            401, "unauthenticated", "sign in: send 'Authorization: Bearer <token>' (nexus token create)"
        )
    return session[0], True


async def view_access(request: Request) -> Principal:
    principal, by_cookie = await _authenticate(request)
    if by_cookie and request.method in _UNSAFE_METHODS:
        await _check_csrf(request)
    return principal


async def manage_access(request: Request) -> Principal:
    principal, by_cookie = await _authenticate(request)
    if not principal.may_manage:
        raise ApiError(403, "forbidden", f"{principal.name!r} has the view role; this needs manage")
    if by_cookie:
        await _check_csrf(request)
    return principal


# For route signatures: `principal: ViewAccess` or `principal: ManageAccess`.
ViewAccess = Annotated[Principal, Depends(view_access)]
ManageAccess = Annotated[Principal, Depends(manage_access)]


async def _check_csrf(request: Request) -> None:
    expected = csrf_token_of(await _from_cookie(request))
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # Starlette caches it; the route can read it again
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or sent is None or not hmac.compare_digest(sent, expected):
        raise ApiError(403, "csrf", "missing or wrong CSRF token; reload the page")


def csrf_token_of(session: tuple[Principal, str] | None) -> str:
    return "" if session is None else session[1]


async def session_principal(request: Request) -> Principal | None:
    """The signed-in dashboard user, or None (the page then redirects to the sign-in page)."""
    host = _host_auth(request)
    if host is not None:
        return await host(request)
    session = await _from_cookie(request)
    return None if session is None else session[0]


def csrf_token(request: Request) -> str:
    """The current session's CSRF token, for hidden form fields and the `X-CSRF-Token` header.
    Call it after `session_principal` (or a dependency) has looked the session up."""
    cached: tuple[Principal, str] | None = request.scope.get("nexus_session")
    return csrf_token_of(cached)


async def sign_in(request: Request, response: Response, token: str) -> Principal | None:
    opened = await _nexus(request).tokens.open_session(token.strip())
    if opened is None:
        return None
    principal, secret, csrf = opened
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
    )
    request.scope["nexus_session"] = (principal, csrf)
    return principal


async def sign_out(request: Request, response: Response) -> None:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await _nexus(request).tokens.close_session(secret)
    request.scope["nexus_session"] = None
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
