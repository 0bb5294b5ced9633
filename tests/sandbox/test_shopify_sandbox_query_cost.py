"""The sandbox's single-query cost cap over real HTTP on loopback: Shopify refuses any query whose
calculated cost is over 1000 points (MAX_COST_EXCEEDED), on every plan, whatever the bucket holds;
the refused query is neither executed nor charged. A query under the cap but over the whole bucket
is THROTTLED, and stays so however long one waits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from nexus.sandbox.shopify import ShopifySandbox
from nexus.web.server import serve_app

ENDPOINT = "/admin/api/2026-10/graphql.json"

# 2 + first x (1 product + variants 2 + n x (1 variant + 1 inventoryItem))
PRODUCTS = """
query Products($first: Int!) {
  products(first: $first) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id title
      variants(first: %d) {
        pageInfo { hasNextPage endCursor }
        nodes { id sku inventoryQuantity inventoryItem { id tracked } }
      }
    }
  }
}
"""
COST_1001 = (PRODUCTS % 165, {"first": 3})  # 2 + 3 x (3 + 165 x 2)
COST_1000 = (PRODUCTS % 248, {"first": 2})  # 2 + 2 x (3 + 248 x 2)

# Plan-sized buckets (Standard 2,000 ... enterprise 40,000) and buckets smaller than the cap.
BUCKETS = [25, 500, 1000, 2000, 20000, 40000]


class FakeClock:
    """The point bucket's clock: the test moves time, so a bucket level is exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(sandbox: ShopifySandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_app(sandbox.app) as server,
        httpx.AsyncClient(
            base_url=server.base_url,
            headers={"X-Shopify-Access-Token": sandbox.access_token},
            trust_env=False,
        ) as client,
    ):
        try:
            yield client
        finally:
            await sandbox.aclose()


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> httpx.Response:
    return await client.post(ENDPOINT, json={"query": query, "variables": variables})


def store(maximum_available: float, clock: FakeClock) -> ShopifySandbox:
    sandbox = ShopifySandbox(seed=3, maximum_available=maximum_available, restore_rate=50, clock=clock)
    sandbox.seed_catalog(3, quantity=10)
    return sandbox


@pytest.mark.parametrize("bucket", BUCKETS)
async def test_over_1000_points_is_refused_on_every_bucket_and_nothing_is_charged(bucket: int) -> None:
    clock = FakeClock()
    sandbox = store(bucket, clock)
    async with running(sandbox) as client:
        response = await gql(client, *COST_1001)
    assert response.status_code == 200
    body = response.json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["message"].startswith(
        "Query cost is 1001, which exceeds the single query max cost limit (1000)."
    )
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] == 1001
    assert error["extensions"]["maxCost"] == 1000
    assert sandbox.bucket.currently_available() == bucket
    assert sandbox.stats.max_cost_exceeded == 1
    assert sandbox.stats.throttled == 0


async def test_the_cap_is_checked_before_the_bucket_so_an_empty_bucket_still_answers_max_cost() -> None:
    clock = FakeClock()
    sandbox = store(2000, clock)
    sandbox.bucket.try_take(1990)
    async with running(sandbox) as client:
        body = (await gql(client, *COST_1001)).json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert sandbox.bucket.currently_available() == 10
    assert sandbox.stats.throttled == 0


@pytest.mark.parametrize("bucket", [1000, 2000, 20000])
async def test_exactly_1000_points_runs_on_a_bucket_that_holds_it(bucket: int) -> None:
    clock = FakeClock()
    sandbox = store(bucket, clock)
    async with running(sandbox) as client:
        body = (await gql(client, *COST_1000)).json()
    assert "errors" not in body
    assert len(body["data"]["products"]["nodes"]) == 2
    assert body["extensions"]["cost"]["requestedQueryCost"] == 1000
    assert sandbox.stats.max_cost_exceeded == 0


async def test_under_the_cap_but_over_the_bucket_is_throttled_for_ever_and_never_runs() -> None:
    clock = FakeClock()
    sandbox = store(500, clock)
    async with running(sandbox) as client:
        first = (await gql(client, *COST_1000)).json()
        clock.now += 3600  # an hour of refills cannot make 500 points hold 1000
        again = (await gql(client, *COST_1000)).json()
    for body in (first, again):
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
        cost = body["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 1000 and cost["actualQueryCost"] is None
        assert cost["throttleStatus"]["maximumAvailable"] == 500
        assert cost["throttleStatus"]["currentlyAvailable"] == 500
    assert sandbox.stats.throttled == 2
    assert sandbox.stats.max_cost_exceeded == 0


async def test_mutations_over_the_cap_apply_nothing() -> None:
    # A mutation field costs 10: 101 of them in one document request 1010 points.
    clock = FakeClock()
    sandbox = store(20000, clock)
    _, item_id = sandbox.variant_ids("SKU-000001")
    fields = "\n".join(
        f"""  set{n}: inventorySetQuantities(input: $input) @idempotent(key: "cap-{n}") {{
    userErrors {{ code }}
  }}"""
        for n in range(101)
    )
    document = f"mutation Many($input: InventorySetQuantitiesInput!) {{\n{fields}\n}}"
    quantities = {
        "name": "available",
        "reason": "correction",
        "quantities": [
            {
                "inventoryItemId": f"gid://shopify/InventoryItem/{item_id}",
                "locationId": f"gid://shopify/Location/{sandbox.location_id}",
                "quantity": 3,
                "changeFromQuantity": None,
            }
        ],
    }
    async with running(sandbox) as client:
        body = (await gql(client, document, {"input": quantities})).json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] == 1010
    assert sandbox.available("SKU-000001") == 10
    assert sandbox.stats.mutations == 0
    assert sandbox.bucket.currently_available() == 20000
