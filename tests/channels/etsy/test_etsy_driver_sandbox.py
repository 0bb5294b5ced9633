"""The Etsy driver over real HTTP on loopback against the Etsy sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from etsy_testkit import Limiters, SandboxClock, Shop

from nexus.channels.etsy import EtsyDriver
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, PushStatus
from nexus.errors import TerminalChannelError

TOTE = [
    {
        "sku": "TOTE-BGE",
        "price": 22.00,
        "quantity": 3,
        "readiness_state_id": 1402336022,
        "property_values": [
            {
                "property_id": 200,
                "property_name": "Primary color",
                "scale_id": None,
                "value_ids": [5471],
                "values": ["Beige"],
            }
        ],
    },
    {
        "sku": "TOTE-BLK",
        "price": 24.50,
        "quantity": 2,
        "readiness_state_id": 1402336022,
        "property_values": [
            {
                "property_id": 200,
                "property_name": "Primary color",
                "scale_id": None,
                "value_ids": [1213],
                "values": ["Black"],
            }
        ],
    },
    {
        "sku": "",
        "price": 19.99,
        "quantity": 0,
        "is_enabled": False,
        "property_values": [
            {
                "property_id": 200,
                "property_name": "Primary color",
                "scale_id": None,
                "value_ids": [1219],
                "values": ["White"],
            }
        ],
    },
]
ON_PROPERTY = {"price_on_property": [200], "quantity_on_property": [200], "sku_on_property": [200]}


class ReleaseOnThrottle:
    """A throttle monitor that lets the sandbox's clock run once the driver met a 429."""

    def __init__(self, clock: SandboxClock) -> None:
        self.clock = clock

    async def throttled(self) -> None:
        self.clock.release()

    async def succeeded(self) -> None:
        return None


async def imported(driver: EtsyDriver) -> dict[str, NexusProduct]:
    """Every imported product by the SKU of its first variant, walking all pages."""
    found: dict[str, NexusProduct] = {}
    cursor: str | None = None
    while True:
        page = await driver.list_products(cursor, per_page=100)
        for product in page.items:
            for variant in product.variants:
                found[variant.sku or variant.remote_id] = product
        cursor = page.next_cursor
        if cursor is None:
            return found


def update_for(
    product: NexusProduct, sku: str, quantity: int, listing_id: int, **extra: Any
) -> NexusInventoryUpdate:
    variant = next(v for v in product.variants if v.sku == sku)
    return NexusInventoryUpdate(
        listing_id=listing_id,
        sku=sku,
        remote_id=variant.remote_id,
        inventory_id=variant.inventory_id,
        quantity=quantity,
        channel_meta=dict(variant.channel_meta),
        **extra,
    )


def offerings(shop: Shop, listing_id: int) -> list[tuple[str, int, dict[str, Any], bool, Any]]:
    return [
        (p["sku"], o["quantity"], o["price"], o["is_enabled"], o["readiness_state_id"])
        for p in shop.sandbox.inventory(listing_id)["products"]
        for o in p["offerings"]
    ]


async def test_push_changes_only_the_targeted_product_and_keeps_the_rest(shop: Shop) -> None:
    tote = shop.sandbox.add_listing("Linen tote", TOTE, ON_PROPERTY)
    before = shop.sandbox.inventory(tote["listing_id"])
    driver = shop.driver()
    product = (await imported(driver))["TOTE-BLK"]

    [result] = await driver.push_inventory([update_for(product, "TOTE-BLK", 7, listing_id=1)])

    assert (result.status, result.quantity) == (PushStatus.OK, 7)
    after = shop.sandbox.inventory(tote["listing_id"])
    assert offerings(shop, tote["listing_id"]) == [
        ("TOTE-BGE", 3, {"amount": 2200, "divisor": 100, "currency_code": "USD"}, True, 1402336022),
        ("TOTE-BLK", 7, {"amount": 2450, "divisor": 100, "currency_code": "USD"}, True, 1402336022),
        ("", 0, {"amount": 1999, "divisor": 100, "currency_code": "USD"}, False, None),
    ]
    assert [p["property_values"] for p in after["products"]] == [
        p["property_values"] for p in before["products"]
    ]
    assert {k: after[k] for k in ON_PROPERTY} == ON_PROPERTY
    assert shop.sandbox.stats.products_deleted == 0
    assert shop.sandbox.stats.set_count_by_sku == {"TOTE-BLK": 1}
    # Etsy gave every product a new id; the next push still finds its product by SKU.
    assert {p["product_id"] for p in after["products"]}.isdisjoint(
        {p["product_id"] for p in before["products"]}
    )
    [again] = await driver.push_inventory([update_for(product, "TOTE-BLK", 4, listing_id=1)])
    assert (again.status, shop.sandbox.available("TOTE-BLK")) == (PushStatus.OK, 4)


