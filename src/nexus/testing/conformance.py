"""The driver conformance kit: what every Nexus driver must do, as a pytest base class.

Subclass `DriverConformance` in a test module (the class name must start with `Test`) and
implement `channel()`, an async context manager yielding a `ConformanceChannel`: the driver
under test, talking to a sandbox or to recorded fixtures, plus what the kit needs to check it.

    class TestEbayConformance(DriverConformance):
        @contextlib.asynccontextmanager
        async def channel(self) -> AsyncIterator[ConformanceChannel]:
            async with serve_app(EbaySandbox().app) as server, httpx.AsyncClient() as http:
                ...
                yield ConformanceChannel(driver=..., listings=..., ...)

The kit checks batch limits, per-item result mapping, webhook acceptance and rejection, and
normalisation; and, for what the driver declares in its `DriverCapabilities`, compare-and-set (a
push whose `change_from` is wrong is answered STALE with the channel's level, and nothing lands) and
`read_levels` (it reads back the levels just pushed, leaving out a listing the channel does not have).
A check for a capability the driver does not declare is skipped. It never asserts timings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nexus.drivers.contract import InventoryDriver, ObservedLevel, SaleEvent, WebhookRequest
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, PushStatus
from nexus.drivers.pagination import iterate_products
from nexus.errors import WebhookError

LevelReader = Callable[[NexusInventoryUpdate], Awaitable[int | None]]
Normaliser = Callable[[Any], NexusProduct]


@dataclass
class ProductFixture:
    """A payload shaped exactly like the channel's API, its normaliser, and the SKUs it holds."""

    payload: Any
    normalise: Normaliser
    skus: Sequence[str]


@dataclass
class ConformanceChannel:
    driver: InventoryDriver
    # Listings the channel has, at least `max_batch_size` of them (or all the channel has).
    listings: Sequence[NexusInventoryUpdate]
    # A listing the channel does not know: its push must fail alone, not take the batch with it.
    unknown: NexusInventoryUpdate
    # Reads a listing's level on the channel out of band (the sandbox's own view).
    read_level: LevelReader
    # Authentic deliveries, exactly as the channel sends them.
    webhooks: Sequence[WebhookRequest]
    # Header names (lower case) that carry the signature: without them a delivery must be refused.
    signature_headers: Sequence[str]
    products: Sequence[ProductFixture] = field(default_factory=list)
    # Every SKU `list_products` should find (empty: the listings' SKUs).
    catalog_skus: Sequence[str] = ()


