"""The ASGI app: the WooCommerce REST v3 endpoints Nexus uses plus a sandbox-only control surface.

    GET  /wp-json/wc/v3/products                   page, per_page (<= 100), include, orderby, order, sku
    GET  /wp-json/wc/v3/products/{id}
    GET  /wp-json/wc/v3/products/{id}/variations
    POST /wp-json/wc/v3/products/batch                    {"create", "update", "delete"}
    POST /wp-json/wc/v3/products/{id}/variations/batch

Everything under /_sandbox is NOT part of WooCommerce's API. It lets a person poke a running demo
with curl and carries an `X-Nexus-Sandbox` header on every answer:

    GET  /_sandbox                  what this is
    GET  /_sandbox/levels           {sku: stock_quantity}
    PUT  /_sandbox/levels/{sku}     {"stock_quantity": n}  a merchant's admin edit (product.updated)
    POST /_sandbox/sales            {"sku", "quantity"}    a storefront sale (order.created)
    POST /_sandbox/webhooks         {"topic", "address"}   create a webhook (pinged first)
    GET  /_sandbox/stats            the counters
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexus.sandbox.woocommerce.api import Reply
from nexus.sandbox.woocommerce.payloads import php_json, wp_error

if TYPE_CHECKING:
    from nexus.sandbox.woocommerce.sandbox import WooCommerceSandbox

API = "/wp-json/wc/v3"
SANDBOX_HEADER = {"X-Nexus-Sandbox": "control surface, not part of the WooCommerce API"}
CANNOT_LIST = ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
CANNOT_VIEW = ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource.")
CANNOT_BATCH = (
    "woocommerce_rest_cannot_batch",
    "Sorry, you are not allowed to batch manipulate this resource.",
)

Handler = Callable[[Request, str], Awaitable[Reply]]


def _wp_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        php_json(body), status_code=status, headers=headers, media_type="application/json; charset=UTF-8"
    )


def build_app(sandbox: WooCommerceSandbox) -> Starlette:
    def endpoint(
        handler: Handler, anonymous_error: tuple[str, str]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            blocked = sandbox.host.admit()
            if blocked is not None:
                if blocked.status == 429:
                    sandbox.stats.throttled += 1
                else:
                    sandbox.stats.failed += 1
                return JSONResponse(blocked.body, status_code=blocked.status, headers=blocked.headers)
            refusal = sandbox.api_key.check(request, anonymous_error=anonymous_error)
            if refusal is not None:
                sandbox.stats.unauthorized += 1
                return _wp_response(401, refusal.body, refusal.headers)
            sandbox.stats.requests += 1
            base_url = str(request.base_url).rstrip("/")
            reply = await handler(request, base_url)
            return _wp_response(reply.status, reply.body, reply.headers)

        return run

    async def list_products(request: Request, base_url: str) -> Reply:
        return sandbox.api.list_products(request.query_params, str(request.url), base_url)

    async def get_product(request: Request, base_url: str) -> Reply:
        return sandbox.api.get_product(request.path_params["id"], base_url)

    async def list_variations(request: Request, base_url: str) -> Reply:
        return sandbox.api.list_variations(
            request.path_params["id"], request.query_params, str(request.url), base_url
        )

    async def batch_products(request: Request, base_url: str) -> Reply:
        return sandbox.api.batch(None, await _json(request), base_url)

    async def batch_variations(request: Request, base_url: str) -> Reply:
        return sandbox.api.batch(request.path_params["id"], await _json(request), base_url)

    async def no_route(_: Request) -> Response:
        return _wp_response(
            404, wp_error("rest_no_route", "No route was found matching the URL and request method.", 404)
        )

    # --- control surface (not WooCommerce) ---------------------------------------------------

    async def info(_: Request) -> Response:
        return _control(
            {
                "note": "Nexus WooCommerce sandbox. /_sandbox/* is a control surface, "
                "NOT part of WooCommerce's API.",
                "api": API,
                "products": len(sandbox.store.listed()),
                "webhooks": [
                    {"id": w.id, "topic": w.topic, "delivery_url": w.delivery_url, "status": w.status}
                    for w in sandbox.webhooks.webhooks.values()
                ],
            }
        )

    async def levels(_: Request) -> Response:
        return _control(sandbox.levels())

    async def set_level(request: Request) -> Response:
        body = await _json(request)
        quantity = body.get("stock_quantity") if isinstance(body, dict) else None
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            return _control({"error": 'expected {"stock_quantity": <int>}'}, 400)
        try:
            await sandbox.set_available(request.path_params["sku"], quantity)
        except KeyError:
            return _control({"error": f"unknown SKU {request.path_params['sku']!r}"}, 404)
        return _control({"sku": request.path_params["sku"], "stock_quantity": quantity})

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
            return _control(
                {"error": "not enough stock", "stock_quantity": sandbox.available(body["sku"])}, 409
            )
        return _control({"order": order}, 201)

    async def webhooks(request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("topic", "address")):
            return _control({"error": 'expected {"topic": <str>, "address": <url>}'}, 400)
        webhook = sandbox.subscribe(body["topic"], body["address"])
        return _control({"id": webhook.id, "topic": webhook.topic, "address": webhook.delivery_url}, 201)

    async def stats(_: Request) -> Response:
        return _control(sandbox.stats.as_dict())

    editable = ["POST", "PUT", "PATCH"]
    return Starlette(
        routes=[
            Route(f"{API}/products", endpoint(list_products, CANNOT_LIST), methods=["GET"]),
            Route(f"{API}/products/batch", endpoint(batch_products, CANNOT_BATCH), methods=editable),
            Route(f"{API}/products/{{id:int}}", endpoint(get_product, CANNOT_VIEW), methods=["GET"]),
            Route(
                f"{API}/products/{{id:int}}/variations",
                endpoint(list_variations, CANNOT_LIST),
                methods=["GET"],
            ),
            Route(
                f"{API}/products/{{id:int}}/variations/batch",
                endpoint(batch_variations, CANNOT_BATCH),
                methods=editable,
            ),
            Route("/wp-json/{rest:path}", no_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/_sandbox", info, methods=["GET"]),
            Route("/_sandbox/levels", levels, methods=["GET"]),
            Route("/_sandbox/levels/{sku:path}", set_level, methods=["PUT", "POST"]),
            Route("/_sandbox/sales", sales, methods=["POST"]),
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
