"""The ASGI app: the WooCommerce REST v3 endpoints Nexus uses plus a sandbox-only control surface.

    GET  /wp-json/wc/v3/products                   page, per_page (<= 100), include, orderby, order, sku
    GET  /wp-json/wc/v3/products/{id}
    GET  /wp-json/wc/v3/products/{id}/variations
    POST /wp-json/wc/v3/products/batch                    {"create", "update", "delete"}
    POST /wp-json/wc/v3/products/{id}/variations/batch

Everything under /_sandbox is NOT part of WooCommerce's API: the shared control surface
(`nexus.sandbox.control`; the quantity is "stock_quantity" and an edit sends product.updated, a
sale sends order.created, a subscription creates a webhook, pinged first, answered with its id).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexus.sandbox.control import ControlSurface, control_routes, read_json
from nexus.sandbox.woocommerce.api import Reply
from nexus.sandbox.woocommerce.payloads import php_json, wp_error

if TYPE_CHECKING:
    from nexus.sandbox.woocommerce.sandbox import WooCommerceSandbox

API = "/wp-json/wc/v3"
CONTROL = ControlSurface("WooCommerce", quantity_key="stock_quantity")
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
        return sandbox.api.batch(None, await read_json(request), base_url)

    async def batch_variations(request: Request, base_url: str) -> Reply:
        return sandbox.api.batch(request.path_params["id"], await read_json(request), base_url)

    async def no_route(_: Request) -> Response:
        return _wp_response(
            404, wp_error("rest_no_route", "No route was found matching the URL and request method.", 404)
        )

    def info() -> dict[str, Any]:
        return {
            "api": API,
            "products": len(sandbox.store.listed()),
            "webhooks": [
                {"id": w.id, "topic": w.topic, "delivery_url": w.delivery_url, "status": w.status}
                for w in sandbox.webhooks.webhooks.values()
            ],
        }

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
            *control_routes(sandbox, CONTROL, info=info, subscription=lambda webhook: {"id": webhook.id}),
        ]
    )