# The answers are held back a little so that both GETs are read before either PUT lands.
@pytest.mark.parametrize("sandbox_options", [{"response_latency": 0.05}])
async def test_concurrent_pushes_to_one_listing_do_not_undo_each_other(shop: Shop) -> None:
    tote = shop.sandbox.add_listing("Linen tote", TOTE, ON_PROPERTY)
    driver = shop.driver()
    product = (await imported(driver))["TOTE-BGE"]

    beige, black = await asyncio.gather(
        driver.push_inventory([update_for(product, "TOTE-BGE", 11, listing_id=1)]),
        driver.push_inventory([update_for(product, "TOTE-BLK", 12, listing_id=2)]),
    )

    assert [r.status for r in (*beige, *black)] == [PushStatus.OK, PushStatus.OK]
    assert [q for _, q, *_ in offerings(shop, tote["listing_id"])] == [11, 12, 0]


async def test_a_product_without_sku_is_found_by_its_property_values(shop: Shop) -> None:
    tote = shop.sandbox.add_listing("Linen tote", TOTE, ON_PROPERTY)
    driver = shop.driver()
    product = (await imported(driver))["TOTE-BGE"]
    white = next(v for v in product.variants if v.sku is None)
    update = NexusInventoryUpdate(listing_id=9, sku="WHITE", remote_id=white.remote_id, quantity=5)

    [result] = await driver.push_inventory([update])

    assert result.status is PushStatus.OK
    assert [q for _, q, *_ in offerings(shop, tote["listing_id"])] == [3, 2, 5]


async def test_several_listings_in_one_push_and_one_result_per_update_in_order(shop: Shop) -> None:
    shop.sandbox.seed_catalog(6, quantity=10)
    driver = shop.driver()
    products = await imported(driver)
    skus = [f"SKU-{i:06d}" for i in range(1, 7)]
    updates = [update_for(products[sku], sku, 20 + n, listing_id=n) for n, sku in enumerate(skus, start=1)]

    results = await driver.push_inventory(updates)

    assert [r.listing_id for r in results] == [1, 2, 3, 4, 5, 6]
    assert [(r.status, r.quantity) for r in results] == [(PushStatus.OK, 20 + n) for n in range(1, 7)]
    assert [shop.sandbox.available(sku) for sku in skus] == [21, 22, 23, 24, 25, 26]
    assert (shop.sandbox.stats.inventory_gets, shop.sandbox.stats.inventory_puts) == (6, 6)


async def test_stale_level_is_reported_and_left_alone(shop: Shop) -> None:
    shop.sandbox.seed_catalog(2, quantity=10)
    driver = shop.driver()
    products = await imported(driver)
    await shop.sandbox.simulate_sale("SKU-000001", 2)  # the channel sold two behind Nexus' back

    results = await driver.push_inventory(
        [
            update_for(products["SKU-000001"], "SKU-000001", 15, listing_id=1, change_from=10),
            update_for(products["SKU-000002"], "SKU-000002", 15, listing_id=2, change_from=10),
        ]
    )

    assert [(r.status, r.quantity) for r in results] == [(PushStatus.STALE, 8), (PushStatus.OK, 15)]
    assert (shop.sandbox.available("SKU-000001"), shop.sandbox.available("SKU-000002")) == (8, 15)


