"""The Amazon driver over real HTTP on loopback against the Amazon sandbox.

Each test serves a fresh `AmazonSandbox` and talks to it through a real httpx.AsyncClient and
real in-process token buckets, one per SP-API operation, as the engine builds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from amazon_testkit import make_context, make_driver

from nexus.channels.amazon import AmazonDriver
from nexus.drivers.dto import NexusInventoryUpdate, PushStatus
from nexus.errors import ConfigError
from nexus.sandbox.amazon import AmazonSandbox
from nexus.sandbox.barcodes import ean13
from nexus.web.server import LoopbackServer, serve_app


@dataclass
class Account:
    sandbox: AmazonSandbox
    server: LoopbackServer
    http: httpx.AsyncClient

    def driver(self, **settings: Any) -> AmazonDriver:
        return make_driver(self.http, self.sandbox, self.server.base_url, **settings)


async def serve(**knobs: Any) -> AsyncIterator[Account]:
    sandbox = AmazonSandbox(feed_processing_seconds=0.04, **knobs)
    async with (
        serve_app(sandbox.app) as server,
        httpx.AsyncClient(trust_env=False, timeout=10) as http,
    ):
        yield Account(sandbox, server, http)
    await sandbox.aclose()


@pytest.fixture
async def account() -> AsyncIterator[Account]:
    async for value in serve():
        yield value


def update(
    listing_id: int, sku: str, quantity: int, product_type: str | None = "HOME"
) -> NexusInventoryUpdate:
    meta = {"product_type": product_type} if product_type else {}
    return NexusInventoryUpdate(
        listing_id=listing_id, sku=sku, remote_id=sku, quantity=quantity, channel_meta=meta
    )


# -- LWA --------------------------------------------------------------------------------------


async def test_concurrent_calls_share_one_token_request(account: Account) -> None:
    account.sandbox.seed_catalog(3)
    driver = account.driver()
    tokens = await asyncio.gather(*(driver.tokens.get() for _ in range(20)))
    products = await asyncio.gather(*(driver.fetch_product(f"SKU-00000{i}") for i in (1, 2, 3)))
    assert len(set(tokens)) == 1
    assert account.sandbox.stats.token_requests == 1
    assert [p.local_sku for p in products] == ["SKU-000001", "SKU-000002", "SKU-000003"]


async def test_token_is_refreshed_before_it_expires(account: Account) -> None:
    account.sandbox.seed_catalog(1)
    now = [0.0]
    ctx = make_context(account.http, account.sandbox, account.server.base_url)
    driver = AmazonDriver(ctx, clock=lambda: now[0])
    await driver.fetch_product("SKU-000001")
    now[0] = 3000.0  # within the hour: the cached token is used
    await driver.fetch_product("SKU-000001")
    assert account.sandbox.stats.token_requests == 1
    now[0] = 3550.0  # within a minute of expiry: refreshed first
    await driver.fetch_product("SKU-000001")
    assert account.sandbox.stats.token_requests == 2


async def test_expired_token_refused_by_amazon_is_refreshed_once_and_retried(account: Account) -> None:
    account.sandbox.seed_catalog(1)
    driver = account.driver()
    await driver.fetch_product("SKU-000001")
    account.sandbox.expire_tokens()
    results = await driver.push_inventory([update(1, "SKU-000001", 4), update(2, "SKU-000001x", 1)])
    assert results[0].status is PushStatus.OK
    assert account.sandbox.available("SKU-000001") == 4
    assert account.sandbox.stats.token_requests == 2


async def test_wrong_client_secret_is_terminal() -> None:
    async for acc in serve():
        acc.sandbox.seed_catalog(1)
        ctx = make_context(acc.http, acc.sandbox, acc.server.base_url)
        driver = AmazonDriver(replace(ctx, credentials={**ctx.credentials, "client_secret": "wrong"}))
        (result,) = await driver.push_inventory([update(1, "SKU-000001", 3)])
        assert result.status is PushStatus.UNAUTHORIZED  # the channel is disconnected, no dead letter
        assert "invalid_client" in (result.error or "")


# -- patch path ---------------------------------------------------------------------------------


async def test_small_push_patches_each_sku(account: Account) -> None:
    account.sandbox.seed_catalog(3)
    account.sandbox.refuse_updates("SKU-000002")
    driver = account.driver()
    results = await driver.push_inventory(
        [
            update(1, "SKU-000001", 7),
            update(2, "SKU-000002", 8),
            update(3, "SKU-000404", 9),
            update(4, "SKU-000003", 0),
        ]
    )
    assert [r.status for r in results] == [
        PushStatus.OK,
        PushStatus.TERMINAL,
        PushStatus.TERMINAL,
        PushStatus.OK,
    ]
    assert [r.listing_id for r in results] == [1, 2, 3, 4]
    assert results[0].quantity == 7
    assert results[1].detail["issues"][0]["code"] == "90220"
    assert results[2].detail["status"] == 404
    assert account.sandbox.levels() == {"SKU-000001": 7, "SKU-000002": 10, "SKU-000003": 0}
    assert account.sandbox.stats.feeds_created == 0


async def test_same_sku_twice_in_one_push_is_refused(account: Account) -> None:
    account.sandbox.seed_catalog(1)
    results = await account.driver().push_inventory([update(1, "SKU-000001", 2), update(2, "SKU-000001", 3)])
    assert [r.status for r in results] == [PushStatus.OK, PushStatus.TERMINAL]
    assert account.sandbox.available("SKU-000001") == 2


async def test_quota_exceeded_penalizes_the_bucket_and_retries() -> None:
    # The account's real plan is tighter than the documented default the driver starts from.
    async for acc in serve(usage_plans={"patchListingsItem": (20.0, 1.0)}):
        acc.sandbox.seed_catalog(4)
        driver = acc.driver(max_throttle_retries=10)
        results = await driver.push_inventory([update(i, f"SKU-00000{i}", i) for i in range(1, 5)])
        assert all(r.status is PushStatus.OK for r in results)
        assert acc.sandbox.stats.throttled >= 1
        assert driver.client.throttled_responses == acc.sandbox.stats.throttled
        assert acc.sandbox.levels() == {f"SKU-00000{i}": i for i in range(1, 5)}


async def test_quota_exceeded_beyond_the_retries_is_a_retry_result() -> None:
    async for acc in serve(usage_plans={"patchListingsItem": (0.01, 1.0)}):
        acc.sandbox.seed_catalog(2)
        driver = acc.driver(max_throttle_retries=0)
        results = await driver.push_inventory([update(1, "SKU-000001", 1), update(2, "SKU-000002", 2)])
        assert sorted(r.status.value for r in results) == ["ok", "retry"]
        (retry,) = [r for r in results if r.status is PushStatus.RETRY]
        # Without Retry-After, one token of the reported rate (x-amzn-RateLimit-Limit: 0.01).
        assert retry.retry_after == pytest.approx(100.0)


# -- feed path ----------------------------------------------------------------------------------


async def test_large_push_goes_through_a_feed_and_maps_issues_back(account: Account) -> None:
    account.sandbox.seed_catalog(6)
    account.sandbox.refuse_updates("SKU-000003")
    driver = account.driver(feed_threshold=5)
    updates = [update(i, f"SKU-00000{i}", 20 + i) for i in range(1, 7)]
    updates.append(update(7, "SKU-999999", 1))
    results = await driver.push_inventory(updates)
    statuses = [r.status for r in results]
    assert statuses == [PushStatus.OK] * 2 + [PushStatus.TERMINAL] + [PushStatus.OK] * 3 + [
        PushStatus.TERMINAL
    ]
    assert results[2].detail["issues"][0]["code"] == "90220"
    assert results[2].detail["messageId"] == 3
    assert results[6].detail["messageId"] == 7
    assert "does not exist" in (results[6].error or "")
    levels = account.sandbox.levels()
    assert levels["SKU-000003"] == 10
    assert [levels[f"SKU-00000{i}"] for i in (1, 2, 4, 5, 6)] == [21, 22, 24, 25, 26]
    stats = account.sandbox.stats
    assert (stats.feeds_created, stats.patches) == (1, 0)
    assert stats.requests_by_operation["createFeed"] == 1
    assert stats.requests_by_operation["getFeedDocument"] == 1


async def test_a_throttled_create_feed_falls_back_to_patches() -> None:
    # One feed every two minutes once createFeed's burst is spent: a 429 there must not park
    # every listing for the feed window; they go out SKU by SKU on the patch plan instead.
    async for acc in serve(usage_plans={"createFeed": (0.0083, 1.0)}):
        acc.sandbox.seed_catalog(8)
        driver = acc.driver(feed_threshold=3, max_throttle_retries=0)
        first = await driver.push_inventory([update(i, f"SKU-00000{i}", 30 + i) for i in (1, 2, 3)])
        assert all(r.status is PushStatus.OK for r in first)
        assert (acc.sandbox.stats.feeds_created, acc.sandbox.stats.patches) == (1, 0)

        second = await driver.push_inventory([update(i, f"SKU-00000{i}", 40 + i) for i in (4, 5, 6, 7)])

        assert all(r.status is PushStatus.OK for r in second)
        assert acc.sandbox.stats.throttled >= 1  # createFeed answered 429
        assert (acc.sandbox.stats.feeds_created, acc.sandbox.stats.patches) == (1, 4)
        assert [acc.sandbox.levels()[f"SKU-00000{i}"] for i in (4, 5, 6, 7)] == [44, 45, 46, 47]


async def test_threshold_switches_between_patch_and_feed(account: Account) -> None:
    account.sandbox.seed_catalog(5)
    driver = account.driver(feed_threshold=3)
    await driver.push_inventory([update(1, "SKU-000001", 1), update(2, "SKU-000002", 1)])
    assert (account.sandbox.stats.patches, account.sandbox.stats.feeds_created) == (2, 0)
    await driver.push_inventory([update(i, f"SKU-00000{i}", 3) for i in (3, 4, 5)])
    assert (account.sandbox.stats.patches, account.sandbox.stats.feeds_created) == (2, 1)


async def test_gzip_report_is_read() -> None:
    async for acc in serve(gzip_reports=True):
        acc.sandbox.seed_catalog(2)
        results = await acc.driver(feed_threshold=1).push_inventory(
            [update(1, "SKU-000001", 5), update(2, "SKU-000002", 6)]
        )
        assert [r.status for r in results] == [PushStatus.OK, PushStatus.OK]
        assert acc.sandbox.levels() == {"SKU-000001": 5, "SKU-000002": 6}


@pytest.mark.parametrize("status", ["FATAL", "CANCELLED"])
async def test_fatal_or_cancelled_feed_retries_every_listing(account: Account, status: str) -> None:
    account.sandbox.seed_catalog(2)
    account.sandbox.fail_next_feed(status)
    results = await account.driver(feed_threshold=1).push_inventory(
        [update(1, "SKU-000001", 5), update(2, "SKU-000002", 6)]
    )
    assert [r.status for r in results] == [PushStatus.RETRY, PushStatus.RETRY]
    assert status in (results[0].error or "")


async def test_feed_slower_than_the_timeout_is_retried(account: Account) -> None:
    account.sandbox.seed_catalog(1)
    (result,) = await account.driver(feed_threshold=1, feed_timeout=0.001).push_inventory(
        [update(1, "SKU-000001", 5)]
    )
    assert result.status is PushStatus.RETRY
    assert "still" in (result.error or "")


# -- products -----------------------------------------------------------------------------------


async def test_list_products_pages_through_search_listings_items(account: Account) -> None:
    account.sandbox.seed_catalog(45, quantity=7)
    driver = account.driver()
    skus: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await driver.list_products(cursor, per_page=250)
        pages += 1
        skus.extend(p.remote_id for p in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3  # searchListingsItems pages hold at most 20 items
    assert skus == [f"SKU-{i:06d}" for i in range(1, 46)]
    product = await driver.fetch_product("SKU-000002")
    variant = product.variants[0]
    assert (variant.quantity, variant.barcode, variant.inventory_id) == (7, ean13(2), "SKU-000002")
    assert variant.channel_meta["product_type"] == "TOYS_AND_GAMES"


async def test_missing_settings_name_the_key(account: Account) -> None:
    ctx = make_context(account.http, account.sandbox, account.server.base_url)
    for key, broken in (
        ("seller_id", {**ctx.settings, "seller_id": ""}),
        ("marketplace_ids", {**ctx.settings, "marketplace_ids": []}),
        ("feed_threshold", {**ctx.settings, "feed_threshold": 0}),
        ("max_feed_messages", {**ctx.settings, "max_feed_messages": 30_000}),
    ):
        with pytest.raises(ConfigError) as raised:
            AmazonDriver(replace(ctx, settings=broken))
        assert raised.value.key == f"channels.{ctx.name}.settings.{key}"
    with pytest.raises(ConfigError) as raised:
        AmazonDriver(replace(ctx, credentials={"client_id": "x", "client_secret": "y"}))
    assert raised.value.key == f"channels.{ctx.name}.credentials.refresh_token"
