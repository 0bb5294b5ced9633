"""Driver mapping of Shopify answers to PushResults, over the documented payload fixtures.

A scripted httpx.MockTransport answers by GraphQL operation name. The scenarios here are answers
the sandbox will not produce on request (index-less userErrors, partial application, 5xx); the
end-to-end behaviour runs against the sandbox in test_shopify_driver_sandbox.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from shopify_testkit import load, make_context, mock_client

from nexus.channels.shopify import ShopifyDriver, create_driver
from nexus.channels.shopify.push import ITEM_TERMINAL_CODES
from nexus.drivers.dto import NexusInventoryUpdate, PushStatus
from nexus.errors import ConfigError
from nexus.ratelimit.config import RateLimitConfig

LOCATION = "gid://shopify/Location/24826418"
COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1990, "restoreRate": 100.0},
}


def graphql(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "extensions": {"cost": COST}})


def set_ok(created_at: str = "2026-11-21T10:00:00Z") -> httpx.Response:
    payload = load("inventory_set_quantities_ok.json")
    payload["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]["createdAt"] = created_at
    payload["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"] = []
    return httpx.Response(200, json=payload)


def set_errors(*errors: dict[str, Any], group: dict[str, Any] | None = None) -> httpx.Response:
    return graphql(
        {"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": list(errors)}}
    )


def levels(*items: tuple[str, int]) -> httpx.Response:
    return graphql(
        {
            "nodes": [
                {
                    "id": f"gid://shopify/InventoryItem/{item}",
                    "inventoryLevel": {
                        "quantities": [{"name": "available", "quantity": quantity}],
                        "updatedAt": "2026-11-21T09:59:58Z",
                    },
                }
                for item, quantity in items
            ]
        }
    )


class Script:
    """Answers each operation from a queue and keeps every request body it saw."""

    def __init__(self, **answers: list[httpx.Response]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        return self.answers[body["operationName"]].pop(0)

    def sent(self, operation: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["operationName"] == operation]


def updates(*rows: tuple[int, str, int, int | None]) -> list[NexusInventoryUpdate]:
    return [
        NexusInventoryUpdate(
            listing_id=lid,
            sku=f"SKU-{lid}",
            remote_id=f"9{lid}",
            quantity=qty,
            change_from=cf,
            inventory_id=item,
        )
        for lid, item, qty, cf in rows
    ]


def driver_for(handler: Callable[[httpx.Request], httpx.Response], **settings: Any) -> ShopifyDriver:
    return create_driver(make_context(mock_client(handler), settings={"location_id": 24826418, **settings}))


async def test_success_maps_every_update_with_the_group_timestamp() -> None:
    script = Script(NexusInventorySet=[set_ok()])
    driver = driver_for(script)

    results = await driver.push_inventory(updates((1, "11", 5, 3), (2, "12", 0, None)))

    assert [r.status for r in results] == [PushStatus.OK, PushStatus.OK]
    assert [(r.listing_id, r.quantity) for r in results] == [(1, 5), (2, 0)]
    assert results[0].remote_updated_at == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    sent = script.sent("NexusInventorySet")[0]["variables"]
    assert sent["input"]["name"] == "available"
    assert sent["input"]["reason"] == "correction"
    assert sent["input"]["referenceDocumentUri"].startswith("gid://nexus/SyncJob/")
    assert sent["input"]["quantities"] == [
        {
            "inventoryItemId": "gid://shopify/InventoryItem/11",
            "locationId": LOCATION,
            "quantity": 5,
            "changeFromQuantity": 3,
        },
        # Explicit null, never a missing key (a missing key is an error from 2026-04).
        {
            "inventoryItemId": "gid://shopify/InventoryItem/12",
            "locationId": LOCATION,
            "quantity": 0,
            "changeFromQuantity": None,
        },
    ]
    assert "@idempotent(key: $idempotencyKey)" in script.sent("NexusInventorySet")[0]["query"]


async def test_quantity_after_change_is_the_acknowledged_quantity() -> None:
    script = Script(NexusInventorySet=[httpx.Response(200, json=load("inventory_set_quantities_ok.json"))])
    driver = driver_for(script)
    [result] = await driver.push_inventory(updates((1, "30322695", 12, 10)))
    assert result.quantity == 12
    assert result.status is PushStatus.OK


async def test_user_errors_fixture_stale_and_invalid_then_innocent_resent_once() -> None:
    rejected = httpx.Response(200, json=load("inventory_set_quantities_user_errors.json"))
    script = Script(NexusInventorySet=[rejected, set_ok()], NexusInventoryLevels=[levels(("12", 7))])
    driver = driver_for(script)

    results = await driver.push_inventory(updates((1, "11", 5, 4), (2, "12", 9, 8), (3, "13", 1, None)))

    ok, stale, terminal = results
    assert ok.status is PushStatus.OK and ok.quantity == 5
    assert stale.status is PushStatus.STALE and stale.quantity == 7
    assert stale.remote_updated_at == datetime(2026, 11, 21, 9, 59, 58, tzinfo=UTC)
    assert terminal.status is PushStatus.TERMINAL
    assert terminal.error == "INVALID_INVENTORY_ITEM"
    assert terminal.detail["userError"]["field"] == ["input", "quantities", "2", "inventoryItemId"]
    first, second = script.sent("NexusInventorySet")
    assert [q["inventoryItemId"] for q in second["variables"]["input"]["quantities"]] == [
        "gid://shopify/InventoryItem/11"
    ]
    assert first["variables"]["idempotencyKey"] != second["variables"]["idempotencyKey"]
    assert script.sent("NexusInventoryLevels")[0]["variables"] == {
        "ids": ["gid://shopify/InventoryItem/12"],
        "locationId": LOCATION,
    }


async def test_second_rejection_does_not_loop_innocent_items_are_retried() -> None:
    stale_0 = {
        "code": "CHANGE_FROM_QUANTITY_STALE",
        "field": ["input", "quantities", "0", "changeFromQuantity"],
        "message": "stale",
    }
    script = Script(
        NexusInventorySet=[set_errors(stale_0), set_errors(stale_0)],
        NexusInventoryLevels=[levels(("11", 1)), levels(("12", 2))],
    )
    driver = driver_for(script)

    results = await driver.push_inventory(updates((1, "11", 5, 4), (2, "12", 9, 8), (3, "13", 1, 0)))

    assert [r.status for r in results] == [PushStatus.STALE, PushStatus.STALE, PushStatus.RETRY]
    assert [r.quantity for r in results[:2]] == [1, 2]
    assert len(script.sent("NexusInventorySet")) == 2


async def test_stale_error_without_index_is_pinned_by_reading_levels() -> None:
    script = Script(
        NexusInventorySet=[
            set_errors({"code": "CHANGE_FROM_QUANTITY_STALE", "field": None, "message": "stale"}),
            set_ok(),
        ],
        NexusInventoryLevels=[levels(("11", 4), ("12", 3)), levels(("12", 3))],
    )
    driver = driver_for(script)

    results = await driver.push_inventory(updates((1, "11", 5, 4), (2, "12", 9, 8), (3, "13", 1, None)))

    assert [r.status for r in results] == [PushStatus.OK, PushStatus.STALE, PushStatus.OK]
    assert results[1].quantity == 3
    # Only items with a compare value can be stale, so only they were read.
    assert script.sent("NexusInventoryLevels")[0]["variables"]["ids"] == [
        "gid://shopify/InventoryItem/11",
        "gid://shopify/InventoryItem/12",
    ]


@pytest.mark.parametrize("code", sorted(ITEM_TERMINAL_CODES))
async def test_item_error_codes_are_terminal_for_that_item_only(code: str) -> None:
    error = {"code": code, "field": ["input", "quantities", "1", "quantity"], "message": code}
    script = Script(NexusInventorySet=[set_errors(error), set_ok()])
    results = await driver_for(script).push_inventory(updates((1, "11", 5, None), (2, "12", -1, None)))
    assert [r.status for r in results] == [PushStatus.OK, PushStatus.TERMINAL]
    assert results[1].detail["userError"]["code"] == code


async def test_request_level_error_fails_every_item_terminally() -> None:
    error = {"code": "INVALID_REASON", "field": ["input", "reason"], "message": "bad reason"}
    script = Script(NexusInventorySet=[set_errors(error)])
    results = await driver_for(script, reason="made-up").push_inventory(
        updates((1, "11", 5, None), (2, "12", 1, None))
    )
    assert {r.status for r in results} == {PushStatus.TERMINAL}
    assert results[0].detail["userErrors"][0]["code"] == "INVALID_REASON"
    assert len(script.sent("NexusInventorySet")) == 1


async def test_unexplained_user_error_retries_everything_later() -> None:
    script = Script(
        NexusInventorySet=[
            set_errors({"code": "IDEMPOTENCY_CONCURRENT_REQUEST", "field": None, "message": "busy"})
        ]
    )
    results = await driver_for(script).push_inventory(updates((1, "11", 5, None), (2, "12", 1, None)))
    assert {r.status for r in results} == {PushStatus.RETRY}
    assert len(script.sent("NexusInventorySet")) == 1


async def test_partial_application_is_reported_as_applied() -> None:
    group = copy.deepcopy(
        load("inventory_set_quantities_ok.json")["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]
    )
    group["changes"] = []
    error = {
        "code": "INVALID_INVENTORY_ITEM",
        "field": ["input", "quantities", "1", "inventoryItemId"],
        "message": "x",
    }
    script = Script(NexusInventorySet=[set_errors(error, group=group)])
    results = await driver_for(script).push_inventory(updates((1, "11", 5, None), (2, "12", 1, None)))
    assert [r.status for r in results] == [PushStatus.OK, PushStatus.TERMINAL]
    assert len(script.sent("NexusInventorySet")) == 1  # nothing re-sent: the good item is already applied


async def test_server_error_becomes_retry_with_retry_after_for_all() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, headers={"Retry-After": "12"}, text="Bad Gateway")

    results = await driver_for(handler).push_inventory(updates((1, "11", 5, None), (2, "12", 1, None)))
    assert {r.status for r in results} == {PushStatus.RETRY}
    assert {r.retry_after for r in results} == {12.0}


async def test_timeout_becomes_retry() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    [result] = await driver_for(handler).push_inventory(updates((1, "11", 5, None)))
    assert result.status is PushStatus.RETRY


async def test_stale_level_read_failure_becomes_retry() -> None:
    stale = {
        "code": "CHANGE_FROM_QUANTITY_STALE",
        "field": ["input", "quantities", "0", "changeFromQuantity"],
        "message": "s",
    }
    script = Script(
        NexusInventorySet=[set_errors(stale)], NexusInventoryLevels=[httpx.Response(503, text="busy")]
    )
    [result] = await driver_for(script).push_inventory(updates((1, "11", 5, 4)))
    assert result.status is PushStatus.RETRY


async def test_updates_without_inventory_item_are_terminal_without_a_request() -> None:
    script = Script()
    bad = NexusInventoryUpdate(listing_id=1, sku="S", remote_id="5", quantity=1, inventory_id=None)
    [result] = await driver_for(script).push_inventory([bad])
    assert result.status is PushStatus.TERMINAL
    assert script.requests == []


async def test_duplicate_inventory_item_in_one_push_is_refused() -> None:
    script = Script(NexusInventorySet=[set_ok()])
    results = await driver_for(script).push_inventory(updates((1, "11", 5, None), (2, "11", 6, None)))
    assert [r.status for r in results] == [PushStatus.OK, PushStatus.TERMINAL]


async def test_more_than_250_updates_go_out_in_chunks() -> None:
    script = Script(NexusInventorySet=[set_ok(), set_ok()])
    rows = [(i, str(1000 + i), 1, None) for i in range(1, 301)]
    results = await driver_for(script).push_inventory(updates(*rows))
    assert len(results) == 300 and {r.status for r in results} == {PushStatus.OK}
    assert [len(r["variables"]["input"]["quantities"]) for r in script.sent("NexusInventorySet")] == [250, 50]
    assert [r.listing_id for r in results] == list(range(1, 301))


async def test_location_is_discovered_once_and_cached() -> None:
    script = Script(
        NexusLocations=[
            graphql(
                {
                    "locations": {
                        "nodes": [{"id": "gid://shopify/Location/77", "name": "Shop", "isActive": True}]
                    }
                }
            )
        ],
        NexusInventorySet=[set_ok(), set_ok()],
    )
    driver = create_driver(make_context(mock_client(script)))
    await driver.push_inventory(updates((1, "11", 5, None)))
    await driver.push_inventory(updates((1, "11", 6, None)))
    assert len(script.sent("NexusLocations")) == 1
    assert driver.location_id == "77"
    assert (
        script.sent("NexusInventorySet")[1]["variables"]["input"]["quantities"][0]["locationId"]
        == "gid://shopify/Location/77"
    )


async def test_bad_credentials_during_location_discovery_fail_terminally() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
        )

    driver = create_driver(make_context(mock_client(handler)))
    results = await driver.push_inventory(updates((1, "11", 5, None), (2, "12", 5, None)))
    assert {r.status for r in results} == {PushStatus.UNAUTHORIZED}
    assert results[0].detail["status"] == 401 and "response" in results[0].detail


async def test_product_page_size_respects_the_query_cost_limit() -> None:
    script = Script(NexusProducts=[httpx.Response(200, json=load("graphql_products_page.json"))])
    driver = driver_for(script)
    page = await driver.list_products(per_page=250)
    sent = script.sent("NexusProducts")[0]
    assert sent["variables"] == {"first": 4, "after": None}  # 4 x (3 + 100 x 2) + 3 <= 1000
    assert "variants(first: 100)" in sent["query"]
    assert [p.remote_id for p in page.items] == ["20995642", "108828309"]
    assert page.next_cursor == load("graphql_products_page.json")["data"]["products"]["pageInfo"]["endCursor"]


async def test_fewer_variants_per_product_allow_bigger_pages() -> None:
    script = Script(NexusProducts=[httpx.Response(200, json=load("graphql_products_page.json"))])
    await driver_for(script, variants_per_product=10).list_products(per_page=250)
    assert script.sent("NexusProducts")[0]["variables"]["first"] == 43


async def test_fetch_product_by_numeric_id() -> None:
    script = Script(NexusProduct=[httpx.Response(200, json=load("graphql_product.json"))])
    product = await driver_for(script).fetch_product("108828309")
    assert product.title == "Draft"
    assert script.sent("NexusProduct")[0]["variables"] == {"id": "gid://shopify/Product/108828309"}


def test_capabilities_and_rate_limit_overrides() -> None:
    driver = driver_for(lambda request: httpx.Response(500))
    assert driver.capabilities.max_batch_size == 250
    assert driver.capabilities.compare_and_set is True
    assert driver.capabilities.reads_levels
    assert driver.rate_limit_config() == RateLimitConfig(2000, 100, cost_per_push=10)
    custom = driver_for(lambda request: httpx.Response(500), capacity=1000, refill_per_second=50)
    assert custom.rate_limit_config() == RateLimitConfig(1000, 50, cost_per_push=10)


@pytest.mark.parametrize(
    ("base_url", "settings"),
    [
        (None, {}),
        ("nexus-test.myshopify.com", {}),
        ("https://x.myshopify.com", {"location_id": "warehouse"}),
        ("https://x.myshopify.com", {"capacity": 0}),
        ("https://x.myshopify.com", {"max_throttle_retries": -1}),
        ("https://x.myshopify.com", {"api_version": ""}),
    ],
)
def test_bad_configuration_is_a_config_error(base_url: str | None, settings: dict[str, Any]) -> None:
    ctx = make_context(mock_client(lambda request: httpx.Response(500)), settings=settings)
    ctx = type(ctx)(ctx.name, ctx.driver, base_url, ctx.credentials, ctx.settings, ctx.http, ctx.rate)
    with pytest.raises(ConfigError):
        create_driver(ctx)