async def test_unknown_product_and_refused_listing_fail_alone(shop: Shop) -> None:
    shop.sandbox.seed_catalog(3, quantity=10)
    driver = shop.driver()
    products = await imported(driver)
    listing = shop.sandbox.listing_id("SKU-000001")
    ghost = NexusInventoryUpdate(listing_id=2, sku="GHOST", remote_id=f"{listing}:sku:GHOST", quantity=1)
    all_zero = update_for(products["SKU-000002"], "SKU-000002", 0, listing_id=3)
    too_many = update_for(products["SKU-000003"], "SKU-000003", 5000, listing_id=4)
    fine = update_for(products["SKU-000001"], "SKU-000001", 4, listing_id=1)

    results = await driver.push_inventory([fine, ghost, all_zero, too_many])

    assert [r.status for r in results] == [
        PushStatus.OK,
        PushStatus.TERMINAL,
        PushStatus.TERMINAL,
        PushStatus.TERMINAL,
    ]
    assert "One offering must have quantity greater than 0" in (results[2].error or "")
    assert shop.sandbox.levels() == {"SKU-000001": 4, "SKU-000002": 10, "SKU-000003": 10}


async def test_concurrent_pushes_refresh_the_token_once(shop: Shop) -> None:
    shop.sandbox.seed_catalog(5, quantity=10)
    driver = shop.driver()
    products = await imported(driver)  # the first request refreshed: no access token was configured
    assert (driver.tokens.refreshes, shop.sandbox.oauth.refreshes) == (1, 1)
    shop.sandbox.oauth.expire_all()  # an hour later

    pushes = [
        driver.push_inventory([update_for(products[sku], sku, 30, listing_id=n)])
        for n, sku in enumerate(sorted(products), start=1)
    ]
    results = await asyncio.gather(*pushes)

    assert {r.status for [r] in results} == {PushStatus.OK}
    assert shop.sandbox.oauth.refreshes == 2  # five pushes refused with 401, one refresh between them
    # Etsy rotated the refresh token each time; the driver holds the newest one.
    assert driver.tokens.refresh_token in shop.sandbox.oauth.refresh_tokens
    assert shop.sandbox.refresh_token in shop.sandbox.oauth.revoked


async def test_a_token_known_to_expire_is_refreshed_before_the_request(shop: Shop) -> None:
    shop.sandbox.seed_catalog(1)
    token = shop.sandbox.oauth.issue_access_token()
    driver = shop.driver()
    driver.tokens = type(driver.tokens)(
        http=shop.http,
        token_url=driver.settings.token_url,
        client_id=driver.settings.keystring,
        refresh_token=shop.sandbox.refresh_token,
        access_token=token,
        expires_at=0.0,  # already expired: never sent
    )
    driver.client.tokens = driver.tokens

    await imported(driver)

    assert shop.sandbox.stats.unauthorized == 0
    assert shop.sandbox.oauth.refreshes == 1


async def test_a_revoked_refresh_token_is_terminal(shop: Shop) -> None:
    shop.sandbox.oauth.revoked.add(shop.sandbox.refresh_token)
    shop.sandbox.oauth.refresh_tokens.clear()
    with pytest.raises(TerminalChannelError, match="invalid_grant"):
        await shop.driver().list_products()


async def test_daily_bucket_follows_the_headers(shop: Shop) -> None:
    shop.sandbox.seed_catalog(2)
    shop.sandbox.limits.spend_day(9_000)  # another integration on the same API key
    limiters = Limiters()
    driver = shop.driver(limiters=limiters)

    await imported(driver)

    daily = limiters.made["daily"]
    assert daily.limit.capacity == 10_000  # x-limit-per-day
    # x-remaining-today said 10,000 - 9,000 - the requests made: the bucket holds no more than that.
    assert await daily.level() <= 1_000


