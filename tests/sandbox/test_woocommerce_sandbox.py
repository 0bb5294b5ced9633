"""The WooCommerce sandbox over real HTTP: the REST answers, auth, limits and webhook delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus.drivers.contract import RateLimitConfig
from nexus.sandbox.woocommerce import WooCommerceSandbox
from nexus.web.server import serve_app

KEY, SECRET, HOOK_SECRET = "ck_live", "cs_live", "hook-secret"
API = "/wp-json/wc/v3"


@dataclass
class Receiver:
    """An HTTP endpoint that records what it is sent and answers `status`."""

    status: int = 200
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.seen.append((dict(request.headers), await request.body()))
            return Response(status_code=self.status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
async def store() -> AsyncIterator[tuple[WooCommerceSandbox, httpx.AsyncClient]]:
    sandbox = WooCommerceSandbox(consumer_key=KEY, consumer_secret=SECRET, webhook_secret=HOOK_SECRET)
    async with (
        serve_app(sandbox.app) as server,
        httpx.AsyncClient(base_url=server.base_url, auth=(KEY, SECRET)) as http,
    ):
        yield sandbox, http
    await sandbox.aclose()


async def test_products_page_with_wordpress_headers(
    store: tuple[WooCommerceSandbox, httpx.AsyncClient],
) -> None:
    sandbox, http = store
    sandbox.seed_catalog(25)

    response = await http.get(
        f"{API}/products", params={"per_page": 10, "page": 2, "orderby": "id", "order": "asc"}
    )

    assert response.status_code == 200
    assert (response.headers["X-WP-Total"], response.headers["X-WP-TotalPages"]) == ("25", "3")
    assert 'rel="prev"' in response.headers["Link"] and 'rel="next"' in response.headers["Link"]
    assert [p["sku"] for p in response.json()] == [f"SKU-{i:06d}" for i in range(11, 21)]
    first = response.json()[0]
    assert (first["type"], first["manage_stock"], first["stock_quantity"], first["global_unique_id"]) == (
        "simple",
        True,
        10,
        "2000000000114",
    )
    too_many = await http.get(f"{API}/products", params={"per_page": 101})
    assert too_many.status_code == 400 and too_many.json()["code"] == "rest_invalid_param"


async def test_authentication_errors_are_woocommerce_shaped(
    store: tuple[WooCommerceSandbox, httpx.AsyncClient],
) -> None:
    sandbox, http = store
    wrong = await http.get(f"{API}/products", auth=(KEY, "cs_wrong"))
    anonymous = await http.get(f"{API}/products", auth=None)
    batch = await http.post(f"{API}/products/batch", json={"update": []}, auth=("ck_nobody", "x"))

    assert (wrong.status_code, wrong.json()["code"], wrong.json()["message"]) == (
        401,
        "woocommerce_rest_authentication_error",
        "Consumer secret is invalid.",
    )
    assert wrong.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "woocommerce_rest_cannot_view")
    assert (batch.status_code, batch.json()["code"]) == (401, "woocommerce_rest_cannot_batch")
    assert sandbox.stats.requests == 0 and sandbox.stats.unauthorized == 3


async def test_read_only_keys_cannot_write() -> None:
    sandbox = WooCommerceSandbox(consumer_key=KEY, consumer_secret=SECRET, key_permissions="read")
    sandbox.seed_catalog(1)
    async with (
        serve_app(sandbox.app) as server,
        httpx.AsyncClient(base_url=server.base_url, auth=(KEY, SECRET)) as http,
    ):
        read = await http.get(f"{API}/products")
        write = await http.post(f"{API}/products/batch", json={"update": [{"id": 11, "stock_quantity": 1}]})
    assert read.status_code == 200
    assert write.status_code == 401 and "write permissions" in write.json()["message"]
    assert sandbox.levels() == {"SKU-000001": 10}


async def test_batch_limit_counts_every_operation(
    store: tuple[WooCommerceSandbox, httpx.AsyncClient],
) -> None:
    sandbox, http = store
    sandbox.seed_catalog(1)
    body = {"update": [{"id": 11, "stock_quantity": 1}] * 60, "delete": [999] * 41}

    response = await http.post(f"{API}/products/batch", json=body)

    assert response.status_code == 413
    assert response.json() == {
        "code": "woocommerce_rest_request_entity_too_large",
        "message": "Unable to accept more than 100 items for this request.",
        "data": {"status": 413},
    }
    assert sandbox.levels() == {"SKU-000001": 10}


async def test_turning_stock_management_off_clears_the_quantity(
    store: tuple[WooCommerceSandbox, httpx.AsyncClient],
) -> None:
    sandbox, http = store
    sandbox.seed_catalog(1)
    response = await http.post(
        f"{API}/products/batch", json={"update": [{"id": 11, "manage_stock": False, "stock_quantity": 4}]}
    )
    (saved,) = response.json()["update"]
    assert (saved["manage_stock"], saved["stock_quantity"]) == (False, None)


async def test_host_rate_limit_answers_429_with_retry_after() -> None:
    now = [0.0]
    sandbox = WooCommerceSandbox(
        consumer_key=KEY,
        consumer_secret=SECRET,
        host_rate_limit=RateLimitConfig(2, 0.5),
        monotonic=lambda: now[0],
    )
    async with (
        serve_app(sandbox.app) as server,
        httpx.AsyncClient(base_url=server.base_url, auth=(KEY, SECRET)) as http,
    ):
        codes = [(await http.get(f"{API}/products")).status_code for _ in range(3)]
        throttled = await http.get(f"{API}/products")
        now[0] += 2.0  # one token back at 0.5/s
        after = await http.get(f"{API}/products")
    assert codes == [200, 200, 429]
    assert throttled.headers["Retry-After"] == "2"
    assert after.status_code == 200
    assert sandbox.stats.throttled == 2


def _valid(headers: dict[str, str], body: bytes) -> bool:
    expected = base64.b64encode(hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(headers["x-wc-webhook-signature"], expected)


async def test_ping_then_signed_sale_deliveries(store: tuple[WooCommerceSandbox, httpx.AsyncClient]) -> None:
    sandbox, _ = store
    sandbox.add_variable_product("Shirt", [{"sku": "SHIRT-M", "quantity": 4, "attributes": {"Size": "M"}}])
    receiver = Receiver()
    async with serve_app(receiver.app()) as hook:
        orders = sandbox.subscribe("order.created", f"{hook.base_url}/hook")
        products = sandbox.subscribe("product.updated", f"{hook.base_url}/hook")
        order = await sandbox.simulate_sale("SHIRT-M", 3)
        await sandbox.drain_webhooks()

    (ping1, ping2, created, variation, parent) = receiver.seen
    assert ping1[1] == f"webhook_id={orders.id}".encode() and ping2[1] == f"webhook_id={products.id}".encode()
    assert "x-wc-webhook-signature" not in ping1[0]
    assert ping1[0]["content-type"] == "application/x-www-form-urlencoded"
    for headers, body in (created, variation, parent):
        assert _valid(headers, body)
        assert headers["x-wc-webhook-source"] == "https://nexus-demo.example/"
        assert b"\\/" in body  # PHP's json_encode escapes slashes: verify the raw bytes
    assert (
        created[0]["x-wc-webhook-topic"],
        created[0]["x-wc-webhook-resource"],
        created[0]["x-wc-webhook-event"],
    ) == (
        "order.created",
        "order",
        "created",
    )
    line = json.loads(created[1])["line_items"][0]
    assert order is not None and (line["variation_id"], line["quantity"], line["sku"]) == (
        order["line_items"][0]["variation_id"],
        3,
        "SHIRT-M",
    )
    variation_body = json.loads(variation[1])
    assert (variation_body["type"], variation_body["stock_quantity"]) == ("variation", 1)
    assert json.loads(parent[1])["type"] == "variable"  # the parent's deferred sync
    assert sandbox.stats.pings_sent == 2 and sandbox.stats.webhooks_sent == 3


async def test_failed_deliveries_are_not_retried_and_disable_the_webhook(
    store: tuple[WooCommerceSandbox, httpx.AsyncClient],
) -> None:
    sandbox, _ = store
    sandbox.seed_catalog(1)
    receiver = Receiver(status=500)
    async with serve_app(receiver.app()) as hook:
        webhook = sandbox.subscribe("product.updated", f"{hook.base_url}/hook")
        for quantity in range(6):
            await sandbox.set_available("SKU-000001", quantity)
        await sandbox.drain_webhooks()
        assert (webhook.status, webhook.failure_count) == ("active", 6)  # 6 is not over 5 yet
        await sandbox.set_available("SKU-000001", 20)  # a failure with the count over 5
        await sandbox.set_available("SKU-000001", 21)  # never sent
        await sandbox.drain_webhooks()

    assert webhook.status == "disabled"
    assert len(receiver.seen) == 1 + 7  # the ping, then each delivery exactly once
    assert (sandbox.stats.webhooks_failed, sandbox.stats.webhooks_disabled, sandbox.stats.pings_failed) == (
        7,
        1,
        1,
    )


async def test_a_success_resets_the_failure_count(
    store: tuple[WooCommerceSandbox, httpx.AsyncClient],
) -> None:
    sandbox, _ = store
    sandbox.seed_catalog(1)
    receiver = Receiver(status=503)
    async with serve_app(receiver.app()) as hook:
        webhook = sandbox.subscribe("product.updated", f"{hook.base_url}/hook")
        for quantity in range(5):
            await sandbox.set_available("SKU-000001", quantity)
        await sandbox.drain_webhooks()
        receiver.status = 302  # a redirect counts as delivered
        await sandbox.set_available("SKU-000001", 9)
        await sandbox.drain_webhooks()
    assert (webhook.status, webhook.failure_count) == ("active", 0)
