"""The ASGI app: Shopify's Admin GraphQL endpoint plus a sandbox-only control surface.

    POST /admin/api/{version}/graphql.json     the Admin API (X-Shopify-Access-Token)

Everything under /_sandbox is NOT part of Shopify's API: the shared control surface
(`nexus.sandbox.control`; the quantity is "available", at the primary location; a sale sends
orders/create), plus

    POST /_sandbox/products         {"title", "variants": [...]}
    POST /_sandbox/credentials      {"valid": false}  every Admin API request answers 401 until
                                    {"valid": true} (`revoke_token`, `restore_token`)

Two fault knobs act on the Admin API endpoint (`ShopifySandbox.fail_next`, `lose_next`): a request
refused with a 5xx before it runs, and an inventorySetQuantities call applied whose answer is
then lost (a 5xx instead, or the connection closed).
"""

from __future__ import annotations

import asyncio
import hmac
import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from nexus.sandbox.control import ControlSurface, control_routes, loads, read_json

if TYPE_CHECKING:
    from nexus.sandbox.shopify.sandbox import ShopifySandbox

# Quarterly versions plus "unstable"; anything else is a 404, as on Shopify.
_VERSION_RE = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
CONTROL = ControlSurface("Shopify", quantity_key="available")


class _DroppedConnection(Response):
    """An answer that never arrives: the headers promise a body, then the connection is closed."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise ConnectionAbortedError("sandbox fault: the answer was lost (lose_next)")


def build_app(sandbox: ShopifySandbox) -> Starlette:
    async def graphql(request: Request) -> Response:
        version = request.path_params["version"]
        if not _VERSION_RE.match(version):
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        token = request.headers.get("x-shopify-access-token", "")
        valid = hmac.compare_digest(token.encode(), sandbox.access_token.encode())
        if not valid or not sandbox.credentials_valid:
            return JSONResponse({"errors": INVALID_TOKEN}, status_code=401)
        sandbox.stats.requests += 1
        refused = sandbox.take_failure()
        if refused is not None:
            status, retry_after = refused
            headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            return JSONResponse(
                {"errors": f"HTTP {status} (sandbox fault)"}, status_code=status, headers=headers
            )
        applied_before = sandbox.stats.quantities_set
        reply = sandbox.graphql.handle(loads(await request.body()))
        if sandbox.response_latency > 0:
            await asyncio.sleep(sandbox.response_latency)
        lost, lost_status = sandbox.take_lost_answer(sandbox.stats.quantities_set > applied_before)
        if lost:
            if lost_status is None:
                return _DroppedConnection()
            return JSONResponse({"errors": "Bad Gateway"}, status_code=lost_status)
        headers = {"X-Shopify-API-Version": version, "X-Request-Id": str(uuid.uuid4()), **reply.headers}
        return JSONResponse(reply.body, status_code=reply.status, headers=headers)

    def info() -> dict[str, Any]:
        return {
            "shop_domain": sandbox.shop_domain,
            "graphql_endpoint": f"/admin/api/{sandbox.api_version}/graphql.json",
            "location_id": sandbox.location_id,
            "products": len(sandbox.store.products),
        }

    async def products(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("title"), str):
            return CONTROL.answer({"error": 'expected {"title": <str>, "variants": [...]}'}, 400)
        try:
            product = sandbox.add_product(body["title"], list(body.get("variants") or [{}]))
        except (ValueError, TypeError) as exc:
            return CONTROL.answer({"error": str(exc)}, 400)
        return CONTROL.answer({"product": product}, 201)

    return Starlette(
        routes=[
            Route("/admin/api/{version}/graphql.json", graphql, methods=["POST"]),
            *control_routes(
                sandbox,
                CONTROL,
                info=info,
                credentials=lambda valid: sandbox.restore_token() if valid else sandbox.revoke_token(),
                extra=[Route("/_sandbox/products", products, methods=["POST"])],
            ),
        ]
    )
