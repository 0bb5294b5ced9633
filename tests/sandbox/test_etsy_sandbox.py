"""The Etsy sandbox over real HTTP: auth, token rotation, the whole-inventory PUT, both rate
limits and their headers, receipts, signed webhooks with retries, the control surface."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus.sandbox.etsy import EtsySandbox
from nexus.sandbox.etsy import webhooks as etsy_webhooks
from nexus.web.server import serve_app


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    sandbox: EtsySandbox
    http: httpx.AsyncClient
    token: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "x-api-key": f"{self.sandbox.keystring}:{self.sandbox.shared_secret}",
            "authorization": f"Bearer {self.token}",
            **extra,
        }

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers())

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.http.put(path, json=body, headers=self.headers())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def api(clock: Clock, options: dict[str, Any]) -> AsyncIterator[Api]:
    sandbox = EtsySandbox(seed=5, clock=clock, **options)
    try:
        async with serve_app(sandbox.app) as server, httpx.AsyncClient(base_url=server.base_url) as http:
            yield Api(sandbox, http, sandbox.oauth.issue_access_token())
    finally:
        await sandbox.aclose()


def inventory_path(listing_id: int) -> str:
    return f"/v3/application/listings/{listing_id}/inventory"


async def test_the_api_key_must_carry_the_shared_secret(api: Api) -> None:
    api.sandbox.seed_catalog(1)
    path = inventory_path(api.sandbox.listing_id("SKU-000001"))
    bearer = {"authorization": f"Bearer {api.token}"}

    missing = await api.http.get(path, headers=bearer)
    keystring_only = await api.http.get(path, headers={**bearer, "x-api-key": api.sandbox.keystring})
    wrong = await api.http.get(path, headers={**bearer, "x-api-key": f"{api.sandbox.keystring}:nope"})

    assert [r.status_code for r in (missing, keystring_only, wrong)] == [403, 403, 403]
    assert keystring_only.json() == {"error": "Shared secret is required in x-api-key header."}
    assert api.sandbox.stats.requests == 0


async def test_expired_and_unknown_tokens_answer_401_invalid_token(api: Api, clock: Clock) -> None:
    api.sandbox.seed_catalog(1)
    path = inventory_path(api.sandbox.listing_id("SKU-000001"))
    assert (await api.get(path)).status_code == 200

    clock.now += 3600  # an hour later
    expired = await api.get(path)
    unknown = await api.http.get(path, headers=api.headers(authorization="Bearer 12345678.forged"))

    assert (expired.status_code, expired.json()) == (
        401,
        {"error": "invalid_token", "error_description": "access token is expired"},
    )
    assert (unknown.status_code, unknown.json()["error_description"]) == (401, "access token is invalid")


async def test_refresh_rotates_the_refresh_token(api: Api) -> None:
    form = {
        "grant_type": "refresh_token",
        "client_id": api.sandbox.keystring,
        "refresh_token": api.sandbox.refresh_token,
    }

    first = await api.http.post("/v3/public/oauth/token", data=form)
    again = await api.http.post("/v3/public/oauth/token", data=form)  # the old refresh token
    rotated = await api.http.post(
        "/v3/public/oauth/token", data={**form, "refresh_token": first.json()["refresh_token"]}
    )
    wrong_client = await api.http.post("/v3/public/oauth/token", data={**form, "client_id": "other"})

    assert first.status_code == 200
    assert first.json()["token_type"] == "Bearer" and first.json()["expires_in"] == 3600
    assert first.json()["refresh_token"] != api.sandbox.refresh_token
    assert (again.status_code, again.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "refresh_token is revoked"},
    )
    assert rotated.status_code == 200
    assert wrong_client.status_code == 400
    fresh = Api(api.sandbox, api.http, rotated.json()["access_token"])
    api.sandbox.seed_catalog(1)
    assert (await fresh.get(inventory_path(api.sandbox.listing_id("SKU-000001")))).status_code == 200


VARIANTS = [
    {
        "sku": "A",
        "price": 12.5,
        "quantity": 4,
        "property_values": [{"property_id": 513, "value_ids": [1], "values": ["S"]}],
    },
    {
        "sku": "B",
        "price": 13.0,
        "quantity": 6,
        "property_values": [{"property_id": 513, "value_ids": [2], "values": ["M"]}],
    },
]


async def test_get_returns_money_and_a_put_replaces_everything_with_new_ids(api: Api) -> None:
    listing = api.sandbox.add_listing("Shirt", VARIANTS, {"quantity_on_property": [513]})
    path = inventory_path(listing["listing_id"])
    got = (await api.get(path)).json()
    assert got["products"][0]["offerings"][0]["price"] == {
        "amount": 1250,
        "divisor": 100,
        "currency_code": "USD",
    }

    # A careless client sends back only the product it cares about: Etsy deletes the other one.
    only_a = {
        "products": [
            {
                "sku": "A",
                "property_values": [{"property_id": 513, "value_ids": [1], "values": ["S"]}],
                "offerings": [{"price": 12.5, "quantity": 9, "is_enabled": True}],
            }
        ]
    }
    answer = await api.put(path, only_a)

    assert answer.status_code == 200
    assert [p["sku"] for p in answer.json()["products"]] == ["A"]
    assert answer.json()["products"][0]["product_id"] not in {p["product_id"] for p in got["products"]}
    assert api.sandbox.stats.products_deleted == 1
    assert api.sandbox.levels() == {"A": 9}
    assert answer.json()["quantity_on_property"] == []  # left out, so gone as well


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda p: p[0]["offerings"][0].update(
                price={"amount": 1250, "divisor": 100, "currency_code": "USD"}
            ),
            "price must be a number",
        ),
        (lambda p: p[0].update(product_id=1), "Unexpected product field(s): product_id"),
        (lambda p: p[0]["offerings"][0].update(offering_id=1), "Unexpected offering field(s): offering_id"),
        (lambda p: p[0]["property_values"][0].update(scale_name="x"), "Unexpected property value field"),
        (
            lambda p: [o.update(quantity=0) for q in p for o in q["offerings"]],
            "One offering must have quantity greater than 0",
        ),
        (
            lambda p: p[0]["offerings"][0].update(quantity=1000),
            "quantity must be an integer between 0 and 999",
        ),
    ],
)
async def test_put_validates_like_etsy(api: Api, change: Any, error: str) -> None:
    listing = api.sandbox.add_listing("Shirt", VARIANTS)
    body = {
        "products": [
            {
                "sku": v["sku"],
                "property_values": copy.deepcopy(v["property_values"]),
                "offerings": [{"price": v["price"], "quantity": v["quantity"], "is_enabled": True}],
            }
            for v in VARIANTS
        ]
    }
    change(body["products"])

    answer = await api.put(inventory_path(listing["listing_id"]), body)

    assert answer.status_code == 400 and error in answer.json()["error"]
    assert api.sandbox.levels() == {"A": 4, "B": 6}  # nothing applied


@pytest.mark.parametrize("options", [{"requests_per_second": 3, "requests_per_day": 5, "day_buckets": 24}])
async def test_rate_limit_headers_then_429_without_them(api: Api, clock: Clock) -> None:
    api.sandbox.seed_catalog(1)
    path = inventory_path(api.sandbox.listing_id("SKU-000001"))

    answers = [await api.get(path) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-remaining-this-second"] for a in answers[:3]] == ["2", "1", "0"]
    assert [a.headers["x-remaining-today"] for a in answers[:3]] == ["4", "3", "2"]
    assert answers[0].headers["x-limit-per-second"] == "3" and answers[0].headers["x-limit-per-day"] == "5"
    assert not any(h.startswith("x-limit") or h.startswith("x-remaining") for h in answers[3].headers)

    clock.now += 1.0  # the second is refilled; two requests of the day are left
    daily = [await api.get(path) for _ in range(3)]
    assert [a.status_code for a in daily] == [200, 200, 429]
    assert api.sandbox.stats.throttled_daily == 1

    clock.now += 86_400.0  # the buckets holding those requests left the rolling window
    api.token = api.sandbox.oauth.issue_access_token()  # (the old token expired meanwhile)
    assert (await api.get(path)).status_code == 200


async def test_a_sale_books_a_receipt_and_lowers_the_level(api: Api) -> None:
    api.sandbox.seed_catalog(1, quantity=2)

    receipt = await api.sandbox.simulate_sale("SKU-000001", 2)
    assert receipt is not None
    assert await api.sandbox.simulate_sale("SKU-000001", 1) is None  # nothing left

    fetched = await api.get(f"/v3/application/shops/{api.sandbox.shop_id}/receipts/{receipt['receipt_id']}")
    [transaction] = fetched.json()["transactions"]
    assert (transaction["sku"], transaction["quantity"], transaction["listing_id"]) == (
        "SKU-000001",
        2,
        api.sandbox.listing_id("SKU-000001"),
    )
    assert fetched.json()["is_paid"] is True
    assert api.sandbox.available("SKU-000001") == 0
    assert api.sandbox.store.listings[api.sandbox.listing_id("SKU-000001")].state == "sold_out"
    missing = await api.get(f"/v3/application/shops/{api.sandbox.shop_id}/receipts/1")
    assert missing.status_code == 404


def standard_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return (
        "v1,"
        + base64.b64encode(
            hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        ).decode()
    )


async def test_order_paid_is_signed_and_retried_with_the_same_id() -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def endpoint(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=500 if len(received) == 1 else 204)

    receiver = Starlette(routes=[Route("/hook", endpoint, methods=["POST"])])
    sandbox = EtsySandbox(seed=2, webhook_retry_schedule=(0.01, 0.01))
    sandbox.seed_catalog(1)
    try:
        async with serve_app(receiver) as server:
            sandbox.subscribe("order.paid", f"{server.base_url}/hook")
            old = sandbox.webhook_secret
            new = sandbox.rotate_webhook_secret()
            receipt = await sandbox.simulate_sale("SKU-000001")
            await sandbox.drain_webhooks()
    finally:
        await sandbox.aclose()

    assert receipt is not None
    assert len(received) == 2
    (first, body), (second, body_again) = received
    assert body == body_again
    assert first["webhook-id"] == second["webhook-id"] and first["webhook-id"].startswith("msg_")
    assert json.loads(body) == {
        "event_type": "order.paid",
        "resource_url": f"https://openapi.etsy.com/v3/application/shops/{sandbox.shop_id}/receipts/{receipt['receipt_id']}",
        "shop_id": sandbox.shop_id,
    }
    signatures = second["webhook-signature"].split(" ")
    assert signatures == [
        standard_signature(old, second["webhook-id"], second["webhook-timestamp"], body),
        standard_signature(new, second["webhook-id"], second["webhook-timestamp"], body),
    ]
    assert (sandbox.stats.webhooks_sent, sandbox.stats.webhook_attempts_failed) == (1, 1)


async def test_control_surface(api: Api) -> None:
    api.sandbox.seed_catalog(2, quantity=5)

    sale = await api.http.post("/_sandbox/sales", json={"sku": "SKU-000002", "quantity": 2})
    edit = await api.http.put("/_sandbox/levels/SKU-000001", json={"quantity": 40})
    levels = await api.http.get("/_sandbox/levels")

    assert sale.status_code == 201 and sale.headers["x-nexus-sandbox"]
    assert edit.status_code == 200
    assert levels.json() == {"SKU-000001": 40, "SKU-000002": 3}
    assert (await api.http.get("/_sandbox/stats")).json()["requests"] == 0


def test_the_sandbox_signs_with_its_own_code_to_the_standard_webhooks_vector() -> None:
    """The vector is the Standard Webhooks specification's example. The sandbox does not borrow
    the driver's sign() (tests/sandbox/test_control.py checks no sandbox imports nexus.channels)."""
    secret, message_id, body = (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        b'{"test": 2432232314}',
    )
    signature = etsy_webhooks.standard_signature(secret, message_id, 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
