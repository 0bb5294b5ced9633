"""Tokens, roles, dashboard sessions and CSRF, through a real app (nexus.access, nexus.web.auth).

The routes under test are the app's own dependencies mounted on probe routes, so these tests pin
the rules every API and dashboard route inherits.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Form, Request, Response
from sqlalchemy import select

from nexus.access.actions import list_actions, record_action
from nexus.access.tokens import Principal, Role, TokenError
from nexus.engine import Nexus
from nexus.errors import InvalidArgumentError
from nexus.storage.models import ApiToken
from nexus.web import create_app
from nexus.web.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    ManageAccess,
    ViewAccess,
    csrf_token,
    session_principal,
    sign_in,
    sign_out,
)


def probe_routes(app: FastAPI) -> None:
    @app.get("/nexus/api/v1/_probe")
    async def read(principal: ViewAccess) -> dict[str, str]:
        return {"name": principal.name, "role": principal.role.value}

    @app.post("/nexus/api/v1/_probe")
    async def change(principal: ManageAccess) -> dict[str, str]:
        return {"name": principal.name, "changed": "yes"}

    @app.post("/nexus/_form")
    async def form_change(principal: ManageAccess, note: Annotated[str, Form()] = "") -> dict[str, str]:
        return {"name": principal.name, "note": note}

    @app.post("/nexus/_login")
    async def login(request: Request, response: Response, token: Annotated[str, Form()]) -> dict[str, Any]:
        principal = await sign_in(request, response, token)
        return {"signed_in": principal is not None, "csrf": csrf_token(request)}

    @app.get("/nexus/_whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        principal = await session_principal(request)
        return {"name": principal.name if principal else None, "csrf": csrf_token(request)}

    @app.post("/nexus/_logout")
    async def logout(request: Request, response: Response) -> dict[str, bool]:
        await sign_out(request, response)
        return {"signed_out": True}


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://nexus.test")


async def app_with_tokens(make_nexus: Callable[..., Any]) -> tuple[Nexus, FastAPI, str, str]:
    nexus = await make_nexus()
    _, viewer = await nexus.tokens.create("viewer", Role.VIEW)
    _, manager = await nexus.tokens.create("manager", Role.MANAGE)
    app = create_app(nexus)
    probe_routes(app)
    return nexus, app, viewer, manager


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_the_api_is_closed_without_a_token(make_nexus: Callable[..., Any]) -> None:
    _, app, _, _ = await app_with_tokens(make_nexus)
    async with client_for(app) as client:
        answer = await client.get("/nexus/api/v1/_probe")
        wrong = await client.get("/nexus/api/v1/_probe", headers=bearer("nxs_not-a-token"))
        basic = await client.get("/nexus/api/v1/_probe", headers={"Authorization": "Basic eDp5"})
    for refused in (answer, wrong, basic):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "unauthenticated"
        assert refused.headers["www-authenticate"] == "Bearer"
    assert "nxs_not-a-token" not in wrong.text


async def test_view_reads_and_only_manage_changes(make_nexus: Callable[..., Any]) -> None:
    _, app, viewer, manager = await app_with_tokens(make_nexus)
    async with client_for(app) as client:
        read = await client.get("/nexus/api/v1/_probe", headers=bearer(viewer))
        refused = await client.post("/nexus/api/v1/_probe", headers=bearer(viewer))
        changed = await client.post("/nexus/api/v1/_probe", headers=bearer(manager))
    assert read.json() == {"name": "viewer", "role": "view"}
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert changed.json() == {"name": "manager", "changed": "yes"}


async def test_a_revoked_token_is_refused_at_once(make_nexus: Callable[..., Any]) -> None:
    nexus, app, viewer, _ = await app_with_tokens(make_nexus)
    async with client_for(app) as client:
        assert (await client.get("/nexus/api/v1/_probe", headers=bearer(viewer))).status_code == 200
        await nexus.tokens.revoke("viewer")
        assert (await client.get("/nexus/api/v1/_probe", headers=bearer(viewer))).status_code == 401


async def test_only_a_hash_of_the_secret_is_stored(make_nexus: Callable[..., Any]) -> None:
    nexus = await make_nexus()
    view, secret = await nexus.tokens.create("ops", "manage")
    async with nexus.db.read() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.id == view.id))
    assert row is not None
    assert secret not in (row.secret_hash, row.prefix, row.name)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret.startswith(row.prefix) and len(row.prefix) == 8
    assert secret not in repr(await nexus.tokens.list())


async def test_token_names_and_roles_are_checked(make_nexus: Callable[..., Any]) -> None:
    nexus = await make_nexus()
    await nexus.tokens.create("ops", "view")
    with pytest.raises(TokenError, match="ops"):
        await nexus.tokens.create("ops", "manage")
    with pytest.raises(InvalidArgumentError, match="view or manage"):
        await nexus.tokens.create("other", "admin")
    with pytest.raises(TokenError):
        await nexus.tokens.revoke("nobody")


async def test_a_dashboard_session_needs_the_csrf_token_to_change_anything(
    make_nexus: Callable[..., Any],
) -> None:
    _, app, _, manager = await app_with_tokens(make_nexus)
    async with client_for(app) as client:
        refused = await client.post("/nexus/_login", data={"token": "nxs_wrong"})
        assert refused.json()["signed_in"] is False
        assert SESSION_COOKIE not in refused.cookies

        login = await client.post("/nexus/_login", data={"token": manager})
        assert login.json()["signed_in"] is True
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/nexus" in cookie
        assert manager not in cookie
        csrf = login.json()["csrf"]
        assert csrf

        # The cookie alone reads, but changes nothing without the CSRF token.
        assert (await client.get("/nexus/api/v1/_probe")).json()["name"] == "manager"
        forged = await client.post("/nexus/api/v1/_probe")
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf"
        wrong = await client.post("/nexus/api/v1/_probe", headers={CSRF_HEADER: "guess"})
        assert wrong.status_code == 403
        by_header = await client.post("/nexus/api/v1/_probe", headers={CSRF_HEADER: csrf})
        assert by_header.json()["changed"] == "yes"
        forged_form = await client.post("/nexus/_form", data={"note": "x"})
        assert forged_form.status_code == 403
        by_form = await client.post("/nexus/_form", data={"note": "replay", "csrf": csrf})
        assert by_form.json() == {"name": "manager", "note": "replay"}

        assert (await client.get("/nexus/_whoami")).json() == {"name": "manager", "csrf": csrf}
        await client.post("/nexus/_logout")
        assert (await client.get("/nexus/_whoami")).json()["name"] is None
        assert (await client.get("/nexus/api/v1/_probe")).status_code == 401


async def test_revoking_a_token_ends_its_dashboard_sessions(make_nexus: Callable[..., Any]) -> None:
    nexus, app, viewer, _ = await app_with_tokens(make_nexus)
    async with client_for(app) as client:
        await client.post("/nexus/_login", data={"token": viewer})
        assert (await client.get("/nexus/api/v1/_probe")).status_code == 200
        await nexus.tokens.revoke("viewer")
        assert (await client.get("/nexus/api/v1/_probe")).status_code == 401
        assert (await client.get("/nexus/_whoami")).json()["name"] is None


async def test_a_host_application_can_supply_its_own_auth(make_nexus: Callable[..., Any]) -> None:
    nexus = await make_nexus()

    async def gate(request: Request) -> Principal | None:
        user = request.headers.get("X-Host-User")
        if user is None:
            return None
        return Principal(user, Role.MANAGE if user == "admin" else Role.VIEW)

    app = create_app(nexus, auth=gate)
    probe_routes(app)
    _, nexus_token = await nexus.tokens.create("ignored", Role.MANAGE)
    async with client_for(app) as client:
        assert (await client.get("/nexus/api/v1/_probe")).status_code == 401
        # The host's gate replaces Nexus's tokens entirely.
        assert (await client.get("/nexus/api/v1/_probe", headers=bearer(nexus_token))).status_code == 401
        clerk = await client.post("/nexus/api/v1/_probe", headers={"X-Host-User": "clerk"})
        admin = await client.post("/nexus/api/v1/_probe", headers={"X-Host-User": "admin"})
    assert clerk.status_code == 403
    assert admin.json() == {"name": "admin", "changed": "yes"}
    assert Principal("admin", Role.MANAGE).actor == "host:admin"  # told apart in the action log


async def test_operator_actions_are_recorded_with_who_and_when(make_nexus: Callable[..., Any]) -> None:
    nexus = await make_nexus()
    who = Principal("ops-laptop", Role.MANAGE, via="token")
    await record_action(nexus.db, who, "dead_letters.replay", "dead-letter 7", {"ids": [7]})
    await record_action(nexus.db, who, "channels.pause", "shopify")
    actions, total = await list_actions(nexus.db, limit=1)
    assert total == 2
    [latest] = actions
    assert (latest.actor, latest.role, latest.action, latest.target) == (
        "token:ops-laptop",
        "manage",
        "channels.pause",
        "shopify",
    )
    assert latest.as_dict()["at"]


async def test_unexpected_errors_answer_the_error_shape_without_their_text(
    make_nexus: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    nexus = await make_nexus()
    app = create_app(nexus)

    @app.get("/nexus/api/v1/_boom")
    async def boom() -> None:
        raise RuntimeError("postgresql://nexus:sup3r-s3cret@db/nexus is gone")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as client:
        with caplog.at_level(logging.INFO):
            answer = await client.get("/nexus/api/v1/_boom")
        missing = await client.get("/nexus/api/v1/nothing-here")
    assert answer.status_code == 500
    assert answer.json()["error"] == {
        "code": "internal",
        "message": "internal error; the server log has the details",
        "detail": {},
    }
    assert "sup3r-s3cret" not in answer.text
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
