"""Every API route with no token (401), a `view` token and a `manage` token; `view` on manage
routes (403); one operator-action row per manage action carried out and none for a refused one;
no token secret in any answer; the one error shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.web.api.conftest import BACKENDS, PREFIX, Api, conflict, dead_letter, stored_webhook

from nexus.storage.models import OperatorAction
from nexus.web import create_app


@dataclass
class Route:
    method: str
    template: str  # as the OpenAPI document names it
    path: str
    role: str  # what it needs
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    expect: int = 200


async def routes(api: Api) -> list[Route]:
    """Every operation, with a target that exists, in an order that keeps each one valid."""
    letter = await dead_letter(api, "C")
    hook = await stored_webhook(api)
    dispute = await conflict(api)
    batch = (await api.post("/sync", json={"channels": ["n"]})).json()["batch_id"]
    key = {"Idempotency-Key": "matrix-1"}
    return [
        Route("GET", "/items", "/items?q=A", "view"),
        Route("GET", "/items/{sku}", "/items/A", "view"),
        Route("GET", "/items/{sku}/ledger", "/items/A/ledger", "view"),
        Route("GET", "/channels", "/channels", "view"),
        Route("GET", "/channels/{channel}", "/channels/m", "view"),
        Route("GET", "/health", "/health", "view"),
        Route("GET", "/channels/{channel}/listings", "/channels/m/listings?dirty=true", "view"),
        Route("GET", "/batches", "/batches", "view"),
        Route("GET", "/batches/{batch_id}", f"/batches/{batch}", "view"),
        Route("GET", "/dead-letters", "/dead-letters?channel=m", "view"),
        Route("GET", "/dead-letters/{letter_id}", f"/dead-letters/{letter}", "view"),
        Route("GET", "/webhooks", "/webhooks?verified=true", "view"),
        Route("GET", "/webhooks/{log_id}", f"/webhooks/{hook}", "view"),
        Route("GET", "/audit", "/audit", "view"),
        Route("GET", "/conflicts", "/conflicts", "view"),
        Route("GET", "/actions", "/actions", "view"),
        Route("POST", "/items", "/items", "manage", {"sku": "NEW", "on_hand": 3}, expect=201),
        Route("PUT", "/items/{sku}/quantity", "/items/A/quantity", "manage", {"on_hand": 7}),
        Route("POST", "/items/{sku}/adjustments", "/items/A/adjustments", "manage", {"delta": 1}, key),
        Route("POST", "/channels/{channel}/listings/{sku}/push", "/channels/m/listings/A/push", "manage"),
        Route("POST", "/channels/{channel}/pause", "/channels/n/pause", "manage", {"reason": "stocktake"}),
        Route("POST", "/channels/{channel}/resume", "/channels/n/resume", "manage"),
        Route("POST", "/sync", "/sync", "manage", {"channels": ["m"], "skus": ["A"]}, expect=202),
        Route("POST", "/batches/{batch_id}/retry-failed", f"/batches/{batch}/retry-failed", "manage"),
        Route("POST", "/dead-letters/replay", "/dead-letters/replay", "manage", {"ids": [letter]}),
        Route("POST", "/dead-letters/resolve", "/dead-letters/resolve", "manage", {"channel": "m"}),
        Route("POST", "/webhooks/{log_id}/reprocess", f"/webhooks/{hook}/reprocess", "manage"),
        Route(
            "POST",
            "/conflicts/{conflict_id}/resolve",
            f"/conflicts/{dispute}/resolve",
            "manage",
            {"take": "nexus"},
        ),
    ]


async def actions(api: Api) -> int:
    async with api.nexus.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OperatorAction)) or 0)


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_every_route_by_role(api: Api) -> None:
    table = await routes(api)
    documented = {
        (method.upper(), path.removeprefix(PREFIX))
        for path, item in create_app(api.nexus).openapi()["paths"].items()
        if path.startswith(PREFIX)
        for method in item
    }
    assert {(route.method, route.template) for route in table} == documented  # every route is here

    answers: list[str] = []
    for route in table:
        kwargs: dict[str, Any] = {"json": route.json, "headers": route.headers}
        before = await actions(api)

        anonymous = await api.call(route.method, route.path, None, **kwargs)
        assert_error(anonymous, 401, "unauthenticated")
        assert anonymous.headers["www-authenticate"] == "Bearer"
        wrong = await api.call(route.method, route.path, None, headers={"Authorization": "Bearer nxs_nope"})
        assert_error(wrong, 401, "unauthenticated")
        answers += [anonymous.text, wrong.text]

        if route.role == "manage":
            refused = await api.call(route.method, route.path, "view", **kwargs)
            assert_error(refused, 403, "forbidden")
            answers.append(refused.text)
            assert await actions(api) == before  # a refused action leaves no row
            done = await api.call(route.method, route.path, "manage", **kwargs)
            assert done.status_code == route.expect, (route.path, done.text)
            assert await actions(api) == before + 1, route.path  # exactly one row per action
            answers.append(done.text)
        else:
            for role in ("view", "manage"):
                read = await api.call(route.method, route.path, role, **kwargs)
                assert read.status_code == route.expect, (route.path, read.text)
                answers.append(read.text)
            assert await actions(api) == before  # reading records nothing

    for secret in (api.view, api.manage):
        assert not any(secret in text for text in answers)
    recorded = (await api.get("/actions", params={"limit": 500})).json()
    assert {item["actor"] for item in recorded["items"]} == {"token:ops"}
    setup_sync = 1  # routes() started a batch to have one to show
    assert recorded["total"] == sum(1 for route in table if route.role == "manage") + setup_sync
    assert not any(secret in str(recorded) for secret in (api.view, api.manage))


async def test_the_error_shape(api: Api) -> None:
    assert_error(await api.get("/nowhere"), 404, "not_found")
    assert_error(await api.get("/items/NOPE"), 404, "not_found")
    assert_error(await api.get("/channels/atlantis"), 404, "not_found")
    assert_error(await api.get("/dead-letters/999"), 404, "not_found")
    assert_error(await api.get("/webhooks/999"), 404, "not_found")
    assert_error(await api.get("/batches/nope"), 404, "not_found")
    invalid = await api.get("/items", params={"limit": 0})
    assert_error(invalid, 422, "invalid_request")
    assert invalid.json()["error"]["detail"]["problems"][0]["where"] == "query.limit"
    assert_error(await api.post("/items", json={"sku": ""}), 422, "invalid_request")
    assert_error(await api.post("/items", json={"sku": "X", "colour": "red"}), 422, "invalid_request")
    assert_error(await api.call("DELETE", "/items"), 405, "method_not_allowed")
    assert_error(await api.post("/items", json={"sku": "A"}), 409, "exists")


async def test_an_unexpected_failure_is_a_bare_500(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from nexus.web.api import records

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"connection to postgres://ops:{api.manage}@db failed")

    monkeypatch.setattr(records, "list_push_audit", broken)
    transport = api.client._transport  # the app raises through ASGITransport unless told not to
    monkeypatch.setattr(transport, "raise_app_exceptions", False)
    answer = await api.get("/audit")
    assert_error(answer, 500, "internal")
    assert api.manage not in answer.text and "postgres" not in answer.text


async def test_the_dashboard_session_reaches_the_api_with_its_csrf_token(api: Api) -> None:
    signed_in = await api.client.post("/nexus/login", data={"token": api.manage})
    assert signed_in.status_code == 303
    secret = api.client.cookies.get("nexus_session")
    assert secret
    session = await api.nexus.tokens.session(secret)
    assert session is not None
    csrf = session[1]

    assert (await api.get("/channels", None)).status_code == 200  # the cookie alone reads
    forged = await api.post("/channels/m/pause", None, json={})
    assert_error(forged, 403, "csrf")  # a cross-site form could not know the CSRF token
    paused = await api.post("/channels/m/pause", None, json={}, headers={"X-CSRF-Token": csrf})
    assert paused.status_code == 200 and paused.json()["paused_by"] == "token:ops"


async def test_a_host_application_gate_replaces_tokens(api: Api) -> None:
    import httpx

    from nexus.access.tokens import Principal, Role

    async def gate(request: Any) -> Principal | None:
        user = request.headers.get("x-host-user")
        if user is None:
            return None
        return Principal(user, Role.MANAGE if user == "admin" else Role.VIEW)

    app = create_app(api.nexus, auth=gate)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://host") as client:
        assert_error(await client.get(f"{PREFIX}/channels"), 401, "unauthenticated")
        bearer = await client.get(f"{PREFIX}/channels", headers=api.auth("manage"))
        assert_error(bearer, 401, "unauthenticated")  # the host decides, not Nexus's tokens
        assert (await client.get(f"{PREFIX}/channels", headers={"x-host-user": "clerk"})).status_code == 200
        refused = await client.post(f"{PREFIX}/channels/m/pause", headers={"x-host-user": "clerk"})
        assert_error(refused, 403, "forbidden")
        done = await client.post(f"{PREFIX}/channels/m/pause", headers={"x-host-user": "admin"})
        assert done.status_code == 200
    [action] = (await api.get("/actions")).json()["items"]
    assert (action["action"], action["target"]) == ("channel.pause", "m")
    assert action["actor"].endswith("admin")  # who the host said
