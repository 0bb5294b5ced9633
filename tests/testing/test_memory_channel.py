"""MemoryChannel's own behaviour: scripted failures, compare-and-set, the catalogue, webhooks, the factory."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from nexus.drivers.contract import ListingRef, ObservedLevel, SaleEvent
from nexus.drivers.dto import NexusInventoryUpdate, PushStatus
from nexus.drivers.pagination import iterate_products
from nexus.errors import (
    QuotaExhausted,
    TerminalChannelError,
    TransientChannelError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from nexus.testing import MemoryChannel


def update(listing_id: int, sku: str, quantity: int, change_from: int | None = None) -> NexusInventoryUpdate:
    return NexusInventoryUpdate(listing_id, sku, remote_id=sku, quantity=quantity, change_from=change_from)


async def test_compare_and_set_answers_stale_with_the_current_level_and_off_it_overwrites() -> None:
    channel = MemoryChannel()
    channel.levels["A"] = 9
    [stale] = await channel.push_inventory([update(1, "A", 5, change_from=10)])
    assert (stale.status, stale.quantity, channel.levels["A"]) == (PushStatus.STALE, 9, 9)
    blind = MemoryChannel(compare_and_set=False)
    blind.levels["A"] = 9
    [ok] = await blind.push_inventory([update(1, "A", 5, change_from=10)])
    assert (ok.status, blind.levels["A"]) == (PushStatus.OK, 5)


async def test_a_failed_request_raises_once_and_lands_nothing() -> None:
    channel = MemoryChannel()
    channel.fail_next_push(TransientChannelError("503", status=503))
    with pytest.raises(TransientChannelError):
        await channel.push_inventory([update(1, "A", 5)])
    assert channel.levels == {}
    assert [r.status for r in await channel.push_inventory([update(1, "A", 5)])] == [PushStatus.OK]
    assert len(channel.push_calls) == 2 and channel.pushed == [update(1, "A", 5)] * 2


async def test_listing_failures_answer_alone_through_the_one_error_mapping() -> None:
    channel = MemoryChannel()
    channel.fail_listing(QuotaExhausted("daily quota spent", retry_after=60), sku="A")
    channel.fail_listing(TerminalChannelError("archived", status=422), listing_id=2, times=None)
    batch = [update(1, "A", 5), update(2, "B", 6), update(3, "C", 7)]
    quota, archived, fine = await channel.push_inventory(batch)
    assert (quota.status, quota.retry_after, quota.counts_as_attempt) == (PushStatus.RETRY, 60, False)
    assert (archived.status, archived.detail) == (PushStatus.TERMINAL, {"status": 422})
    assert fine.status is PushStatus.OK and channel.levels == {"C": 7}
    again = await channel.push_inventory(batch)
    assert [r.status for r in again] == [PushStatus.OK, PushStatus.TERMINAL, PushStatus.OK]
    channel.clear_failures()
    assert [r.status for r in await channel.push_inventory(batch)] == [PushStatus.OK] * 3


async def test_a_raising_listing_failure_fails_the_whole_request() -> None:
    channel = MemoryChannel()
    channel.fail_listing(KeyError("a driver bug"), remote_id="B", raises=True)
    with pytest.raises(KeyError):
        await channel.push_inventory([update(1, "A", 5), update(2, "B", 6)])
    assert channel.levels == {}
    with pytest.raises(ValueError):
        channel.fail_listing(KeyError("nobody"))


async def test_a_batch_over_the_limit_is_refused() -> None:
    channel = MemoryChannel(max_batch_size=2)
    with pytest.raises(TerminalChannelError, match="over the limit"):
        await channel.push_inventory([update(n, f"S{n}", n) for n in range(3)])


async def test_reads_are_counted_and_leave_out_what_the_channel_does_not_show() -> None:
    channel = MemoryChannel()
    channel.add_product("A", quantity=4)
    assert channel.simulate_sale("A", 3) == 1
    assert await channel.read_levels([update(1, "A", 0), update(2, "B", 0)]) == {1: 1}
    assert channel.read_calls == [[1, 2]]


async def test_the_catalogue_pages_and_fetches_with_current_levels() -> None:
    channel = MemoryChannel()
    for n in range(5):
        channel.add_product(f"S{n}", quantity=n)
    channel.add_product("S0-blue", product_id="p-S0")
    pages = [page async for page in iterate_products(channel, per_page=2)]
    assert [len(page) for page in pages] == [2, 2, 1]
    channel.levels["S1"] = 40
    product = await channel.fetch_product("p-S1")
    assert (product.local_sku, product.quantity_available) == ("S1", 40)
    assert [v.sku for v in (await channel.fetch_product("p-S0")).variants] == ["S0", "S0-blue"]
    with pytest.raises(TerminalChannelError):
        await channel.fetch_product("p-nothing")


async def test_signed_webhooks_round_trip_and_bad_ones_are_refused() -> None:
    channel = MemoryChannel(secret="s3cret")
    sale = SaleEvent(ListingRef(remote_id="A"), 2, "O1", "L1")
    level = ObservedLevel(ListingRef(inventory_id="I-1"), 7)
    request = channel.webhook(sale, level, delivery_id="D1", event_id="E1")
    await channel.verify_webhook(request)
    meta = channel.describe_webhook(request)
    assert (meta.topic, meta.delivery_id, meta.event_id) == ("stock", "D1", "E1")
    parsed = channel.parse_webhook(request)
    assert parsed == [sale, dataclasses.replace(level, observed_at=request.received_at)]
    assert channel.parse_webhook(channel.webhook(sale, topic="shop/update")) == []

    with pytest.raises(WebhookSignatureError):
        await MemoryChannel(secret="other").verify_webhook(request)
    with pytest.raises(WebhookSignatureError):
        await channel.verify_webhook(dataclasses.replace(request, headers={"x-memory-signature": "%%"}))
    for body in (b"[1]", b"{not json", b'{"sales": [{"quantity": 1}]}', b'{"levels": [{"sku": "A"}]}'):
        with pytest.raises(WebhookPayloadError):
            channel.parse_webhook(channel.webhook(body=body))


async def test_the_factory_builds_one_channel_per_name(make_nexus: Callable[..., Any]) -> None:
    memory = MemoryChannel.factory(max_batch_size=3, compare_and_set=False)
    nexus = await make_nexus(channels={"shop": {"driver": "memory", "credentials": {"secret": "k"}}})
    nexus.extend("memory", memory)
    runtime = nexus.channel("shop")
    assert runtime.driver is memory["shop"] and list(memory) == ["shop"]
    assert memory["shop"].capabilities.max_batch_size == 3 and memory["shop"].secret == "k"
    assert memory["shop"].webhook().channel == "shop"
