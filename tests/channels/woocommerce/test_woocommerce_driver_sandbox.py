"""The driver over real HTTP on loopback against the WooCommerce sandbox.

Each test serves a fresh `WooCommerceSandbox` with `serve_app` and talks to it through a real
httpx.AsyncClient and a real token bucket, as the engine would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from woocommerce_testkit import KEY, SECRET, make_context

from nexus.channels.woocommerce import WooCommerceDriver, create_driver
from nexus.drivers.dto import NexusInventoryUpdate, PushStatus
from nexus.errors import TerminalChannelError
from nexus.ratelimit import BoundLimiter
from nexus.ratelimit.config import RateLimitConfig
from nexus.sandbox.woocommerce import WooCommerceSandbox
from nexus.web.server import LoopbackServer, serve_app


@dataclass
class Shop:
    sandbox: WooCommerceSandbox
    server: LoopbackServer
    http: httpx.AsyncClient

    def driver(self, *, secret: str = SECRET, key: str = KEY, **settings: Any) -> WooCommerceDriver:
        return create_driver(
            make_context(self.http, base_url=self.server.base_url, key=key, secret=secret, settings=settings)
        )

    def update(self, listing_id: int, sku: str, quantity: int) -> NexusInventoryUpdate:
        product = self.sandbox.store.by_sku_or_raise(sku)
        meta = {"parent_id": str(product.parent_id)} if product.parent_id else {}
        return NexusInventoryUpdate(listing_id, sku, str(product.id), quantity, channel_meta=meta)


@pytest.fixture
def sandbox_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def shop(sandbox_options: dict[str, Any]) -> AsyncIterator[Shop]:
    sandbox = WooCommerceSandbox(consumer_key=KEY, consumer_secret=SECRET, **sandbox_options)
    async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10) as http:
        yield Shop(sandbox, server, http)
    await sandbox.aclose()


def shirts(sandbox: WooCommerceSandbox, name: str = "Shirt", prefix: str = "SHIRT") -> int:
    parent = sandbox.add_variable_product(
        name,
        [
            {"sku": f"{prefix}-{size}", "quantity": 5, "attributes": {"Size": size}}
            for size in ("S", "M", "L")
        ],
    )
    return parent.id


async def test_simple_products_and_variations_in_one_push_each_get_their_own_result(shop: Shop) -> None:
    sandbox = shop.sandbox
    sandbox.seed_catalog(3)
    shirts(sandbox)
    shirts(sandbox, "Hoodie", "HOOD")
    gone = sandbox.add_simple_product("Discontinued", sku="GONE-1")
    sandbox.delete_product(gone.id)
    sandbox.fail_item(
        sandbox.product_id("SKU-000002"), "woocommerce_rest_product_not_created", "Deadlock", 500
    )
    sandbox.fail_item(sandbox.product_id("HOOD-M"), "woocommerce_rest_invalid_stock", "Nope", 400)
    updates = [
        shop.update(1, "SKU-000001", 4),
        shop.update(2, "SHIRT-S", 1),
        shop.update(3, "SKU-000002", 6),  # the store failed on this item: retry
        shop.update(4, "HOOD-M", 2),  # refused for good
        NexusInventoryUpdate(5, "GONE-1", str(gone.id), 3),  # deleted on the store
        shop.update(6, "HOOD-L", 0),
        shop.update(7, "SHIRT-L", 9),
        # a variation listed under the wrong parent is not that parent's variation
        NexusInventoryUpdate(
            8, "SHIRT-M", str(sandbox.product_id("SHIRT-M")), 3, channel_meta={"parent_id": "3"}
        ),
    ]

    results = await shop.driver().push_inventory(updates)

    assert [(r.listing_id, r.status, r.quantity) for r in results] == [
        (1, PushStatus.OK, 4),
        (2, PushStatus.OK, 1),
        (3, PushStatus.RETRY, None),
        (4, PushStatus.TERMINAL, None),
        (5, PushStatus.TERMINAL, None),
        (6, PushStatus.OK, 0),
        (7, PushStatus.OK, 9),
        (8, PushStatus.TERMINAL, None),
    ]
    assert results[4].error == "woocommerce_rest_product_invalid_id: Invalid ID."
    assert results[7].error is not None and "variation_invalid_id" in results[7].error
    assert all(r.remote_updated_at is not None for r in results if r.status is PushStatus.OK)
    levels = sandbox.levels()
    assert (levels["SKU-000001"], levels["SHIRT-S"], levels["SHIRT-L"], levels["HOOD-L"]) == (4, 1, 9, 0)
    assert (levels["SKU-000002"], levels["HOOD-M"], levels["SHIRT-M"]) == (10, 5, 5)
    # products/batch, Shirt's variations/batch, Hoodie's variations/batch, parent "3"'s variations/batch
    assert sandbox.stats.batches == 4


async def test_more_than_100_updates_are_split(shop: Shop) -> None:
    shop.sandbox.seed_catalog(150)
    updates = [shop.update(i, f"SKU-{i:06d}", i % 7) for i in range(1, 151)]

    results = await shop.driver().push_inventory(updates)

    assert all(r.status is PushStatus.OK for r in results)
    assert [r.quantity for r in results] == [i % 7 for i in range(1, 151)]
    assert shop.sandbox.stats.batches == 2 and shop.sandbox.stats.batch_too_large == 0
    assert set(shop.sandbox.stats.set_count_by_sku.values()) == {1}


@pytest.mark.parametrize("sandbox_options", [{"batch_limit": 40}])
async def test_a_store_with_a_lower_batch_limit_is_learned_from_its_413(shop: Shop) -> None:
    shop.sandbox.seed_catalog(100)
    driver = shop.driver()
    updates = [shop.update(i, f"SKU-{i:06d}", 1) for i in range(1, 101)]

    results = await driver.push_inventory(updates)

    assert all(r.status is PushStatus.OK for r in results)
    assert driver.batch_limit == 40
    assert (shop.sandbox.stats.batch_too_large, shop.sandbox.stats.batches) == (1, 3)
    await driver.push_inventory(updates)  # the next push starts at the store's limit
    assert shop.sandbox.stats.batch_too_large == 1


async def test_list_products_pages_by_total_pages_and_reads_variations(shop: Shop) -> None:
    shop.sandbox.seed_catalog(5)
    shirts(shop.sandbox)
    shop.sandbox.add_simple_product("Not tracked", sku="FREE-1", manage_stock=False)
    driver = shop.driver()

    pages = []
    cursor: str | None = None
    while True:
        page = await driver.list_products(cursor, per_page=3)
        pages.append([v.sku for p in page.items for v in p.variants])
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == [
        ["SKU-000001", "SKU-000002", "SKU-000003"],
        ["SKU-000004", "SKU-000005", "SHIRT-S", "SHIRT-M", "SHIRT-L"],
        ["FREE-1"],
    ]
    shirt = (await driver.fetch_product(str(shop.sandbox.product_id("SHIRT-M")))).variants
    assert [(v.sku, v.quantity, v.channel_meta["parent_id"]) for v in shirt] == [
        ("SHIRT-S", 5, str(shop.sandbox.product_id("SHIRT-S") - 1)),
        ("SHIRT-M", 5, str(shop.sandbox.product_id("SHIRT-S") - 1)),
        ("SHIRT-L", 5, str(shop.sandbox.product_id("SHIRT-S") - 1)),
    ]


async def test_wrong_secret_is_a_terminal_configuration_error(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1)
    driver = shop.driver(secret="cs_wrong")

    with pytest.raises(TerminalChannelError, match="woocommerce_rest_authentication_error") as raised:
        await driver.list_products()
    assert raised.value.status == 401
    (result,) = await driver.push_inventory([shop.update(1, "SKU-000001", 3)])
    assert result.status is PushStatus.UNAUTHORIZED and "Consumer secret is invalid" in (result.error or "")
    assert shop.sandbox.levels()["SKU-000001"] == 10
    with pytest.raises(TerminalChannelError, match="woocommerce_rest_cannot_view"):
        await shop.driver(key="ck_unknown").list_products()


async def test_query_string_auth_for_hosts_that_strip_the_authorization_header(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1)
    (result,) = await shop.driver(auth="query").push_inventory([shop.update(1, "SKU-000001", 2)])
    assert result.status is PushStatus.OK


async def test_429_with_retry_after_penalizes_the_bucket(shop: Shop) -> None:
    shop.sandbox.seed_catalog(2)
    shop.sandbox.throttle_next(1, retry_after=30)
    ctx = make_context(shop.http, base_url=shop.server.base_url, limit=RateLimitConfig(100, 25))
    driver = create_driver(ctx)

    results = await driver.push_inventory([shop.update(1, "SKU-000001", 3), shop.update(2, "SKU-000002", 4)])

    assert [(r.status, r.retry_after) for r in results] == [(PushStatus.RETRY, 30.0)] * 2
    assert isinstance(ctx.rate, BoundLimiter)
    # Every worker on this bucket now waits for the host's Retry-After before its next request.
    assert await ctx.rate.bucket.reserve(ctx.rate.key, 1, ctx.rate.limit) > 25
    assert shop.sandbox.levels()["SKU-000001"] == 10


async def test_server_errors_are_retried(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1)
    shop.sandbox.fail_next(1, status=503)
    driver = shop.driver()
    (first,) = await driver.push_inventory([shop.update(1, "SKU-000001", 3)])
    (second,) = await driver.push_inventory([shop.update(1, "SKU-000001", 3)])
    assert (first.status, second.status) == (PushStatus.RETRY, PushStatus.OK)


async def test_read_levels_reads_products_and_variations(shop: Shop) -> None:
    shop.sandbox.seed_catalog(2)
    shirts(shop.sandbox)
    await shop.sandbox.set_available("SHIRT-M", 2)
    updates = [shop.update(1, "SKU-000002", 0), shop.update(2, "SHIRT-M", 0), shop.update(3, "SHIRT-L", 0)]
    assert await shop.driver().read_levels(updates) == {1: 10, 2: 2, 3: 5}
