"""The ASGI app: the Etsy Open API v3 endpoints Nexus uses, plus a sandbox-only control surface.

    POST /v3/public/oauth/token                          refresh_token grant (form or JSON)
    GET  /v3/application/shops/{shop_id}/listings        state, limit (<= 100), offset, includes=Inventory
    GET  /v3/application/listings/{listing_id}           includes=Inventory
    GET  /v3/application/listings/{listing_id}/inventory
    PUT  /v3/application/listings/{listing_id}/inventory the whole inventory (JSON)
    GET  /v3/application/shops/{shop_id}/receipts/{receipt_id}

Every /v3/application request: `x-api-key: keystring:shared_secret` (else 403), then the rate
limits (429), then `Authorization: Bearer <token>` (401 invalid_token).

Everything under /_sandbox is NOT part of Etsy's API: the shared control surface
(`nexus.sandbox.control`; an edit is Shop Manager's and sends nothing, a sale answers its
"receipt" and sends order.paid, a subscription names its "event_type").
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexus.sandbox.control import ControlSurface, control_routes, loads
from nexus.sandbox.etsy.oauth import OAuthError
from nexus.sandbox.etsy.store import InventoryError

if TYPE_CHECKING:
    from nexus.sandbox.etsy.sandbox import EtsySandbox

CONTROL = ControlSurface("Etsy", quantity_key="quantity", sale_key="receipt", topic_key="event_type")
Handler = Callable[[Request], Awaitable[tuple[int, Any]]]


def build_app(sandbox: EtsySandbox) -> Starlette:
    def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            api_key = request.headers.get("x-api-key")
            if not api_key:
                return _error(403, "Missing x-api-key header")
            keystring, sep, secret = api_key.partition(":")
            if not sep:
                return _error(403, "Shared secret is required in x-api-key header.")
            if keystring != sandbox.keystring or secret != sandbox.shared_secret:
                return _error(403, "Invalid API key")
            sandbox.learn_base_url(str(request.base_url))
            decision = sandbox.limits.take()
            if not decision.allowed:
                sandbox.stats.throttled += 1
                sandbox.stats.throttled_daily += decision.daily
                headers = (
                    {"Retry-After": str(max(1, round(decision.retry_after)))} if sandbox.retry_after else {}
                )
                return _error(429, "You have exceeded your quota", headers=headers)
            sandbox.stats.requests += 1
            token = sandbox.oauth.check(request.headers.get("authorization"))
            if not token.ok:
                sandbox.stats.unauthorized += 1
                return JSONResponse(
                    {"error": "invalid_token", "error_description": token.description},
                    status_code=401,
                    headers=decision.headers,
                )
            if sandbox.error_rate and sandbox.rng.random() < sandbox.error_rate:
                return _error(500, "Server Error", headers=decision.headers)
            status, body = await handler(request)
            if sandbox.response_latency > 0:
                await asyncio.sleep(sandbox.response_latency)
            return JSONResponse(body, status_code=status, headers=decision.headers)

        return endpoint

    async def token(request: Request) -> Response:
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        form: dict[str, str] = {}
        if "json" in content_type:
            data = loads(raw)
            form = {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        else:
            form = dict(parse_qsl(raw.decode(errors="replace")))
        try:
            answer = sandbox.oauth.refresh(form)
        except OAuthError as exc:
            return JSONResponse(exc.body, status_code=exc.status)
        sandbox.stats.token_refreshes += 1
        return JSONResponse(answer)

    async def listings(request: Request) -> tuple[int, Any]:
        if int(request.path_params["shop_id"]) != sandbox.shop_id:
            return 404, {"error": "Shop not found"}
        query = request.query_params
        try:
            limit = int(query.get("limit", 25))
            offset = int(query.get("offset", 0))
        except ValueError:
            return 400, {"error": "limit and offset must be integers"}
        if not 1 <= limit <= 100 or offset < 0:
            return 400, {"error": "limit must be between 1 and 100, offset >= 0"}
        state = query.get("state", "active")
        with_inventory = "Inventory" in query.get("includes", "").split(",")
        matching = [lst for lst in sandbox.store.listings.values() if lst.state == state]
        page = matching[offset : offset + limit]
        return 200, {
            "count": len(matching),
            "results": [sandbox.store.listing_json(lst, with_inventory=with_inventory) for lst in page],
        }

    async def listing(request: Request) -> tuple[int, Any]:
        found = sandbox.store.listings.get(int(request.path_params["listing_id"]))
        if found is None:
            return 404, {"error": "Listing not found"}
        with_inventory = "Inventory" in request.query_params.get("includes", "").split(",")
        return 200, sandbox.store.listing_json(found, with_inventory=with_inventory)

    async def inventory(request: Request) -> tuple[int, Any]:
        found = sandbox.store.listings.get(int(request.path_params["listing_id"]))
        if found is None:
            return 404, {"error": f"Listing {request.path_params['listing_id']} not found"}
        if request.method == "GET":
            sandbox.stats.inventory_gets += 1
            return 200, sandbox.store.inventory_json(found)
        try:
            sandbox.put_inventory(found, loads(await request.body()))
        except InventoryError as exc:
            sandbox.stats.inventory_put_errors += 1
            return 400, {"error": str(exc)}
        return 200, sandbox.store.inventory_json(found)

    async def receipt(request: Request) -> tuple[int, Any]:
        found = sandbox.store.receipts.get(int(request.path_params["receipt_id"]))
        if int(request.path_params["shop_id"]) != sandbox.shop_id or found is None:
            return 404, {"error": "Receipt not found"}
        sandbox.stats.receipt_gets += 1
        return 200, found

    def info() -> dict[str, Any]:
        return {"shop_id": sandbox.shop_id, "listings": len(sandbox.store.listings)}

    return Starlette(
        routes=[
            Route("/v3/public/oauth/token", token, methods=["POST"]),
            Route("/v3/application/shops/{shop_id:int}/listings", api(listings), methods=["GET"]),
            Route("/v3/application/listings/{listing_id:int}", api(listing), methods=["GET"]),
            Route(
                "/v3/application/listings/{listing_id:int}/inventory", api(inventory), methods=["GET", "PUT"]
            ),
            Route(
                "/v3/application/shops/{shop_id:int}/receipts/{receipt_id:int}", api(receipt), methods=["GET"]
            ),
            *control_routes(sandbox, CONTROL, info=info),
        ]
    )


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)
