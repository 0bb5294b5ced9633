"""The FastAPI application: `create_app(nexus)`.

    POST {webhook_base_path}/{channel}   inbound webhooks (default /nexus/webhooks/{channel})
    GET  /nexus/healthz                  liveness, with a database round trip
    GET  /nexus/readyz                   readiness: 503 unless the database answers and every
                                         enabled channel can be built; each channel's state
    GET  /nexus/metrics                  Prometheus text format (nexus.observability.metrics)

The webhook route is served by a plain Starlette `Route` ahead of FastAPI's stack (`NexusApp`):
it uses no FastAPI validation, and FastAPI's per-request machinery (dependency solving, its
telemetry wrapper) cost about as much CPU as ingesting the delivery itself
(docs/benchmarks.md, section 2). The same handler stays registered on FastAPI for the OpenAPI
schema and for anything the fast path does not match (wrong method: 405 as before).

The webhook route stores the delivery durably before it answers (see `nexus.webhooks.receiver`)
and hands the stored row to a task of its own, so processing never delays the answer nor holds
the connection. Deliveries still "received" after a crash, and deferred ones, are processed by
`WebhookProcessor(nexus).run(stop)`, which `nexus serve` runs beside the app; an app mounted
inside a host application needs that loop running too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from nexus.observability.metrics import CONTENT_TYPE
from nexus.storage.database import describe, unavailable
from nexus.sync.channel_state import readiness
from nexus.web.api import API_PREFIX, api_router, docs_router
from nexus.web.auth import HostAuth
from nexus.web.dashboard import dashboard_router
from nexus.web.errors import install_error_handlers
from nexus.webhooks.processor import WebhookProcessor
from nexus.webhooks.receiver import WebhookReceiver

if TYPE_CHECKING:
    from nexus.engine import Nexus

log = structlog.get_logger("nexus.web")

HEALTHZ_PATH = "/nexus/healthz"
METRICS_PATH = "/nexus/metrics"
READYZ_PATH = "/nexus/readyz"


class NexusApp(FastAPI):
    """FastAPI, with the webhook route answered before FastAPI's own per-request stack."""

    webhook_route: Route | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.webhook_route
        if route is not None and scope["type"] == "http":
            if self.root_path:
                scope["root_path"] = self.root_path
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                scope["app"] = self
                await route.handle(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(nexus: Nexus, *, auth: HostAuth | None = None) -> FastAPI:
    """The app; `auth` replaces Nexus's token check for the API and the dashboard with the host
    application's own (see `nexus.web.auth`)."""
    receiver = WebhookReceiver(nexus)
    # Processing yields the one SQLite writer to the deliveries waiting for their commit.
    processor = WebhookProcessor(nexus, yield_to=receiver.turn)
    # Closed twice on purpose: by the lifespan when the server stops (`nexus serve`), and by
    # `nexus.aclose()` for an app mounted in a host's, which gets no lifespan. The second is a no-op.
    nexus.on_close(processor.aclose)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        processor.reopen()  # the same app served again, after an earlier lifespan closed it
        try:
            yield
        finally:
            # Let in-flight processing finish (bounded); a cancelled attempt leaves its row
            # "received" for the next process_pending.
            await processor.aclose()

    # No docs_url/redoc_url: FastAPI's pages load their assets from a CDN; /nexus/api/docs is served here.
    app = NexusApp(
        title="Nexus",
        summary="Inventory sync across sales channels",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.nexus = nexus
    app.state.nexus_auth = auth
    install_error_handlers(app)
    app.state.webhook_receiver = receiver
    app.state.webhook_processor = processor

    base = "/" + nexus.settings.webhook_base_path.strip("/")

    path = f"{base.rstrip('/')}/{{channel}}"

    async def receive_webhook(channel: str, request: Request) -> Response:
        try:
            receipt = await receiver.receive(channel, request.scope["headers"], request.stream())
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening for the answer
        except Exception as exc:
            if not unavailable(exc):
                raise
            # Not stored, so not acknowledged: the channel delivers it again later. One line per
            # delivery, not a traceback each, while the database is away.
            log.warning("webhook not stored: database unavailable", channel=channel, error=describe(exc))
            nexus.metrics.database_error("webhook_receiver")
            return JSONResponse(
                {"error": "database unavailable; deliver again later"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        processor.schedule(receipt)
        return JSONResponse(receipt.as_json(), status_code=receipt.status_code)

    async def webhook_endpoint(request: Request) -> Response:
        return await receive_webhook(request.path_params["channel"], request)

    app.webhook_route = Route(path, webhook_endpoint, methods=["POST"])
    app.post(
        path,
        summary="Receive a webhook delivery",
        responses={
            200: {"description": "stored (or a duplicate of a stored delivery)"},
            400: {"description": "malformed body"},
            401: {"description": "missing or wrong signature"},
            404: {"description": "unknown channel"},
            413: {"description": "body over the channel's webhook_max_bytes"},
        },
    )(receive_webhook)

    @app.get(HEALTHZ_PATH, summary="Health check")
    async def healthz() -> Response:
        try:
            async with nexus.db.read() as session:
                await session.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse(
                {"status": "error", "database": f"{type(exc).__name__}: {exc}"}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get(READYZ_PATH, summary="Readiness: the database and every channel's state")
    async def readyz() -> Response:
        ready, body = await readiness(nexus)
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get(METRICS_PATH, summary="Metrics in Prometheus text format")
    async def metrics() -> Response:
        return Response(await nexus.metrics.render(), media_type=CONTENT_TYPE)

    app.include_router(dashboard_router(nexus))  # /nexus/: the dashboard (nexus.web.dashboard)
    app.include_router(api_router(nexus), prefix=API_PREFIX)  # the REST API (nexus.web.api)
    app.include_router(docs_router())  # /nexus/api/docs and /nexus/api/v1/openapi.json
    return app


def create_metrics_app(nexus: Nexus) -> Starlette:
    """What a `nexus worker --metrics-port` process serves: its own counters (pushes, 429s,
    reconciliation) live in that process, so a scrape of the web nodes alone would miss them."""

    async def metrics(_: Request) -> Response:
        return Response(await nexus.metrics.render(), media_type=CONTENT_TYPE)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(METRICS_PATH, metrics), Route(HEALTHZ_PATH, healthz)])