async def test_spent_daily_quota_retries_later_without_using_an_attempt(shop: Shop) -> None:
    shop.sandbox.seed_catalog(2)
    limiters = Limiters(daily_max_wait=1.0)
    driver = shop.driver(limiters=limiters)
    products = await imported(driver)
    shop.sandbox.limits.spend_day(9_998)
    await imported(driver)  # the last request of the day: x-remaining-today 0
    requests = shop.sandbox.stats.requests

    [result] = await driver.push_inventory(
        [update_for(products["SKU-000001"], "SKU-000001", 3, listing_id=1)]
    )

    assert result.status is PushStatus.RETRY and result.counts_as_attempt is False
    # One request comes back every 8.6 s at 10,000 a day: more than the worker may wait.
    assert result.retry_after is not None and result.retry_after > 1.0
    assert shop.sandbox.stats.requests == requests  # nothing was sent


async def test_429_penalizes_the_per_second_bucket_and_the_request_goes_through(
    make_shop: Callable[..., AbstractAsyncContextManager[Shop]],
) -> None:
    clock = SandboxClock()
    async with make_shop(requests_per_second=2, retry_after=True, clock=clock) as shop:
        shop.sandbox.seed_catalog(1)
        limiters = Limiters()
        driver = shop.driver(limiters=limiters, max_throttle_retries=3)
        products = await imported(driver)  # one of the shop's two requests this second
        shop.sandbox.limits.take()  # another client on the same key takes the other one
        limiters.rate.monitor = ReleaseOnThrottle(clock)  # told of every 429, before the wait

        [result] = await driver.push_inventory(
            [update_for(products["SKU-000001"], "SKU-000001", 9, listing_id=1)]
        )

        assert (result.status, shop.sandbox.available("SKU-000001")) == (PushStatus.OK, 9)
        assert shop.sandbox.stats.throttled == driver.client.throttled_responses >= 1
        # The bucket stood still for the shop's Retry-After (1 s, less the microseconds between
        # the penalty and the next acquire) before the request went again.
        assert limiters.rate.waited_seconds > 0.9
        # The shop's x-limit-per-second replaced the configured guess of 10.
        assert limiters.rate.limit.capacity == 2


async def test_429_without_any_header_becomes_a_retry(
    make_shop: Callable[..., AbstractAsyncContextManager[Shop]],
) -> None:
    async with make_shop(requests_per_second=1, clock=SandboxClock()) as shop:
        shop.sandbox.seed_catalog(1)
        driver = shop.driver(max_throttle_retries=0)
        products = await imported(driver)  # spends the shop's one request: its window never refills

        [result] = await driver.push_inventory(
            [update_for(products["SKU-000001"], "SKU-000001", 3, listing_id=1)]
        )

        assert result.status is PushStatus.RETRY
        assert result.retry_after == driver.settings.default_retry_after


async def test_read_levels_and_fetch_product(shop: Shop) -> None:
    tote = shop.sandbox.add_listing("Linen tote", TOTE, ON_PROPERTY)
    driver = shop.driver()
    product = await driver.fetch_product(str(tote["listing_id"]))

    levels = await driver.read_levels(
        [update_for(product, "TOTE-BGE", 0, listing_id=1), update_for(product, "TOTE-BLK", 0, listing_id=2)]
    )

    assert product.title == "Linen tote"
    assert [v.sku for v in product.variants] == ["TOTE-BGE", "TOTE-BLK", None]
    assert levels == {1: 3, 2: 2}


async def test_list_products_pages_through_every_listing(shop: Shop) -> None:
    shop.sandbox.seed_catalog(7)
    driver = shop.driver()

    first = await driver.list_products(per_page=3)
    skus = [v.sku for p in first.items for v in p.variants]

    assert skus == ["SKU-000001", "SKU-000002", "SKU-000003"] and first.next_cursor == "0:3"
    assert sorted(await imported(driver)) == [f"SKU-{i:06d}" for i in range(1, 8)]
