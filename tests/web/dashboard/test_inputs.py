"""Text PostgreSQL cannot hold (a NUL) in a dashboard search or form is refused with a 422, never
a 500, exactly as the API refuses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from nexus.access.tokens import Role
from nexus.web import create_app


@pytest.mark.postgres
async def test_a_nul_is_a_422(make_nexus: Callable[..., Any], postgres_url: str) -> None:
    nexus = await make_nexus(database_url=postgres_url)
    _, token = await nexus.tokens.create("ops", Role.MANAGE)
    transport = httpx.ASGITransport(app=create_app(nexus))
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as client:
        signed_in = await client.post("/nexus/login", data={"token": token})
        assert signed_in.status_code in (200, 303)
        search = await client.get("/nexus/webhook-log", params={"remote_id": "a\x00b"})
        assert search.status_code == 422 and search.json()["error"]["code"] == "invalid_request"
        page = await client.get("/nexus/webhook-log", params={"remote_id": "ab"})
        assert page.status_code == 200  # the same search without the NUL is answered
        form = await client.post("/nexus/login", data={"token": "nxs_\x00"})
        assert form.status_code == 422
