"""The generic `rest` driver, configured to talk to a point-of-sale back office over real HTTP."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pos_testkit import (
    CREDENTIALS,
    LEVEL,
    READ_BY_BATCH,
    READ_BY_ITEM,
    SALE,
    SETTINGS,
    PosBackOffice,
    signed,
)

from nexus.channels.rest import RestDriver, create_driver
from nexus.drivers.contract import ChannelContext, ObservedLevel, SaleEvent
from nexus.drivers.dto import NexusInventoryUpdate, PushStatus
from nexus.errors import ConfigError, WebhookPayloadError, WebhookSignatureError
from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig
from nexus.testing import ConformanceChannel, DriverConformance
from nexus.web.server import serve_app


def context(http: httpx.AsyncClient, base_url: str, **settings: Any) -> ChannelContext:
    return ChannelContext(
        name="pos",
        driver="rest",
        base_url=base_url,
        credentials=CREDENTIALS,
        settings={**SETTINGS, **settings},
        http=http,
        rate=BoundLimiter(InProcessTokenBucket(), "pos:default", RateLimitConfig(20, 10)),
    )


def update(office: PosBackOffice, n: int, quantity: int) -> NexusInventoryUpdate:
    return NexusInventoryUpdate(listing_id=n, sku=f"SKU-{n:06d}", remote_id=str(n), quantity=quantity)


@contextlib.asynccontextmanager
async def pos(**settings: Any) -> AsyncIterator[tuple[PosBackOffice, RestDriver]]:
    office = PosBackOffice()
    async with serve_app(office.app) as server, httpx.AsyncClient() as http:
        yield office, create_driver(context(http, server.base_url, **settings))


class TestRestConformance(DriverConformance):
    """`read_levels` through the list pages (no `read_url`); the subclasses read by item and by
    batch, and the kit's checks run again for each."""

    read_settings: dict[str, Any] = {}  # the settings of its read mode

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[ConformanceChannel]:
        async with pos(**self.read_settings) as (office, driver):

            async def read_level(u: NexusInventoryUpdate) -> int | None:
                return office.level(u.sku)

            yield ConformanceChannel(
                driver=driver,
                listings=[update(office, n, 4) for n in range(1, 6)],
                unknown=NexusInventoryUpdate(listing_id=99, sku="GHOST", remote_id="99", quantity=1),
                read_level=read_level,
                webhooks=[signed(SALE), signed(LEVEL)],
                signature_headers=["x-pos-signature"],
            )


class TestRestConformanceReadByItem(TestRestConformance):
    read_settings = READ_BY_ITEM


class TestRestConformanceReadByBatch(TestRestConformance):
    read_settings = READ_BY_BATCH


def reads(office: PosBackOffice) -> list[tuple[str, str]]:
    return [r for r in office.requests if r[0] == "GET"]


async def test_read_levels_by_item_is_one_get_per_listing_and_leaves_out_a_404() -> None:
    async with pos(**READ_BY_ITEM) as (office, driver):
        assert (driver.capabilities.reads_levels, driver.capabilities.read_batch_size) == (True, 1)
        office.items["2"]["stock"]["available"] = 7  # changed behind Nexus's back
        ghost = NexusInventoryUpdate(99, "GHOST", "99", 1)
        levels = await driver.read_levels([update(office, 1, 0), ghost, update(office, 2, 0)])
        assert levels == {1: 4, 2: 7}
        assert reads(office) == [("GET", "/api/items/1"), ("GET", "/api/items/99"), ("GET", "/api/items/2")]


async def test_read_levels_by_batch_sends_read_batch_size_listings_a_request() -> None:
    async with pos(**READ_BY_BATCH) as (office, driver):
        assert driver.capabilities.read_batch_size == 2
        office.items["5"]["stock"]["available"] = 0
        levels = await driver.read_levels([update(office, n, 0) for n in (1, 3, 5)])
        assert levels == {1: 4, 3: 4, 5: 0}
        assert len(reads(office)) == 2  # 1,3 then 5


