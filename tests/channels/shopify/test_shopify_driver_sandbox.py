"""The driver over real HTTP on loopback against the Shopify sandbox.

Each test serves a fresh `ShopifySandbox` with `serve_app` and talks to it through a real
httpx.AsyncClient and a real token bucket, exactly as the engine would.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from shopify_testkit import SECRET, TOKEN, make_context
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus.channels.shopify import ShopifyDriver, create_driver, webhooks
from nexus.drivers.contract import ObservedLevel, SaleEvent, WebhookRequest
from nexus.drivers.dto import NexusInventoryUpdate, PushStatus
from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig
from nexus.sandbox.shopify import ShopifySandbox
from nexus.web.server import LoopbackServer, serve_app


@dataclass
class Shop:
    sandbox: ShopifySandbox
    server: LoopbackServer
    http: httpx.AsyncClient

    def driver(
        self, *, token: str = TOKEN, limit: RateLimitConfig | None = None, **settings: Any
    ) -> ShopifyDriver:
        ctx = make_context(
            self.http, base_url=self.server.base_url, token=token, settings=settings, limit=limit
        )
        return create_driver(ctx)

    def updates(
        self, skus: list[str], quantity: Callable[[int], int], change_from: int | None
    ) -> list[NexusInventoryUpdate]:
        rows = []
        for n, sku in enumerate(skus, start=1):
            variant_id, item_id = self.sandbox.variant_ids(sku)
            rows.append(
                NexusInventoryUpdate(
                    listing_id=n,
                    sku=sku,
                    remote_id=str(variant_id),
                    inventory_id=str(item_id),
                    quantity=quantity(n),
                    change_from=change_from,
                )
            )
        return rows


def sku(i: int) -> str:
    return f"SKU-{i:06d}"


@pytest.fixture
def sandbox_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def shop(sandbox_options: dict[str, Any]) -> AsyncIterator[Shop]:
    sandbox = ShopifySandbox(access_token=TOKEN, webhook_secret=SECRET, **sandbox_options)
    async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10) as http:
        yield Shop(sandbox, server, http)
    await sandbox.aclose()


async def test_250_items_in_one_request(shop: Shop) -> None:
    shop.sandbox.seed_catalog(250, quantity=10)
    skus = [sku(i) for i in range(1, 251)]
    driver = shop.driver(location_id=shop.sandbox.location_id)

    results = await driver.push_inventory(shop.updates(skus, lambda n: 100 + n, change_from=10))

    assert [r.listing_id for r in results] == list(range(1, 251))
    assert {r.status for r in results} == {PushStatus.OK}
    assert [r.quantity for r in results] == [100 + n for n in range(1, 251)]
    assert all(r.remote_updated_at is not None for r in results)
    assert [shop.sandbox.available(s) for s in skus] == [100 + n for n in range(1, 251)]
    assert shop.sandbox.stats.mutations == 1
    assert shop.sandbox.stats.quantities_set == 250


async def test_stale_item_gets_current_level_and_the_others_are_applied(shop: Shop) -> None:
    shop.sandbox.seed_catalog(5, quantity=10)
    await shop.sandbox.simulate_sale(sku(3), 2)  # the channel sold two: 10 -> 8 behind Nexus' back
    driver = shop.driver(location_id=shop.sandbox.location_id)

    results = await driver.push_inventory(
        shop.updates([sku(i) for i in range(1, 6)], lambda n: 20, change_from=10)
    )

    assert [r.status for r in results] == [
        PushStatus.OK,
        PushStatus.OK,
        PushStatus.STALE,
        PushStatus.OK,
        PushStatus.OK,
    ]
    stale = results[2]
    assert stale.quantity == 8
    assert stale.remote_updated_at is not None
    assert [shop.sandbox.available(sku(i)) for i in range(1, 6)] == [20, 20, 8, 20, 20]
    # One rejected request, one re-send of the four innocent items.
    assert shop.sandbox.stats.mutations == 2
    assert shop.sandbox.stats.user_errors == 1


async def test_stale_without_field_path_is_found_by_reading_levels(shop: Shop) -> None:
    # A second sandbox whose stale errors carry `field: null`, as reported from live 2026-07 stores.
    sandbox = ShopifySandbox(access_token=TOKEN, webhook_secret=SECRET, stale_field_path=False)
    sandbox.seed_catalog(3, quantity=10)
    await sandbox.simulate_sale(sku(2), 1)
    async with serve_app(sandbox.app) as server:
        other = Shop(sandbox, server, shop.http)
        results = await other.driver(location_id=sandbox.location_id).push_inventory(
            other.updates([sku(i) for i in range(1, 4)], lambda n: 5, change_from=10)
        )
    await sandbox.aclose()
    assert [r.status for r in results] == [PushStatus.OK, PushStatus.STALE, PushStatus.OK]
    assert results[1].quantity == 9
    assert sandbox.levels() == {sku(1): 5, sku(2): 9, sku(3): 5}


async def test_unknown_inventory_item_is_terminal_and_does_not_block_the_rest(shop: Shop) -> None:
    shop.sandbox.seed_catalog(2, quantity=10)
    driver = shop.driver(location_id=shop.sandbox.location_id)
    rows = shop.updates([sku(1), sku(2)], lambda n: 3, change_from=None)
    ghost = NexusInventoryUpdate(
        listing_id=99, sku="GHOST", remote_id="1", inventory_id="987654321", quantity=1
    )

    results = await driver.push_inventory([rows[0], ghost, rows[1]])

    assert [r.status for r in results] == [PushStatus.OK, PushStatus.TERMINAL, PushStatus.OK]
    assert results[1].error == "INVALID_INVENTORY_ITEM"
    assert results[1].detail["userError"]["field"] == ["input", "quantities", "1", "inventoryItemId"]
    assert shop.sandbox.levels() == {sku(1): 3, sku(2): 3}


async def test_negative_quantity_is_terminal(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1, quantity=10)
    driver = shop.driver(location_id=shop.sandbox.location_id)
    [result] = await driver.push_inventory(shop.updates([sku(1)], lambda n: -1, change_from=10))
    assert result.status is PushStatus.TERMINAL
    assert result.error == "INVALID_QUANTITY_NEGATIVE"
    assert shop.sandbox.available(sku(1)) == 10


def spend_elsewhere(sandbox: ShopifySandbox) -> None:
    """Another client of the same app and store (a worker without a shared bucket) empties the
    store's bucket: a throttle that Nexus's own bucket cannot see coming."""
    sandbox.bucket.try_take(sandbox.bucket.currently_available())


@pytest.mark.parametrize("status", [200, 429])
async def test_throttled_requests_wait_and_succeed(status: int) -> None:
    # A bucket of 25 points at 10/s, emptied by someone else as the last two pushes' first
    # requests leave: after Nexus's own bucket has let them go, so that no wait of its own
    # (a margin widened by slow round trips on a busy machine) can avoid the throttle.
    sandbox = ShopifySandbox(
        access_token=TOKEN,
        webhook_secret=SECRET,
        maximum_available=25,
        restore_rate=10,
        throttled_status=status,
    )
    sandbox.seed_catalog(4, quantity=10)
    spend_before_next_request = False

    async def as_a_request_leaves(request: httpx.Request) -> None:
        nonlocal spend_before_next_request
        if spend_before_next_request:
            spend_before_next_request = False
            spend_elsewhere(sandbox)

    hooks = {"request": [as_a_request_leaves]}
    async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10, event_hooks=hooks) as http:
        shop = Shop(sandbox, server, http)
        driver = shop.driver(location_id=sandbox.location_id)
        results = []
        for i in range(1, 5):
            spend_before_next_request = i >= 3
            results += await driver.push_inventory(shop.updates([sku(i)], lambda n: 1, change_from=None))
    await sandbox.aclose()

    assert {r.status for r in results} == {PushStatus.OK}
    assert sandbox.stats.throttled >= 2
    assert driver.client.throttled_responses == sandbox.stats.throttled
    assert sandbox.levels() == {sku(i): 1 for i in range(1, 5)}
    assert sandbox.stats.mutations == 4  # each throttled request ran exactly once in the end


async def test_the_bucket_learns_the_stores_limits_and_paces_instead_of_being_throttled() -> None:
    # The driver's default bucket (2000 points) is far larger than this store's (25 at 50/s):
    # after the first answer it adopts the store's figures, so back-to-back pushes wait
    # instead of being THROTTLED.
    sandbox = ShopifySandbox(access_token=TOKEN, webhook_secret=SECRET, maximum_available=25, restore_rate=50)
    sandbox.seed_catalog(6, quantity=10)
    async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10) as http:
        shop = Shop(sandbox, server, http)
        driver = shop.driver(location_id=sandbox.location_id)
        for i in range(1, 7):
            [result] = await driver.push_inventory(shop.updates([sku(i)], lambda n: 1, change_from=None))
            assert result.status is PushStatus.OK
    await sandbox.aclose()

    assert sandbox.stats.throttled == 0
    assert sandbox.stats.mutations == 6


async def test_throttling_beyond_the_retry_budget_becomes_retry_with_retry_after() -> None:
    # 15 points refilling at 1/s: the second mutation would need a 5 s wait; no retries allowed.
    sandbox = ShopifySandbox(access_token=TOKEN, webhook_secret=SECRET, maximum_available=15, restore_rate=1)
    sandbox.seed_catalog(2, quantity=10)
    async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10) as http:
        shop = Shop(sandbox, server, http)
        driver = shop.driver(location_id=sandbox.location_id, max_throttle_retries=0)
        [first] = await driver.push_inventory(shop.updates([sku(1)], lambda n: 1, change_from=None))
        spend_elsewhere(sandbox)
        [second] = await driver.push_inventory(shop.updates([sku(2)], lambda n: 1, change_from=None))
    await sandbox.aclose()

    assert first.status is PushStatus.OK
    assert second.status is PushStatus.RETRY
    assert second.retry_after is not None and second.retry_after > 0
    assert sandbox.available(sku(2)) == 10


async def test_bad_token_is_terminal_for_every_update(shop: Shop) -> None:
    shop.sandbox.seed_catalog(3, quantity=10)
    driver = shop.driver(token="shpat_wrong", location_id=shop.sandbox.location_id)

    results = await driver.push_inventory(
        shop.updates([sku(i) for i in range(1, 4)], lambda n: 1, change_from=10)
    )

    assert {r.status for r in results} == {PushStatus.UNAUTHORIZED}  # disconnects the channel
    # PushResult.from_error: the status, and what Shopify answered (for the dead letter)
    assert all(r.detail["status"] == 401 and "Invalid API key" in str(r.detail["response"]) for r in results)
    assert all("Invalid API key or access token" in (r.error or "") for r in results)


async def test_unknown_api_version_is_terminal(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1)
    driver = shop.driver(api_version="2026-13", location_id=shop.sandbox.location_id)
    [result] = await driver.push_inventory(shop.updates([sku(1)], lambda n: 1, change_from=None))
    assert result.status is PushStatus.TERMINAL
    assert result.detail == {"status": 404, "response": {"errors": "Not Found"}}


async def test_location_is_discovered_from_the_store(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1, quantity=10)
    driver = shop.driver()  # no location_id setting

    [result] = await driver.push_inventory(shop.updates([sku(1)], lambda n: 4, change_from=10))

    assert result.status is PushStatus.OK
    assert driver.location_id == str(shop.sandbox.location_id)
    assert shop.sandbox.available(sku(1)) == 4


async def test_products_are_paged_with_cursors(shop: Shop) -> None:
    shop.sandbox.seed_catalog(10, quantity=7)
    # Each page requests ~600 points; without refunds (ChannelRateLimiter.refund) a
    # 2000-point local bucket would make this test wait for refills it does not care about.
    driver = shop.driver(limit=RateLimitConfig(100_000, 100_000, 10))

    pages = []
    cursor: str | None = None
    while True:
        page = await driver.list_products(cursor, per_page=3)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break

    assert [len(p.items) for p in pages] == [3, 3, 3, 1]
    products = [p for page in pages for p in page.items]
    assert [p.local_sku for p in products] == [sku(i) for i in range(1, 11)]
    first = products[0]
    variant_id, item_id = shop.sandbox.variant_ids(sku(1))
    assert first.variants[0].remote_id == str(variant_id)
    assert first.variants[0].inventory_id == str(item_id)
    assert first.variants[0].quantity == 7
    assert first.barcode is not None


async def test_large_page_request_stays_under_the_query_cost_limit(shop: Shop) -> None:
    shop.sandbox.seed_catalog(6)
    page = await shop.driver().list_products(per_page=250)
    assert len(page.items) == 4  # the most that fits under 1000 points with variants(first: 100)
    assert page.next_cursor is not None
    assert shop.sandbox.stats.max_cost_exceeded == 0


async def test_fetch_product_with_several_variants(shop: Shop) -> None:
    created = shop.sandbox.add_product(
        "T-shirt",
        variants=[
            {"sku": "TEE-S", "barcode": "2000000000015", "price": "19.90", "quantity": 4},
            {"sku": "TEE-M", "barcode": None, "price": "19.90", "quantity": 0},
        ],
    )
    product = await shop.driver().fetch_product(str(created["id"]))
    assert product.title == "T-shirt"
    assert [v.sku for v in product.variants] == ["TEE-S", "TEE-M"]
    assert [v.quantity for v in product.variants] == [4, 0]
    assert product.variants[1].barcode is None
    assert product.quantity_available == 4


async def test_sandbox_webhooks_verify_and_parse(shop: Shop) -> None:
    received: list[WebhookRequest] = []

    async def receive(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        received.append(WebhookRequest("shopify-us", headers, await request.body(), datetime.now(UTC)))
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/hooks", receive, methods=["POST"])])
    shop.sandbox.seed_catalog(1, quantity=10)
    driver = shop.driver(location_id=shop.sandbox.location_id)
    async with serve_app(receiver) as hooks:
        for topic in (webhooks.TOPIC_ORDERS_CREATE, webhooks.TOPIC_INVENTORY_LEVELS_UPDATE):
            shop.sandbox.subscribe(topic, f"{hooks.base_url}/hooks")
        await shop.sandbox.simulate_sale(sku(1), 3)
        await asyncio.wait_for(shop.sandbox.drain_webhooks(), timeout=10)

    events = []
    for request in received:
        await driver.verify_webhook(request)
        meta = driver.describe_webhook(request)
        assert meta.delivery_id and meta.event_id
        assert request.header("x-shopify-triggered-at")  # sent as Shopify sends it
        events += driver.parse_webhook(request)
    variant_id, item_id = shop.sandbox.variant_ids(sku(1))
    sales = [e for e in events if isinstance(e, SaleEvent)]
    levels = [e for e in events if isinstance(e, ObservedLevel)]
    assert [(s.listing.remote_id, s.listing.remote_sku, s.quantity) for s in sales] == [
        (str(variant_id), sku(1), 3)
    ]
    assert [(lv.listing.inventory_id, lv.quantity) for lv in levels] == [(str(item_id), 7)]


@pytest.mark.parametrize("sandbox_options", [{"latency_ms": 600}])
async def test_a_slow_store_widens_the_margin_kept_for_requests_in_flight(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1, quantity=10)
    # The limiter a channel's default configuration gives it: 0.25 s of the refill kept unused.
    rate = BoundLimiter(
        InProcessTokenBucket(), "shopify-us:graphql", RateLimitConfig(2000, 100, 10), headroom_seconds=0.25
    )
    ctx = make_context(
        shop.http, base_url=shop.server.base_url, settings={"location_id": shop.sandbox.location_id}
    )
    driver = create_driver(dataclasses.replace(ctx, rate=rate))
    before = rate.margin

    results = await driver.push_inventory(shop.updates([sku(1)], lambda n: 7, change_from=10))

    assert [r.status for r in results] == [PushStatus.OK]
    # The answer took at least the store's 600 ms: 0.6 s of the 100 points/s refill stay unspent.
    assert before == pytest.approx(25)
    assert rate.margin >= 60
    assert rate.effective_limit.capacity == pytest.approx(2000 - rate.margin)
