"""The failures the correctness issue traced, each replayed step by step through the real write
path, inbound rules and push worker (docs/consistency.md says why each outcome is right)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from scenario_kit import Scenario, now, second

MakeNexus = Callable[..., Any]
T = datetime(2030, 1, 1, 12, 0, 52, tzinfo=UTC)  # whole-second channel stamps
SHOPIFY = {"compare_and_set": True}
AMAZON = {"compare_and_set": False, "sales_from_orders": False, "stamp_precision": 0.001}
WOOCOMMERCE = {"compare_and_set": False}


def channel_moves(booked: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [(reason, delta) for reason, delta in booked if reason in ("sale", "channel_adjustment")]


async def test_shopify_same_second_levels_never_book_a_phantom_unit(make_nexus: MakeNexus) -> None:
    # push 10 -> 3 (:52); sale -> 2; level 2@:52 (same second as the push); order -> 2;
    # sales -> 1 -> 0 at :53; orders -> 1, 0; level 1@:53; level 0@:53. It used to book +1.
    s = await Scenario.start(make_nexus, 10, **SHOPIFY)
    s.channel.stamp = T
    await s.nexus.product("S").update_inventory(quantity=3)
    await s.push()
    assert s.channel.level == 3

    level_then = s.channel.sell()
    doubt = await s.level(level_then, at=T)
    assert (doubt.in_doubt, doubt.changes) == (1, [])  # same second as our push: not placed
    await s.order("o1", 1, at=T)
    for order in ("o2", "o3"):
        s.channel.sell()
        await s.order(order, 1, at=T + timedelta(seconds=1))
    late = await s.level(1, at=T + timedelta(seconds=1))
    assert (late.in_doubt, late.changes) == (1, [])  # higher than what we know: older
    await s.level(0, at=T + timedelta(seconds=1))

    await s.settle()
    listing = await s.listing()
    assert (await s.on_hand(), s.channel.level, listing.remote_qty, listing.drift_qty) == (0, 0, 0, 0)
    assert channel_moves(await s.booked()) == [("sale", -1)] * 3
    assert s.channel.pushes[-1].change_from == 0  # the doubt was verified by compare-and-set


async def test_shopify_level_delivered_late_after_a_restock_is_covered(make_nexus: MakeNexus) -> None:
    # The store sells 1; our compare-and-set restock is refused and books the sale; we push the
    # restock; the sale's level webhook, stamped before that push, arrives. It used to book -3.
    s = await Scenario.start(make_nexus, 10, **SHOPIFY)
    sold_at = s.channel.sell()
    s.channel.stamp = T + timedelta(seconds=1)
    await s.nexus.product("S").adjust(3, reason="restock")
    await s.settle()  # refused (the store shows 9): -1 booked; then 12 from 9 lands
    assert (s.channel.level, await s.on_hand()) == (12, 12)

    late = await s.level(sold_at, at=T)
    assert (late.stale, late.changes) == (1, [])
    await s.order("o1", 1, at=T)  # the order explains the drop booked by the refusal

    assert await s.settle() == 0
    listing = await s.listing()
    assert (await s.on_hand(), s.channel.level, listing.remote_qty, listing.drift_qty) == (12, 12, 12, 0)
    assert channel_moves(await s.booked()) == [
        ("channel_adjustment", -1),
        ("sale", -1),
        ("channel_adjustment", 1),
    ]


async def test_amazon_sale_written_over_by_our_push_is_booked_from_its_late_notification(
    make_nexus: MakeNexus,
) -> None:
    # Amazon sells 1; Nexus patches an absolute restock over it; the quantity notification,
    # stamped before the patch, arrives afterwards. It used to be discarded: the sale was lost.
    s = await Scenario.start(make_nexus, 10, **AMAZON)
    sold_at = now()
    shown = s.channel.sell()
    await asyncio.sleep(0.005)
    await s.nexus.product("S").adjust(3, reason="restock")
    await s.push()
    assert s.channel.level == 13  # the sale is written over on Amazon
    assert s.channel.applied_at is not None
    echo_at = s.channel.applied_at

    late = await s.level(shown, at=sold_at)
    assert [c.delta for c in late.changes] == [-1]
    echo = await s.level(13, at=echo_at)
    assert (echo.echoes, echo.changes) == (1, [])

    await s.settle()
    assert (await s.on_hand(), s.channel.level) == (12, 12)
    assert channel_moves(await s.booked()) == [("channel_adjustment", -1)]


async def test_amazon_late_report_of_an_older_push_is_its_echo(make_nexus: MakeNexus) -> None:
    # We push 15, then 14; the report of 15 arrives after the answer to 14, then the report of
    # 14. The first used to be booked +1 and the second dismissed.
    s = await Scenario.start(make_nexus, 10, **AMAZON)
    sold_at = now()
    await s.level(s.channel.sell(), at=sold_at)  # a sale, reported (and booked) before our pushes
    await asyncio.sleep(0.005)
    await s.nexus.product("S").update_inventory(quantity=15)
    await s.push()
    first = s.channel.applied_at
    await asyncio.sleep(0.005)
    await s.nexus.product("S").update_inventory(quantity=14)
    await s.push()
    second_at = s.channel.applied_at
    assert first is not None and second_at is not None

    for quantity, at in ((15, first), (14, second_at)):
        outcome = await s.level(quantity, at=at)
        assert (outcome.echoes, outcome.changes) == (1, [])
    assert await s.settle() == 0
    listing = await s.listing()
    assert (await s.on_hand(), s.channel.level, listing.remote_qty) == (14, 14, 14)
    assert channel_moves(await s.booked()) == [("channel_adjustment", -1)]


async def test_woocommerce_order_for_a_sale_our_push_wrote_over_is_pushed_again(
    make_nexus: MakeNexus,
) -> None:
    # A sale, then our absolute push (stamped a second later) writes over it, then its order
    # arrives. The order used to lower the belief below what the channel showed; the next level
    # report then looked like +1.
    s = await Scenario.start(make_nexus, 10, **WOOCOMMERCE)
    s.channel.sell()
    s.channel.stamp = T + timedelta(seconds=1)
    await s.nexus.product("S").adjust(3, reason="restock")
    await s.push()
    assert s.channel.level == 13

    await s.order("o1", 1, at=T)
    listing = await s.listing()
    assert (await s.on_hand(), listing.remote_qty, listing.desired_qty) == (12, 13, 12)
    echo = await s.level(13, at=T + timedelta(seconds=2))  # a later report: the product unchanged
    assert echo.changes == []

    await s.settle()
    assert (await s.on_hand(), s.channel.level) == (12, 12)
    assert channel_moves(await s.booked()) == [("sale", -1)]


async def test_a_higher_reading_never_cancels_recorded_drift(make_nexus: MakeNexus) -> None:
    s = await Scenario.start(make_nexus, 10, **SHOPIFY)
    s.channel.sell(2)
    drop = await s.level(8, at=second(T))
    assert [c.delta for c in drop.changes] == [-2]
    older = await s.level(9, at=second(T, -1))  # an older report, delivered late
    assert older.changes == []
    assert (await s.listing()).drift_qty == -2
    await s.order("o1", 1, at=second(T, -1))
    await s.order("o2", 1, at=second(T))
    await s.settle()
    listing = await s.listing()
    assert (await s.on_hand(), s.channel.level, listing.drift_qty) == (8, 8, 0)
    assert sum(delta for _, delta in channel_moves(await s.booked())) == -2


AMAZON_BOTH = {"compare_and_set": False, "stamp_precision": 0.001, "levels_book_sales": True}


async def test_amazon_sale_in_a_push_flight_leaving_the_pushed_quantity_is_booked_from_its_order(
    make_nexus: MakeNexus,
) -> None:
    # The race the four-channel demo soak found (11 runs in 100 before this): a sale elsewhere
    # makes Nexus push 9 to Amazon; during that push Amazon sells 1 of its 10, leaving 9; the
    # push changes nothing. The one quantity report (9) is the same as the push's own report
    # would be: only ORDER_CHANGE tells that a sale happened.
    s = await Scenario.start(make_nexus, 10, **AMAZON_BOTH)
    await s.nexus.product("S").adjust(-1, reference="sold on another channel")
    s.channel.sale_in_flight = 1  # Amazon's sale lands first ...
    await s.push()  # ... then our 9, a no-op
    assert s.channel.level == 9 and s.channel.sold_in_flight_at is not None
    in_flight = s.channel.sold_in_flight_at
    report = await s.level(9, at=in_flight)
    assert report.changes == []  # taken for the push's own report: nothing booked from it

    # The order is stamped during the push's flight: it waits until the push's report can no
    # longer change (echo_wait), then it is booked.
    s.nexus.settings.channels["c"].echo_wait = 0.0
    s.nexus.channel("c").__dict__.pop("semantics", None)
    order = await s.order("o1", 1, at=in_flight)
    assert [c.delta for c in order.changes] == [-1]
    await s.settle()
    assert (await s.on_hand(), s.channel.level) == (8, 8)
    assert channel_moves(await s.booked()) == [("sale", -1)]