async def test_read_levels_through_the_list_stops_once_every_listing_is_found() -> None:
    async with pos() as (office, driver):
        office.items["2"]["stock"]["available"] = 9
        assert await driver.read_levels([update(office, 2, 0), update(office, 1, 0)]) == {1: 4, 2: 9}
        assert reads(office) == [("GET", "/api/items")]  # page 1 held both: page 2 is not read
        office.requests.clear()
        assert await driver.read_levels([NexusInventoryUpdate(99, "GHOST", "99", 1)]) == {}
        assert len(reads(office)) == 4  # pages 1-3 hold the five items, page 4 is empty


async def test_a_read_answer_naming_another_item_is_not_read() -> None:
    # A back office that answers an unknown id with some default item must not lend its level.
    async with pos(read_url="/api/items/{id}", read_items_path="item") as (office, driver):
        confused = dataclasses.replace(update(office, 3, 0), remote_id="1")  # asks for 1, is SKU 3
        assert await driver.read_levels([confused]) == {}


async def test_list_products_reads_items_through_the_configured_paths_and_pages() -> None:
    async with pos() as (_, driver):
        first = await driver.list_products()
        assert [p.variants[0].sku for p in first.items] == ["SKU-000001", "SKU-000002"]
        variant = first.items[0].variants[0]
        assert (variant.remote_id, variant.quantity, variant.barcode) == ("1", 4, "2000000000001")
        assert first.next_cursor == "2"
        assert (await driver.fetch_product("5")).variants[0].sku == "SKU-000005"


async def test_a_batch_answer_is_mapped_back_per_item_and_split_at_batch_size() -> None:
    async with pos() as (office, driver):
        batch = [
            update(office, 1, 7),
            NexusInventoryUpdate(99, "GHOST", "99", 1),
            *(update(office, n, n) for n in (2, 3, 4)),
        ]
        results = await driver.push_inventory(batch)
        assert [r.status for r in results] == [
            PushStatus.OK,
            PushStatus.TERMINAL,
            PushStatus.OK,
            PushStatus.OK,
            PushStatus.OK,
        ]
        assert results[1].error == "unknown item"
        assert [office.level(f"SKU-{n:06d}") for n in (1, 2, 3, 4)] == [7, 2, 3, 4]
        assert office.requests.count(("POST", "/api/stock")) == 2  # 5 updates, 3 per request


async def test_a_429_pauses_the_bucket_for_retry_after_and_is_retried_later() -> None:
    async with pos() as (office, driver):
        office.throttle_next = 1
        results = await driver.push_inventory([update(office, 1, 9)])
        assert results[0].status is PushStatus.RETRY and results[0].retry_after == 7
        rate = driver._ctx.rate
        assert isinstance(rate, BoundLimiter)
        assert await rate.bucket.reserve(rate.key, 1, rate.limit) > 6  # everyone on the key waits


async def test_a_spent_quota_reschedules_without_using_an_attempt() -> None:
    # Our own bucket says the next request is hours away (a spent daily quota): nothing is sent,
    # so no attempt may be used up, else listings never sent end in the dead-letter queue.
    office = PosBackOffice()
    async with serve_app(office.app) as server, httpx.AsyncClient() as http:
        ctx = context(http, server.base_url)
        daily = BoundLimiter(InProcessTokenBucket(), "pos:daily", RateLimitConfig.daily(1), max_wait=1.0)
        driver = create_driver(dataclasses.replace(ctx, rate=daily))
        first = await driver.push_inventory([update(office, 1, 9)])
        second = await driver.push_inventory([update(office, 2, 9)])
    assert first[0].status is PushStatus.OK
    assert second[0].status is PushStatus.RETRY
    assert second[0].counts_as_attempt is False
    assert office.level("SKU-000002") != 9


async def test_a_wrong_api_key_is_terminal() -> None:
    async with pos(auth_template="wrong") as (office, driver):
        results = await driver.push_inventory([update(office, 1, 9)])
        assert results[0].status is PushStatus.UNAUTHORIZED and "401" in (results[0].error or "")


