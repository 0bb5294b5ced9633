"""The Shopify sandbox, over real HTTP on loopback, the way the driver and the demo use it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus.sandbox.shopify import ShopifySandbox
from nexus.web.server import serve_app

TOKEN = "shpat_sandbox"
SECRET = "sandbox-webhook-secret"
ENDPOINT = "/admin/api/2026-10/graphql.json"

SET_QUANTITIES = """
mutation SetQuantities($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup {
      createdAt reason referenceDocumentUri
      changes { name delta quantityAfterChange item { id } }
    }
    userErrors { code field message }
  }
}
"""

PRODUCTS = """
query Products($first: Int!, $after: String) {
  products(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id title handle status
      variants(first: 100) {
        nodes { id sku barcode title price inventoryQuantity inventoryPolicy inventoryItem { id tracked } }
      }
    }
  }
}
"""

LEVELS = """
query Levels($ids: [ID!]!, $location: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } updatedAt }
    }
  }
}
"""


class FakeClock:
    """The point bucket's clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(sandbox: ShopifySandbox, token: str = TOKEN) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_app(sandbox.app) as server,
        httpx.AsyncClient(
            base_url=server.base_url, headers={"X-Shopify-Access-Token": token}, trust_env=False
        ) as client,
    ):
        try:
            yield client
        finally:
            await sandbox.aclose()


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(ENDPOINT, json={"query": query, "variables": variables or {}})


def item_gid(sandbox: ShopifySandbox, sku: str) -> str:
    return f"gid://shopify/InventoryItem/{sandbox.variant_ids(sku)[1]}"


def location_gid(sandbox: ShopifySandbox) -> str:
    return f"gid://shopify/Location/{sandbox.location_id}"


def set_input(sandbox: ShopifySandbox, *entries: tuple[str, int, int | None]) -> dict[str, Any]:
    return {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "gid://nexus/SyncJob/5f0c",
        "quantities": [
            {
                "inventoryItemId": item_gid(sandbox, sku),
                "locationId": location_gid(sandbox),
                "quantity": quantity,
                "changeFromQuantity": change_from,
            }
            for sku, quantity, change_from in entries
        ],
    }


def seeded(count: int = 3, **options: Any) -> ShopifySandbox:
    sandbox = ShopifySandbox(seed=7, **options)
    sandbox.seed_catalog(count, quantity=10)
    return sandbox


# --- auth and validation ---------------------------------------------------------------------


async def test_wrong_or_missing_token_is_401_and_unknown_version_404() -> None:
    sandbox = seeded()
    async with running(sandbox, token="shpat_wrong") as client:
        wrong = await gql(client, "{ shop { name } }")
        missing = await client.post(
            ENDPOINT, json={"query": "{ shop { name } }"}, headers={"X-Shopify-Access-Token": ""}
        )
        version = await client.post("/admin/api/2026-05/graphql.json", json={"query": "{ shop { name } }"})
    assert wrong.status_code == 401 == missing.status_code
    assert wrong.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    assert version.status_code == 404
    assert sandbox.stats.requests == 0


async def test_unknown_field_fails_schema_validation_in_shopify_shape() -> None:
    sandbox = seeded()
    async with running(sandbox) as client:
        response = await gql(client, "query Q { products(first: 1) { nodes { id inventoryCount } } }")
    body = response.json()
    assert response.status_code == 200
    assert "data" not in body
    (error,) = body["errors"]
    assert error["message"] == "Field 'inventoryCount' doesn't exist on type 'Product'"
    assert error["extensions"] == {
        "code": "undefinedField",
        "typeName": "Product",
        "fieldName": "inventoryCount",
    }
    assert error["path"] == ["query Q", "products", "nodes", "inventoryCount"]
    assert error["locations"] == [{"line": 1, "column": 43}]