class DriverConformance:
    """Base class of a driver's conformance tests. Not collected itself (no `Test` prefix)."""

    def channel(self) -> contextlib.AbstractAsyncContextManager[ConformanceChannel]:
        raise NotImplementedError("implement channel() as an async context manager")

    # -- capabilities ---------------------------------------------------------------------------

    async def test_capabilities_are_usable(self) -> None:
        async with self.channel() as channel:
            capabilities = channel.driver.capabilities
            assert capabilities.max_batch_size >= 1
            limit = channel.driver.rate_limit_config()
            assert limit.capacity > 0 and limit.refill_per_second > 0
            assert isinstance(channel.driver.name, str) and channel.driver.name

    # -- pushing --------------------------------------------------------------------------------

    async def test_a_full_batch_gets_one_result_per_update_in_order_and_lands(self) -> None:
        async with self.channel() as channel:
            batch = _full_batch(channel)
            results = await channel.driver.push_inventory(batch)
            assert [r.listing_id for r in results] == [u.listing_id for u in batch]
            assert [r.status for r in results] == [PushStatus.OK] * len(batch), _errors(results)
            for update in batch:
                assert await channel.read_level(update) == update.quantity, update.sku

    async def test_an_unknown_listing_fails_alone(self) -> None:
        async with self.channel() as channel:
            known = _full_batch(channel)[:2]
            batch = [known[0], channel.unknown, *known[1:]]
            results = await channel.driver.push_inventory(batch)
            assert [r.listing_id for r in results] == [u.listing_id for u in batch]
            by_id = {r.listing_id: r for r in results}
            assert by_id[channel.unknown.listing_id].status in (PushStatus.TERMINAL, PushStatus.RETRY)
            assert by_id[channel.unknown.listing_id].error
            for update in known:
                assert by_id[update.listing_id].status is PushStatus.OK, _errors(results)
                assert await channel.read_level(update) == update.quantity

    async def test_an_empty_push_sends_nothing_and_returns_nothing(self) -> None:
        async with self.channel() as channel:
            assert await channel.driver.push_inventory([]) == []

    # -- by capability --------------------------------------------------------------------------

    async def test_compare_and_set_refuses_a_wrong_change_from(self) -> None:
        async with self.channel() as channel:
            _require(channel, "compare_and_set")
            target = _full_batch(channel)[0]
            [landed] = await channel.driver.push_inventory([target])
            assert landed.status is PushStatus.OK, _errors([landed])
            wrong = dataclasses.replace(target, quantity=target.quantity + 5, change_from=target.quantity + 1)
            [refused] = await channel.driver.push_inventory([wrong])
            assert refused.listing_id == target.listing_id
            assert refused.status is PushStatus.STALE, _errors([refused])
            assert refused.quantity == target.quantity, "a stale answer carries the channel's current level"
            assert await channel.read_level(target) == target.quantity, "a refused push landed"
            right = dataclasses.replace(target, quantity=target.quantity + 2, change_from=target.quantity)
            [accepted] = await channel.driver.push_inventory([right])
            assert accepted.status is PushStatus.OK, _errors([accepted])
            assert await channel.read_level(target) == right.quantity

    async def test_read_levels_reads_back_what_was_pushed(self) -> None:
        async with self.channel() as channel:
            _require(channel, "reads_levels")
            batch = _full_batch(channel)
            results = await channel.driver.push_inventory(batch)
            assert [r.status for r in results] == [PushStatus.OK] * len(batch), _errors(results)
            assert await channel.driver.read_levels(batch) == {u.listing_id: u.quantity for u in batch}

    async def test_read_levels_leaves_out_a_listing_the_channel_does_not_have(self) -> None:
        async with self.channel() as channel:
            _require(channel, "reads_levels")
            known = _full_batch(channel)[:2]
            results = await channel.driver.push_inventory(known)
            assert [r.status for r in results] == [PushStatus.OK] * len(known), _errors(results)
            levels = await channel.driver.read_levels([known[0], channel.unknown, *known[1:]])
            assert levels == {u.listing_id: u.quantity for u in known}

    # -- webhooks -------------------------------------------------------------------------------

    async def test_authentic_deliveries_verify_describe_and_parse(self) -> None:
        async with self.channel() as channel:
            assert channel.webhooks, "give at least one authentic delivery"
            for request in channel.webhooks:
                await channel.driver.verify_webhook(request)
                meta = channel.driver.describe_webhook(request)
                assert isinstance(meta.topic, str) and meta.topic
                events = channel.driver.parse_webhook(request)
                assert all(isinstance(e, SaleEvent | ObservedLevel) for e in events)

    async def test_a_tampered_delivery_is_refused(self) -> None:
        async with self.channel() as channel:
            for request in channel.webhooks:
                tampered = dataclasses.replace(request, body=_tamper(request.body))
                try:
                    await channel.driver.verify_webhook(tampered)
                except WebhookError as exc:
                    assert exc.status_code in (400, 401)
                else:
                    raise AssertionError(f"a tampered delivery was accepted: {request.headers}")

    async def test_an_unsigned_delivery_is_refused(self) -> None:
        async with self.channel() as channel:
            assert channel.signature_headers, "name the headers that carry the signature"
            for request in channel.webhooks:
                headers = {k: v for k, v in request.headers.items() if k not in channel.signature_headers}
                try:
                    await channel.driver.verify_webhook(dataclasses.replace(request, headers=headers))
                except WebhookError as exc:
                    assert exc.status_code in (400, 401)
                else:
                    raise AssertionError("a delivery without its signature was accepted")

    # -- products -------------------------------------------------------------------------------

    async def test_fixture_payloads_normalise(self) -> None:
        async with self.channel() as channel:
            for fixture in channel.products:
                product = fixture.normalise(fixture.payload)
                assert isinstance(product, NexusProduct)
                assert sorted(v.sku for v in product.variants if v.sku) == sorted(fixture.skus)
                for variant in product.variants:
                    assert variant.remote_id
                    assert variant.quantity is None or variant.quantity >= 0

    async def test_list_products_pages_through_the_whole_catalog(self) -> None:
        async with self.channel() as channel:
            expected = set(channel.catalog_skus or [u.sku for u in channel.listings])
            found: set[str] = set()
            async for page in iterate_products(channel.driver):
                for product in page:
                    found.update(v.sku for v in product.variants if v.sku)
            assert expected <= found, sorted(expected - found)[:10]


def _full_batch(channel: ConformanceChannel) -> list[NexusInventoryUpdate]:
    size = min(channel.driver.capabilities.max_batch_size, len(channel.listings))
    assert size >= 2, "give at least two listings"
    # Quantities the sandboxes do not seed (they start at 40 or below): 100 + position.
    return [
        dataclasses.replace(u, quantity=100 + n, change_from=None)
        for n, u in enumerate(channel.listings[:size])
    ]


def _require(channel: ConformanceChannel, capability: str) -> None:
    if not getattr(channel.driver.capabilities, capability):
        import pytest  # only here: importing nexus.testing needs no pytest

        pytest.skip(f"the driver does not declare {capability}")


def _errors(results: Sequence[Any]) -> list[str]:
    return [f"{r.listing_id}: {r.status.value} {r.error}" for r in results if r.status is not PushStatus.OK]


def _tamper(body: bytes) -> bytes:
    """Change one digit (JSON stays valid, every signature scheme covers it); else one byte."""
    match = re.search(rb"[0-9]", body)
    if match is None:
        return body[:-1] + bytes([body[-1] ^ 1]) if body else b"x"
    position = match.start()
    digit = body[position : position + 1]
    return body[:position] + (b"1" if digit != b"1" else b"2") + body[position + 1 :]
