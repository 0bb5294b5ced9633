"""The FastAPI application: routes, health, base path, shutdown."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import httpx
import pytest
import structlog.testing
from starlette.applications import Starlette
from starlette.routing import Mount
from tests.webhooks.webhook_testkit import build_hub, channels, delivery, sale

from nexus.web import create_app
from nexus.web.server import serve_app


async def test_healthz_over_http(make_nexus: Callable[..., Any]) -> None:
    nexus = await make_nexus()
    async with (
        serve_app(create_app(nexus)) as server,
        httpx.AsyncClient(base_url=server.base_url, trust_env=False) as client,
    ):
        response = await client.get("/nexus/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_reports_a_broken_database(
    make_nexus: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    nexus = await make_nexus()

    @contextlib.asynccontextmanager
    async def broken() -> AsyncIterator[Any]:
        raise OSError("disk on fire")
        yield  # pragma: no cover

    monkeypatch.setattr(nexus.db, "read", broken)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(nexus)), base_url="http://t"
    ) as client:
        response = await client.get("/nexus/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "OSError: disk on fire"}


async def test_webhook_route_follows_the_configured_base_path(make_nexus: Callable[..., Any]) -> None:
    hub = await build_hub(make_nexus, channels=channels(), webhook_base_path="/hooks/in/")
    d = delivery(sale(remote_id="none"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hub.app), base_url="http://t") as client:
        moved = await client.post("/hooks/in/hooks", content=d.body, headers=d.headers)
        default = await client.post("/nexus/webhooks/hooks", content=d.body, headers=d.headers)
        health = await client.get("/nexus/healthz")
    await hub.processor.drain()
    assert (moved.status_code, default.status_code, health.status_code) == (200, 404, 200)


async def test_openapi_lists_the_routes(make_nexus: Callable[..., Any]) -> None:
    app = create_app(await make_nexus())
    paths = app.openapi()["paths"]
    assert "post" in paths["/nexus/webhooks/{channel}"]
    assert "get" in paths["/nexus/healthz"]


@pytest.mark.parametrize("shutdown", ["lifespan", "mounted"])
async def test_shutdown_lets_scheduled_processing_finish(
    make_nexus: Callable[..., Any], shutdown: str
) -> None:
    """Served on its own, the app's lifespan waits for the processing its deliveries scheduled.
    Mounted in a host's app it never sees a lifespan (Starlette runs only the outer app's), and
    closing Nexus is what waits, before the database goes."""
    hub = await build_hub(make_nexus)
    await hub.seed()
    d = delivery(sale(quantity=4), delivery_id="D1")
    if shutdown == "lifespan":
        async with (
            serve_app(hub.app) as server,
            httpx.AsyncClient(base_url=server.base_url, trust_env=False) as client,
        ):
            response = await client.post(hub.path, content=d.body, headers=d.headers)
    else:
        host = Starlette(routes=[Mount("/", app=hub.app)])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://t") as client:
            response = await client.post(hub.path, content=d.body, headers=d.headers)
        await hub.nexus.aclose()  # answered, so its processing is scheduled and not yet done
    # No drain here: the shutdown waited for the task.
    assert response.status_code == 200
    [row] = await hub.logs()
    assert row.status == "processed"
    assert (await hub.item()).on_hand == 6


async def test_an_app_served_again_processes_what_it_stores(make_nexus: Callable[..., Any]) -> None:
    """The first server's shutdown closed the app's processor; the second start opens it again,
    or its deliveries would be answered and left unprocessed until the next restart."""
    hub = await build_hub(make_nexus)
    await hub.seed()
    for n in (1, 2):
        d = delivery(sale(quantity=1, order_id=f"O{n}"), delivery_id=f"D{n}")
        async with (
            serve_app(hub.app) as server,
            httpx.AsyncClient(base_url=server.base_url, trust_env=False) as client,
        ):
            assert (await client.post(hub.path, content=d.body, headers=d.headers)).status_code == 200
    assert [row.status for row in await hub.logs()] == ["processed", "processed"]
    assert (await hub.item()).on_hand == 8


async def test_a_failing_close_hook_is_logged_and_the_rest_is_still_released(
    make_nexus: Callable[..., Any],
) -> None:
    nexus = await make_nexus()
    client = nexus.http  # made on first use, owned by Nexus, released by aclose
    ran: list[str] = []

    async def failing() -> None:
        raise RuntimeError("hook broke")

    async def fine() -> None:
        ran.append("fine")

    nexus.on_close(failing)
    nexus.on_close(fine)
    with structlog.testing.capture_logs() as logs:
        await nexus.aclose()
    assert ran == ["fine"]
    assert client.is_closed
    [error] = [entry for entry in logs if entry["log_level"] == "error"]
    assert error["event"] == "a close hook failed" and error["error"] == "RuntimeError: hook broke"


async def test_a_full_disk_met_by_the_sqlite_group_commit_is_a_503_not_a_500(
    make_nexus: Callable[..., Any],
) -> None:
    """The group commit on a SQLite file runs on the driver's own cursor in the writer thread:
    its errors must reach the route as the async path's do (SQLAlchemy's), or a full disk would
    be a 500 the channel may give up on instead of a 503 it delivers again."""
    hub = await build_hub(make_nexus, channels=channels(webhook_max_bytes=100_000))
    db = hub.nexus.db

    def fill_the_disk(connection: Any) -> None:  # no page can be added from now on
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        connection.exec_driver_sql(f"PRAGMA max_page_count={pages}")

    await db.run_sync_write(fill_the_disk)
    big = {**sale(quantity=1), "padding": "x" * 30_000}  # needs new pages, wherever it lands
    warning = await _deliver_while_unavailable(hub, delivery(big, delivery_id="D-full"))
    assert "full" in warning["error"] and "padding" not in warning["error"]


async def _deliver_while_unavailable(hub: Any, d: Any) -> MutableMapping[str, Any]:
    """Deliver `d`: not stored, so not acknowledged (503, Retry-After), the channel must deliver
    it again; one warning says why. Returns the warning."""
    transport = httpx.ASGITransport(app=hub.app)
    with structlog.testing.capture_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post("/nexus/webhooks/hooks", content=d.body, headers=d.headers)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    [warning] = [entry for entry in logs if entry["log_level"] in ("warning", "error", "critical")]
    assert warning["event"] == "webhook not stored: database unavailable" and "exc_info" not in warning
    return warning


async def test_a_delivery_met_by_an_unavailable_database_is_a_503_with_one_warning(
    make_nexus: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await build_hub(make_nexus)

    @contextlib.asynccontextmanager
    async def gone() -> AsyncIterator[Any]:
        raise ConnectionRefusedError(111, "Connection refused")
        yield  # pragma: no cover

    async def gone_sync(work: Any) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(hub.nexus.db, "transaction", gone)
    monkeypatch.setattr(hub.nexus.db, "run_sync_write", gone_sync)
    warning = await _deliver_while_unavailable(hub, delivery(sale(quantity=1), delivery_id="D-outage"))
    assert "Connection refused" in warning["error"]
    assert b'component="webhook_receiver"' in await hub.nexus.metrics.render()