async def test_invalid_variables_are_reported_as_invalid_variable() -> None:
    sandbox = seeded()
    async with running(sandbox) as client:
        response = await gql(client, PRODUCTS, {"first": "ten"})
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "INVALID_VARIABLE"
    assert error["message"].startswith("Variable $first of type Int! was provided invalid value")


# --- inventorySetQuantities --------------------------------------------------------------------


async def test_set_quantities_applies_every_item_and_returns_the_adjustment_group() -> None:
    sandbox = seeded()
    async with running(sandbox) as client:
        variables = {
            "input": set_input(sandbox, ("SKU-000001", 4, 10), ("SKU-000002", 25, None)),
            "key": "k-1",
        }
        response = await gql(client, SET_QUANTITIES, variables)
    payload = response.json()["data"]["inventorySetQuantities"]
    assert payload["userErrors"] == []
    group = payload["inventoryAdjustmentGroup"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", group["createdAt"])
    assert group["reason"] == "correction"
    assert group["referenceDocumentUri"] == "gid://nexus/SyncJob/5f0c"
    available = [c for c in group["changes"] if c["name"] == "available"]
    assert available == [
        {
            "name": "available",
            "delta": -6,
            "quantityAfterChange": 4,
            "item": {"id": item_gid(sandbox, "SKU-000001")},
        },
        {
            "name": "available",
            "delta": 15,
            "quantityAfterChange": 25,
            "item": {"id": item_gid(sandbox, "SKU-000002")},
        },
    ]
    assert {c["name"] for c in group["changes"]} == {"available", "on_hand"}
    assert sandbox.levels() == {"SKU-000001": 4, "SKU-000002": 25, "SKU-000003": 10}
    assert sandbox.stats.quantities_set == 2
    assert sandbox.stats.set_count_by_sku == {"SKU-000001": 1, "SKU-000002": 1}


async def test_stale_change_from_quantity_fails_the_whole_input() -> None:
    sandbox = seeded()
    async with running(sandbox) as client:
        variables = {"input": set_input(sandbox, ("SKU-000001", 4, 10), ("SKU-000002", 7, 9)), "key": "k-2"}
        response = await gql(client, SET_QUANTITIES, variables)
    payload = response.json()["data"]["inventorySetQuantities"]
    assert payload["inventoryAdjustmentGroup"] is None
    assert payload["userErrors"] == [
        {
            "code": "CHANGE_FROM_QUANTITY_STALE",
            "field": ["input", "quantities", "1", "changeFromQuantity"],
            "message": "The changeFromQuantity argument no longer matches the persisted quantity.",
        }
    ]
    assert sandbox.levels()["SKU-000001"] == 10  # the valid first item was not applied either
    assert sandbox.stats.set_count_by_sku == {}
    assert sandbox.stats.user_errors == 1


def test_stale_error_without_field_path_when_configured() -> None:
    sandbox = seeded(stale_field_path=False)
    payload = sandbox.set_inventory_quantities(set_input(sandbox, ("SKU-000001", 1, 3)), "k")
    assert payload["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert payload["userErrors"][0]["field"] is None


async def test_other_user_errors_name_the_offending_field() -> None:
    sandbox = seeded()
    inactive = next(loc for loc in sandbox.store.locations.values() if not loc.is_active)
    data = set_input(
        sandbox, ("SKU-000001", -1, None), ("SKU-000002", 1_000_000_001, None), ("SKU-000003", 1, None)
    )
    data["quantities"][2]["locationId"] = f"gid://shopify/Location/{inactive.id}"
    data["quantities"].append(
        {**data["quantities"][0], "inventoryItemId": "gid://shopify/InventoryItem/1", "quantity": 1}
    )
    async with running(sandbox) as client:
        response = await gql(client, SET_QUANTITIES, {"input": data, "key": "k-3"})
    errors = response.json()["data"]["inventorySetQuantities"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("INVALID_QUANTITY_NEGATIVE", ["input", "quantities", "0", "quantity"]),
        ("INVALID_QUANTITY_TOO_HIGH", ["input", "quantities", "1", "quantity"]),
        ("ITEM_NOT_STOCKED_AT_LOCATION", ["input", "quantities", "2", "locationId"]),
        ("INVALID_INVENTORY_ITEM", ["input", "quantities", "3", "inventoryItemId"]),
    ]
    assert sandbox.levels() == {"SKU-000001": 10, "SKU-000002": 10, "SKU-000003": 10}


async def test_quantity_without_change_from_key_or_without_idempotent_directive_is_refused() -> None:
    sandbox = seeded()
    data = set_input(sandbox, ("SKU-000001", 4, None))
    del data["quantities"][0]["changeFromQuantity"]
    no_directive = SET_QUANTITIES.replace("@idempotent(key: $key)", "").replace(", $key: String!", "")
    async with running(sandbox) as client:
        missing_key = (await gql(client, SET_QUANTITIES, {"input": data, "key": "k-4"})).json()
        missing_directive = (
            await gql(client, no_directive, {"input": set_input(sandbox, ("SKU-000001", 4, 10))})
        ).json()
    assert missing_key["data"] == {"inventorySetQuantities": None}
    (error,) = missing_key["errors"]
    assert (
        error["message"] == "InventoryQuantityInput must include the following argument: changeFromQuantity."
    )
    assert error["extensions"] == {"code": "INVALID_FIELD_ARGUMENTS"}
    assert error["path"] == ["inventorySetQuantities"]
    (error,) = missing_directive["errors"]
    assert error["message"] == "The @idempotent directive is required for this mutation but was not provided."
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert sandbox.levels()["SKU-000001"] == 10


async def test_more_than_250_quantities_is_refused_before_costing() -> None:
    sandbox = seeded()
    data = set_input(sandbox, *[("SKU-000001", 1, None)] * 251)
    async with running(sandbox) as client:
        body = (await gql(client, SET_QUANTITIES, {"input": data, "key": "k-5"})).json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["message"] == "The input array size of 251 is greater than the maximum allowed of 250."
    assert error["extensions"] == {"code": "MAX_INPUT_SIZE_EXCEEDED"}
    assert error["path"] == ["inventorySetQuantities", "input", "quantities"]
    assert sandbox.bucket.currently_available() == sandbox.bucket.maximum_available
    assert sandbox.levels()["SKU-000001"] == 10


async def test_same_idempotency_key_replays_the_original_result_without_applying_again() -> None:
    sandbox = seeded()
    variables = {"input": set_input(sandbox, ("SKU-000001", 4, 10)), "key": "k-6"}
    async with running(sandbox) as client:
        first = (await gql(client, SET_QUANTITIES, variables)).json()["data"]
        await sandbox.set_available("SKU-000001", 8)  # the merchant edits in between
        again = (await gql(client, SET_QUANTITIES, variables)).json()["data"]
        changed = {"input": set_input(sandbox, ("SKU-000001", 5, 8)), "key": "k-6"}
        mismatch = (await gql(client, SET_QUANTITIES, changed)).json()["data"]
    assert again == first
    assert sandbox.available("SKU-000001") == 8
    assert sandbox.stats.set_count_by_sku == {"SKU-000001": 1}
    assert sandbox.stats.idempotent_replays == 1
    (error,) = mismatch["inventorySetQuantities"]["userErrors"]
    assert error["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"


# --- fault knobs ------------------------------------------------------------------------------


async def test_fail_next_refuses_before_running_and_lose_next_applies_then_loses_the_answer() -> None:
    sandbox = seeded()
    async with running(sandbox) as client:
        sandbox.fail_next(1, status=503)
        refused = await gql(
            client, SET_QUANTITIES, {"input": set_input(sandbox, ("SKU-000001", 4, 10)), "key": "f-1"}
        )
        assert refused.status_code == 503 and sandbox.available("SKU-000001") == 10
        sandbox.fail_next(1, status=429, retry_after=0.5)
        storm = await gql(
            client, SET_QUANTITIES, {"input": set_input(sandbox, ("SKU-000001", 4, 10)), "key": "f-1"}
        )
        assert (storm.status_code, storm.headers["retry-after"]) == (429, "0.5")

        sandbox.lose_next(1, status=502)
        stale = await gql(
            client, SET_QUANTITIES, {"input": set_input(sandbox, ("SKU-000001", 4, 9)), "key": "f-2"}
        )
        assert stale.status_code == 200  # refused by the store (stale): nothing applied, nothing lost
        lost = await gql(
            client, SET_QUANTITIES, {"input": set_input(sandbox, ("SKU-000001", 4, 10)), "key": "f-3"}
        )
        assert lost.status_code == 502 and sandbox.available("SKU-000001") == 4

        sandbox.lose_next(1, status=None)
        with pytest.raises(httpx.RemoteProtocolError):
            await gql(
                client, SET_QUANTITIES, {"input": set_input(sandbox, ("SKU-000002", 7, 10)), "key": "f-4"}
            )
        assert sandbox.available("SKU-000002") == 7
        variables = {"ids": [item_gid(sandbox, "SKU-000002")], "location": location_gid(sandbox)}
        assert (await gql(client, LEVELS, variables)).status_code == 200  # the server lives on
    assert (sandbox.stats.failed, sandbox.stats.throttled, sandbox.stats.answers_lost) == (1, 1, 2)


# --- cost and throttling -----------------------------------------------------------------------


async def test_every_response_reports_cost_and_the_bucket_drains_then_restores() -> None:
    clock = FakeClock()
    sandbox = seeded(3, clock=clock)
    async with running(sandbox) as client:
        first = (await gql(client, PRODUCTS, {"first": 2})).json()["extensions"]["cost"]
        second = (await gql(client, PRODUCTS, {"first": 2})).json()["extensions"]["cost"]
        clock.now += 60
        rested = (await gql(client, "{ shop { name } }")).json()["extensions"]["cost"]
    # 2 + 2 products x (1 + variants(2 + 100 x (1 variant + 1 inventoryItem)))
    assert first["requestedQueryCost"] == 2 + 2 * (1 + 2 + 100 * 2)
    assert first["actualQueryCost"] == 2 + 2 * (1 + 2 + 1 * 2)  # one variant per product came back
    assert first["throttleStatus"] == {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 1988,
        "restoreRate": 100.0,
    }
    assert second["throttleStatus"]["currentlyAvailable"] == 1976
    assert rested["throttleStatus"]["currentlyAvailable"] == 2000 - rested["actualQueryCost"]


async def test_query_over_1000_points_is_refused() -> None:
    sandbox = seeded()
    async with running(sandbox) as client:
        body = (await gql(client, PRODUCTS, {"first": 5})).json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] == 2 + 5 * 203
    assert error["message"].startswith(
        "Query cost is 1017, which exceeds the single query max cost limit (1000)."
    )


@pytest.mark.parametrize("status", [200, 429])
async def test_drained_bucket_answers_throttled_and_applies_nothing(status: int) -> None:
    clock = FakeClock()
    sandbox = seeded(maximum_available=25, restore_rate=10, throttled_status=status, clock=clock)
    async with running(sandbox) as client:
        for n in range(2):
            ok = await gql(
                client, SET_QUANTITIES, {"input": set_input(sandbox, ("SKU-000001", n, None)), "key": f"t{n}"}
            )
            assert ok.status_code == 200 and "data" in ok.json()
        variables = {"input": set_input(sandbox, ("SKU-000002", 3, None)), "key": "t-throttled"}
        throttled = await gql(client, SET_QUANTITIES, variables)
        clock.now += 1  # 5 + 10 points: enough for the 10-point retry
        retried = await gql(client, SET_QUANTITIES, variables)
    assert throttled.status_code == status
    body = throttled.json()
    assert "data" not in body
    assert body["errors"][0]["message"] == "Throttled"
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 10 and cost["actualQueryCost"] is None
    assert cost["throttleStatus"] == {"maximumAvailable": 25.0, "currentlyAvailable": 5, "restoreRate": 10.0}
    if status == 429:
        assert throttled.headers["Retry-After"] == "1"
    assert sandbox.stats.throttled == 1
    assert retried.json()["data"]["inventorySetQuantities"]["userErrors"] == []
    assert sandbox.available("SKU-000002") == 3


# --- reads ---------------------------------------------------------------------------------------


async def test_products_page_with_cursors_and_a_single_product_read() -> None:
    sandbox = seeded(7)
    sandbox.add_product(
        "Shirt",
        [
            {"sku": "SHIRT-S", "title": "S", "price": "19.90", "quantity": 2},
            {"sku": "SHIRT-M", "title": "M", "price": 19.9, "quantity": 0, "inventory_policy": "continue"},
        ],
    )
    seen: list[dict[str, Any]] = []
    after = None
    pages = 0
    async with running(sandbox) as client:
        while True:
            data = (await gql(client, PRODUCTS, {"first": 3, "after": after})).json()["data"]["products"]
            seen.extend(data["nodes"])
            pages += 1
            if not data["pageInfo"]["hasNextPage"]:
                break
            after = data["pageInfo"]["endCursor"]
        product_id = seen[-1]["id"]
        single = (
            await gql(client, "query P($id: ID!) { product(id: $id) { id title } }", {"id": product_id})
        ).json()
        edges = (await gql(client, "{ products(first: 2) { edges { cursor node { id } } } }")).json()
    assert pages == 3
    assert [p["variants"]["nodes"][0]["sku"] for p in seen[:7]] == [f"SKU-{i:06d}" for i in range(1, 8)]
    shirt = seen[-1]
    assert shirt["handle"] == "shirt" and shirt["status"] == "ACTIVE"
    assert [
        (v["sku"], v["title"], v["price"], v["inventoryQuantity"], v["inventoryPolicy"])
        for v in shirt["variants"]["nodes"]
    ] == [
        ("SHIRT-S", "S", "19.90", 2, "DENY"),
        ("SHIRT-M", "M", "19.90", 0, "CONTINUE"),
    ]
    first_variant = seen[0]["variants"]["nodes"][0]
    assert first_variant["id"] == f"gid://shopify/ProductVariant/{sandbox.variant_ids('SKU-000001')[0]}"
    assert first_variant["inventoryItem"] == {"id": item_gid(sandbox, "SKU-000001"), "tracked": True}
    assert re.fullmatch(r"\d{13}", first_variant["barcode"])
    assert single["data"]["product"] == {"id": product_id, "title": "Shirt"}
    assert [e["node"]["id"] for e in edges["data"]["products"]["edges"]] == [p["id"] for p in seen[:2]]


async def test_nodes_reads_inventory_levels_and_locations_lists_active_ones() -> None:
    sandbox = seeded()
    await sandbox.set_available("SKU-000002", 6)
    ids = [item_gid(sandbox, "SKU-000001"), item_gid(sandbox, "SKU-000002"), "gid://shopify/InventoryItem/1"]
    async with running(sandbox) as client:
        levels = (await gql(client, LEVELS, {"ids": ids, "location": location_gid(sandbox)})).json()
        active = (await gql(client, "{ locations(first: 5) { nodes { id name isActive } } }")).json()
        every = (
            await gql(client, "{ locations(first: 5, includeInactive: true) { nodes { isActive } } }")
        ).json()
    first, second, unknown = levels["data"]["nodes"]
    assert first["id"] == ids[0]
    assert first["inventoryLevel"]["quantities"] == [{"name": "available", "quantity": 10}]
    assert second["inventoryLevel"]["quantities"] == [{"name": "available", "quantity": 6}]
    assert re.fullmatch(r".+T.+Z", second["inventoryLevel"]["updatedAt"])
    assert unknown is None
    assert levels["extensions"]["cost"]["requestedQueryCost"] == 3 * 3
    assert active["data"]["locations"]["nodes"] == [
        {"id": location_gid(sandbox), "name": "Shop location", "isActive": True}
    ]
    assert [n["isActive"] for n in every["data"]["locations"]["nodes"]] == [True, False]


# --- sales and the control surface ------------------------------------------------------------


async def test_simulated_sale_respects_the_inventory_policy() -> None:
    sandbox = ShopifySandbox(seed=1)
    sandbox.add_product("Deny", [{"sku": "D", "quantity": 1}])
    sandbox.add_product("Continue", [{"sku": "C", "quantity": 0, "inventory_policy": "continue"}])
    assert await sandbox.simulate_sale("D", 2) is None
    order = await sandbox.simulate_sale("D", 1)
    assert order is not None and order["line_items"][0]["sku"] == "D"
    assert await sandbox.simulate_sale("C", 3) is not None
    assert sandbox.levels() == {"D": 0, "C": -3}
    await sandbox.aclose()


async def test_control_surface_sells_edits_and_lists_levels() -> None:
    sandbox = seeded(2)
    async with running(sandbox) as client:
        sale = await client.post("/_sandbox/sales", json={"sku": "SKU-000001", "quantity": 3})
        refused = await client.post("/_sandbox/sales", json={"sku": "SKU-000002", "quantity": 11})
        edit = await client.put("/_sandbox/levels/SKU-000002", json={"available": 4})
        levels = await client.get("/_sandbox/levels")
    assert sale.status_code == 201 and sale.json()["order"]["line_items"][0]["quantity"] == 3
    assert refused.status_code == 409
    assert edit.status_code == 200
    assert levels.json() == {"SKU-000001": 7, "SKU-000002": 4}
    assert "not part of the Shopify API" in levels.headers["X-Nexus-Sandbox"]


# --- webhooks -------------------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint on loopback that records every delivery it gets."""

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.failures = failures
        self.app = Starlette(routes=[Route("/hooks", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        self.calls.append((dict(request.headers), await request.body()))
        if self.failures:
            self.failures -= 1
            return Response(status_code=500)
        return Response(status_code=200)

    def bodies(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(body) for headers, body in self.calls if headers["x-shopify-topic"] == topic]


@contextlib.asynccontextmanager
async def receiving(sandbox: ShopifySandbox, receiver: Receiver, *topics: str) -> AsyncIterator[str]:
    async with serve_app(receiver.app) as server:
        for topic in topics:
            sandbox.subscribe(topic, f"{server.base_url}/hooks")
        try:
            yield server.base_url
        finally:
            await sandbox.aclose()


def expected_hmac(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


async def test_webhooks_are_signed_and_shaped_like_shopify() -> None:
    sandbox = seeded(2)
    receiver = Receiver()
    variant_id, item_id = sandbox.variant_ids("SKU-000001")
    async with (
        receiving(sandbox, receiver, "orders/create", "inventory_levels/update"),
        running(sandbox) as client,
    ):
        order = await sandbox.simulate_sale("SKU-000001", 2)
        await sandbox.set_available("SKU-000001", 5)
        await gql(client, SET_QUANTITIES, {"input": set_input(sandbox, ("SKU-000002", 1, 10)), "key": "w"})
        await sandbox.drain_webhooks(timeout=5)
    assert len(receiver.calls) == 4
    for headers, body in receiver.calls:
        assert headers["x-shopify-hmac-sha256"] == expected_hmac(body)
        assert headers["x-shopify-shop-domain"] == "nexus-demo.myshopify.com"
        assert headers["x-shopify-api-version"] == "2026-10"
        assert headers["content-type"] == "application/json"
        assert headers["x-shopify-webhook-id"] and headers["x-shopify-event-id"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", headers["x-shopify-triggered-at"])
    assert len({h["x-shopify-webhook-id"] for h, _ in receiver.calls}) == 4
    (created,) = receiver.bodies("orders/create")
    assert created == order
    assert created["admin_graphql_api_id"] == f"gid://shopify/Order/{created['id']}"
    (line,) = created["line_items"]
    assert (line["variant_id"], line["sku"], line["quantity"], line["price"]) == (
        variant_id,
        "SKU-000001",
        2,
        "11.00",
    )
    assert isinstance(line["id"], int) and isinstance(line["product_id"], int)
    updates = receiver.bodies("inventory_levels/update")
    assert [(u["inventory_item_id"], u["available"]) for u in updates] == [
        (item_id, 8),
        (item_id, 5),
        (sandbox.variant_ids("SKU-000002")[1], 1),
    ]
    assert updates[0]["location_id"] == sandbox.location_id
    assert updates[0]["admin_graphql_api_id"] == (
        f"gid://shopify/InventoryLevel/{sandbox.location_id}?inventory_item_id={item_id}"
    )
    assert sandbox.stats.webhooks_sent == 4


async def test_duplicated_deliveries_keep_their_webhook_id() -> None:
    sandbox = seeded(1, duplicate_rate=1.0)
    receiver = Receiver()
    async with receiving(sandbox, receiver, "orders/create"):
        await sandbox.simulate_sale("SKU-000001")
        await sandbox.drain_webhooks(timeout=5)
    first, second = receiver.calls
    assert first[0]["x-shopify-webhook-id"] == second[0]["x-shopify-webhook-id"]
    assert first[0]["x-shopify-event-id"] == second[0]["x-shopify-event-id"]
    assert first[1] == second[1]
    assert sandbox.stats.webhooks_duplicated == 1


async def test_failed_deliveries_are_retried_with_the_same_ids_then_given_up() -> None:
    sandbox = seeded(1, time_scale=1_000_000)
    flaky, dead = Receiver(failures=2), Receiver(failures=100)
    async with receiving(sandbox, flaky, "orders/create"), serve_app(dead.app) as dead_server:
        sandbox.subscribe("inventory_levels/update", f"{dead_server.base_url}/hooks")
        await sandbox.simulate_sale("SKU-000001")
        await sandbox.drain_webhooks(timeout=5)
    assert len(flaky.calls) == 3
    assert len({headers["x-shopify-webhook-id"] for headers, _ in flaky.calls}) == 1
    assert len(dead.calls) == 9  # the first attempt and 8 retries
    assert sandbox.stats.webhooks_sent == 1
    assert sandbox.stats.webhooks_failed == 1
    assert sandbox.stats.webhook_attempts_failed == 2 + 9


async def test_dropped_and_reordered_deliveries() -> None:
    dropping = seeded(1, drop_rate=1.0)
    receiver = Receiver()
    async with receiving(dropping, receiver, "orders/create"):
        await dropping.simulate_sale("SKU-000001")
        await dropping.drain_webhooks(timeout=5)
    assert receiver.calls == [] and dropping.stats.webhooks_dropped == 1

    shuffling = seeded(1, reorder=True)
    receiver = Receiver()
    async with receiving(shuffling, receiver, "orders/create"):
        for _ in range(5):
            await shuffling.simulate_sale("SKU-000001")
        await shuffling.drain_webhooks(timeout=5)
    assert sorted(body["order_number"] for body in receiver.bodies("orders/create")) == [
        1001,
        1002,
        1003,
        1004,
        1005,
    ]


def test_same_key_can_be_configured_to_re_execute_like_some_live_shops() -> None:
    sandbox = seeded(replay_idempotent=False, time_scale=4)
    data = set_input(sandbox, ("SKU-000001", 4, 10))
    assert sandbox.set_inventory_quantities(data, "k")["userErrors"] == []
    again = sandbox.set_inventory_quantities(data, "k")
    assert again["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert sandbox.stats.set_count_by_sku == {"SKU-000001": 1}
    assert sandbox.bucket.throttle_status()["restoreRate"] == 400.0  # time_scale compresses time