async def test_webhooks_are_verified_with_the_configured_hmac_and_parsed_by_paths() -> None:
    async with pos() as (_, driver):
        sale, level = signed(SALE), signed(LEVEL)
        await driver.verify_webhook(sale)
        assert driver.describe_webhook(sale).topic == "sale.completed"
        assert driver.describe_webhook(sale).delivery_id == "d-1"
        [event] = driver.parse_webhook(sale)
        assert isinstance(event, SaleEvent)
        assert (event.listing.remote_sku, event.quantity, event.order_id) == ("SKU-000001", 2, "S-1001")
        [observed] = driver.parse_webhook(level)
        assert isinstance(observed, ObservedLevel) and observed.quantity == 9
        with pytest.raises(WebhookSignatureError):
            await driver.verify_webhook(signed(SALE, secret="not-the-secret"))
        with pytest.raises(WebhookPayloadError):
            driver.parse_webhook(signed({"type": "sale.completed", "sale_id": "S", "lines": [{"sku": "A"}]}))
        assert driver.parse_webhook(signed({"type": "shift.closed"})) == []


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"push_url": "https://elsewhere.example/steal"}, "channels.pos.settings.push_url"),
        ({"pagination": "sometimes"}, "channels.pos.settings.pagination"),
        ({"batch_size": 0}, "channels.pos.settings.batch_size"),
        ({"auth_template": "Bearer {token}"}, "channels.pos.settings.auth_template"),
        ({"colour": "blue"}, "channels.pos.settings.colour"),
        ({"read_url": "/api/items"}, "channels.pos.settings.read_url"),  # no placeholder
        ({"read_url": "/api/items/{id}?skus={skus}"}, "channels.pos.settings.read_url"),
        ({"read_url": "https://elsewhere.example/{id}"}, "channels.pos.settings.read_url"),
        ({"read_batch_size": 0}, "channels.pos.settings.read_batch_size"),
    ],
)
async def test_a_wrong_setting_is_named(settings: dict[str, Any], key: str) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError) as error:
            create_driver(context(http, "http://127.0.0.1:9", **settings))
    assert error.value.key == key


async def test_an_engine_configured_with_driver_rest_imports_and_pushes(
    make_nexus: Callable[..., Any],
) -> None:
    office = PosBackOffice()
    async with serve_app(office.app) as server:
        nexus = await make_nexus(
            channels={
                "pos": {
                    "driver": "rest",
                    "base_url": server.base_url,
                    "credentials": CREDENTIALS,
                    "settings": SETTINGS,
                }
            }
        )
        from nexus.domain.catalog import ItemSpec

        await nexus.add_items([ItemSpec(f"SKU-{n:06d}", title=str(n), on_hand=10 + n) for n in range(1, 6)])
        report = await nexus.import_channel("pos")
        assert report.linked == 5
        while await nexus.push_worker("pos").run_once() is not None:
            pass
        assert [office.level(f"SKU-{n:06d}") for n in range(1, 6)] == [11, 12, 13, 14, 15]


async def test_the_reconciler_reads_a_rest_channel_back_and_pushes_over_an_admin_edit(
    make_nexus: Callable[..., Any],
) -> None:
    from nexus.domain.catalog import ItemSpec
    from nexus.domain.reconcile import Finding

    office = PosBackOffice()
    async with serve_app(office.app) as server:
        nexus = await make_nexus(
            channels={
                "pos": {
                    "driver": "rest",
                    "base_url": server.base_url,
                    "credentials": CREDENTIALS,
                    "settings": {**SETTINGS, **READ_BY_BATCH},
                }
            }
        )
        await nexus.add_items([ItemSpec(f"SKU-{n:06d}", title=str(n), on_hand=10 + n) for n in range(1, 6)])
        assert (await nexus.import_channel("pos")).linked == 5
        worker = nexus.push_worker("pos")
        while await worker.run_once() is not None:
            pass
        office.items["2"]["stock"]["available"] = 30  # an edit in the back office, no webhook
        reconciler = nexus.reconciler("pos")

        found = {(d.sku, d.believed, d.observed, d.finding) for d in await reconciler.differences()}
        assert found == {("SKU-000002", 12, 30, Finding.PUSHED)}  # nexus_wins, the default
        cycle = await reconciler.cycle()
        assert (cycle.read, cycle.unread, cycle.findings[Finding.AGREES]) == (5, 0, 4)
        while await worker.run_once() is not None:
            pass
        assert [office.level(f"SKU-{n:06d}") for n in range(1, 6)] == [11, 12, 13, 14, 15]
        assert await reconciler.differences() == []
