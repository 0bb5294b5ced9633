"""The ASGI app: Shopify's Admin GraphQL endpoint plus a sandbox-only control surface.

    POST /admin/api/{version}/graphql.json     the Admin API (X-Shopify-Access-Token)

Everything under /_sandbox is NOT part of Shopify's API. It lets a person poke a running demo
with curl and carries an `X-Nexus-Sandbox` header on every answer:

    GET  /_sandbox                  what this is, the endpoint and location id
    GET  /_sandbox/levels           {sku: available} at the primary location
    PUT  /_sandbox/levels/{sku}     {"available": n}      a merchant's admin edit
    POST /_sandbox/sales            {"sku", "quantity"}   a storefront sale (orders/create)
    POST /_sandbox/products         {"title", "variants": [...]}
    POST /_sandbox/webhooks         {"topic", "address"}  subscribe an HTTP endpoint
    GET  /_sandbox/stats            the counters of SandboxStats
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from nexus.sandbox.shopify.sandbox import ShopifySandbox

# Quarterly versions plus "unstable"; anything else is a 404, as on Shopify.
_VERSION_RE = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
SANDBOX_HEADER = {"X-Nexus-Sandbox": "control surface, not part of the Shopify API"}


def build_app(sandbox: ShopifySandbox) -> Starlette:
    async def graphql(request: Request) -> Response:
        version = request.path_params["version"]
        if not _VERSION_RE.match(version):
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        token = request.headers.get("x-shopify-access-token", "")
        if not hmac.compare_digest(token.encode(), sandbox.access_token.encode()):
            return JSONResponse({"errors": INVALID_TOKEN}, status_code=401)
        sandbox.stats.requests += 1
        try:
            payload: Any = json.loads(await request.body() or b"null")
        except ValueError:
            payload = None
        reply = sandbox.graphql.handle(payload)
        if sandbox.response_latency > 0:
            await asyncio.sleep(sandbox.response_latency)
        headers = {"X-Shopify-API-Version": version, "X-Request-Id": str(uuid.uuid4()), **reply.headers}
        return JSONResponse(reply.body, status_code=reply.status, headers=headers)

    async def info(_: Request) -> Response:
        return _control(
            {
                "note": "Nexus Shopify sandbox. /_sandbox/* is a control surface, NOT part of Shopify's API.",
                "shop_domain": sandbox.shop_domain,
                "graphql_endpoint": f"/admin/api/{sandbox.api_version}/graphql.json",
                "location_id": sandbox.location_id,
                "products": len(sandbox.store.products),
            }
        )

    async def levels(_: Request) -> Response:
        return _control(sandbox.levels())

    async def set_level(request: Request) -> Response:
        sku = request.path_params["sku"]
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("available"), int):
            return _control({"error": 'expected {"available": <int>}'}, 400)
        try:
            await sandbox.set_available(sku, body["available"])
        except KeyError:
            return _control({"error": f"unknown SKU {sku!r}"}, 404)
        return _control({"sku": sku, "available": sandbox.available(sku)})

    async def sales(request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("sku"), str):
            return _control({"error": 'expected {"sku": <str>, "quantity": <int>}'}, 400)
        quantity = body.get("quantity", 1)
        if not isinstance(quantity, int) or quantity < 1:
            return _control({"error": "quantity must be a positive integer"}, 400)
        try:
            order = await sandbox.simulate_sale(body["sku"], quantity)
        except KeyError:
            return _control({"error": f"unknown SKU {body['sku']!r}"}, 404)
        if order is None:
            return _control({"error": "not enough stock", "available": sandbox.available(body["sku"])}, 409)
        return _control({"order": order}, 201)

    async def products(request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("title"), str):
            return _control({"error": 'expected {"title": <str>, "variants": [...]}'}, 400)
        try:
            product = sandbox.add_product(body["title"], list(body.get("variants") or [{}]))
        except (ValueError, TypeError) as exc:
            return _control({"error": str(exc)}, 400)
        return _control({"product": product}, 201)

    async def webhooks(request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("topic", "address")):
            return _control({"error": 'expected {"topic": <str>, "address": <url>}'}, 400)
        sandbox.subscribe(body["topic"], body["address"])
        return _control({"topic": body["topic"], "address": body["address"]}, 201)

    async def stats(_: Request) -> Response:
        return _control(sandbox.stats.as_dict())

    return Starlette(
        routes=[
            Route("/admin/api/{version}/graphql.json", graphql, methods=["POST"]),
            Route("/_sandbox", info, methods=["GET"]),
            Route("/_sandbox/levels", levels, methods=["GET"]),
            Route("/_sandbox/levels/{sku:path}", set_level, methods=["PUT", "POST"]),
            Route("/_sandbox/sales", sales, methods=["POST"]),
            Route("/_sandbox/products", products, methods=["POST"]),
            Route("/_sandbox/webhooks", webhooks, methods=["POST"]),
            Route("/_sandbox/stats", stats, methods=["GET"]),
        ]
    )


def _control(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=SANDBOX_HEADER)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None
