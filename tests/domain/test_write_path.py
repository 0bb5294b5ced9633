"""The one write path and the inbound events that feed it: sales, observed levels, echoes, drift,
stale observations, in-flight pushes and push priority."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from nexus.domain.inbound import ListingBusy
from nexus.domain.stock import StockChange
from nexus.domain.vocabulary import MovementReason, Priority
from nexus.drivers.contract import ListingRef, ObservedLevel, SaleEvent
from nexus.errors import UnknownSkuError
from nexus.events import InventoryUpdated
from nexus.storage.models import ChannelMapping
from tests.domain.domain_kit import build, inbound, level, ref, sale, seed, state

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)

MakeNexus = Callable[..., Any]


def changes_since_start(movements: list[Any]) -> list[tuple[str, int]]:
    return [(m.reason, m.delta) for m in movements if m.idempotency_key != f"initial:{m.sku}"]


# -- sales ------------------------------------------------------------------------------------


async def test_a_sale_on_a_channel_moves_that_listing_and_dirties_the_others(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)
    seen: list[InventoryUpdated] = []
    nexus.events.listen(InventoryUpdated, seen.append)
    await seed(nexus, "S", 10, {"a": 10, "b": 10})

    outcome = await sale(nexus, "a", "S", 2, order="1001")

    after = await state(nexus, "S")
    assert after.on_hand == 8
    assert changes_since_start(after.movements) == [("sale", -2)]
    assert after.movements[-1].channel == "a"
    # The selling channel already shows 8: nothing to push back to it.
    a, b = after.listing("a"), after.listing("b")
    assert (a.desired_qty, a.remote_qty, a.dirty_since) == (8, 8, None)
    # Every other channel must hear about it.
    assert (b.desired_qty, b.remote_qty) == (8, 10)
    assert b.dirty_since is not None
    assert [r.dirty_listing_ids for r in outcome.changes] == [[b.id]]
    assert [(e.sku, e.previous_on_hand, e.on_hand, e.delta, e.channel) for e in seen] == [
        ("S", 10, 8, -2, "a")
    ]


async def test_the_same_order_line_twice_is_counted_once(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10, "b": 10})
    await sale(nexus, "a", "S", 2, order="1001")
    before = await state(nexus, "S")

    again = await sale(nexus, "a", "S", 2, order="1001")

    assert again.duplicates == 1
    assert again.changes == []
    assert (await state(nexus, "S")).snapshot() == before.snapshot()
    # Another line of the same order is another sale.
    await sale(nexus, "a", "S", 1, order="1001", line="2")
    assert (await state(nexus, "S")).on_hand == 7


async def test_a_sale_of_a_sku_not_linked_on_that_channel_still_leaves_the_shelf(
    make_nexus: MakeNexus,
) -> None:
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10})
    event = SaleEvent(
        ListingRef(remote_id="unknown-variant", remote_sku="S"), quantity=3, order_id="7", line_id="1"
    )

    await inbound(nexus, "b", [event], key="d-1")

    after = await state(nexus, "S")
    assert after.on_hand == 7
    assert after.listing("a").desired_qty == 7
    assert after.listing("a").dirty_since is not None


async def test_events_for_unknown_listings_are_reported_and_change_nothing(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10})
    before = await state(nexus, "S")
    events = [
        ObservedLevel(ListingRef(remote_id="nope"), quantity=3),
        SaleEvent(
            ListingRef(remote_id="nope", remote_sku="NOT-A-SKU"), quantity=1, order_id="1", line_id="1"
        ),
    ]

    outcome = await inbound(nexus, "a", events, key="d-1")

    assert outcome.unmatched == ["remote_id=nope", "remote_id=nope, sku=NOT-A-SKU"]
    assert (await state(nexus, "S")).snapshot() == before.snapshot()


async def test_a_change_to_an_unknown_sku_is_refused_and_writes_nothing(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)
    with pytest.raises(UnknownSkuError):
        await nexus.product("GHOST").adjust(-1)
    await seed(nexus, "GHOST", 0, {})
    assert (await state(nexus, "GHOST")).movements == []


def test_a_stock_change_takes_exactly_one_of_delta_and_quantity() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        StockChange(sku="S", reason=MovementReason.ADJUSTMENT, idempotency_key="k", delta=1, quantity=3)
    with pytest.raises(ValueError, match="exactly one"):
        StockChange(sku="S", reason=MovementReason.ADJUSTMENT, idempotency_key="k")
    with pytest.raises(ValueError, match="negative"):
        StockChange(sku="S", reason=MovementReason.ADJUSTMENT, idempotency_key="k", quantity=-1)


# -- observed levels ----------------------------------------------------------------------------


async def test_an_observed_level_equal_to_what_the_channel_shows_is_an_echo(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10, "b": 10})
    before = await state(nexus, "S")

    outcome = await level(nexus, "a", "S", 10)

    assert outcome.echoes == 1
    assert outcome.changes == []
    assert (await state(nexus, "S")).snapshot() == before.snapshot()


async def test_a_late_report_of_our_own_push_after_a_sale_is_verified_not_booked(
    make_nexus: MakeNexus,
) -> None:
    nexus, drivers = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10, "b": 10})
    await nexus.product("S").adjust(-2, reason="sale", reference="shop order")
    drivers["a"].stamp = T0  # the channel stamps the push's landing
    assert (await nexus.push_worker("a").run_once()).ok == 1  # type: ignore[union-attr]
    await sale(nexus, "a", "S", 1, order="77", at=T0 + timedelta(seconds=1))  # the channel shows 7
    before = await state(nexus, "S")
    assert (before.listing("a").pushed_qty, before.listing("a").remote_qty) == (8, 7)

    # The inventory webhook of our push, stamped when it landed: it cannot be placed against the
    # sale by its stamp alone, disagrees with the belief, and is verified, never booked.
    outcome = await level(nexus, "a", "S", 8, at=T0)

    assert (outcome.in_doubt, outcome.changes) == (1, [])
    after = await state(nexus, "S")
    assert (after.on_hand, [m.id for m in after.movements]) == (
        before.on_hand,
        [m.id for m in before.movements],
    )
    assert after.listing("a").verify_pending and after.listing("a").dirty_since is not None
    # The verification is a compare-and-set push from what we believe (7); the channel agrees.
    assert (await nexus.push_worker("a").run_once()).ok == 1  # type: ignore[union-attr]
    assert drivers["a"].push_calls[-1][0].change_from == 7
    settled = (await state(nexus, "S")).listing("a")
    assert (settled.remote_qty, settled.verify_pending, settled.dirty_since) == (7, False, None)


@pytest.mark.parametrize("order_first", [False, True], ids=["level-then-order", "order-then-level"])
# (the level webhook saw exactly the order, less than the order, or more than the order)
@pytest.mark.parametrize(("observed_drop", "sold"), [(3, 3), (3, 5), (3, 1)])
async def test_drift_and_the_order_that_explains_it_count_the_sale_once(
    make_nexus: MakeNexus, order_first: bool, observed_drop: int, sold: int
) -> None:
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10, "b": 10})

    if order_first:
        await sale(nexus, "a", "S", sold, order="500")
        # The level webhook that follows reports what the channel shows after the order: an echo.
        echo = await level(nexus, "a", "S", 10 - sold, key="lvl")
        assert echo.echoes == 1
    else:
        # The level webhook arrives first: an unexplained drop, booked as drift.
        first = await level(nexus, "a", "S", 10 - observed_drop, key="lvl")
        assert [c.delta for c in first.changes] == [-observed_drop]
        mid = await state(nexus, "S")
        assert mid.listing("a").drift_qty == -observed_drop
        assert mid.movements[-1].reason == MovementReason.CHANNEL_ADJUSTMENT
        await sale(nexus, "a", "S", sold, order="500")

    after = await state(nexus, "S")
    assert after.on_hand == 10 - (sold if order_first else max(sold, observed_drop))
    assert after.ledger_sum == after.on_hand
    a = after.listing("a")
    if sold >= observed_drop or order_first:
        # Everything the channel lost is explained by the order: the ledger nets to the sale.
        assert sum(delta for _, delta in changes_since_start(after.movements)) == -sold
        assert a.drift_qty == 0
    else:
        # The order explains only part of the drop; the rest stays booked as drift.
        assert a.drift_qty == -(observed_drop - sold)
    assert [d for r, d in changes_since_start(after.movements) if r == "sale"] == [-sold]
    assert a.remote_qty == a.desired_qty == after.on_hand
    assert a.dirty_since is None
    assert after.listing("b").desired_qty == after.on_hand


async def test_a_second_delivery_of_the_same_order_does_not_absorb_drift_twice(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10})
    await level(nexus, "a", "S", 6, key="lvl")  # 4 units gone, no order yet
    await sale(nexus, "a", "S", 2, order="1")
    await sale(nexus, "a", "S", 2, order="1")  # redelivered
    after = await state(nexus, "S")
    assert after.on_hand == 6
    assert after.listing("a").drift_qty == -2
    await sale(nexus, "a", "S", 2, order="2")  # the rest of the drop
    after = await state(nexus, "S")
    assert (after.on_hand, after.listing("a").drift_qty) == (6, 0)
    assert sum(delta for _, delta in changes_since_start(after.movements)) == -4


async def test_an_observed_increase_is_verified_not_booked(make_nexus: MakeNexus) -> None:
    # Between our pushes only sales move a channel's level: a higher reading is older than what we
    # know, or a merchant's edit. Either way a compare-and-set push from our belief finds out
    # (refused: the stale path books the real difference), so nothing is booked from it.
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10, "b": 10})
    outcome = await level(nexus, "a", "S", 13)
    after = await state(nexus, "S")
    assert (outcome.in_doubt, after.on_hand, changes_since_start(after.movements)) == (1, 10, [])
    assert after.listing("a").verify_pending
    assert after.listing("a").dirty_since is not None
    assert after.listing("b").dirty_since is None


async def test_a_level_for_a_listing_never_read_is_not_learned(make_nexus: MakeNexus) -> None:
    # Learning it would let an order still on its way for a sale before the reading count twice:
    # the listing is pushed instead, and the push's answer is what we then believe.
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": None})
    await level(nexus, "a", "S", 4)
    after = await state(nexus, "S")
    assert after.on_hand == 10
    assert changes_since_start(after.movements) == []
    assert after.listing("a").remote_qty is None
    assert after.listing("a").dirty_since is not None
    await nexus.push_worker("a").run_once()
    assert (await state(nexus, "S")).listing("a").remote_qty == 10


async def test_levels_between_pushes_are_ordered_by_value_not_by_stamp(make_nexus: MakeNexus) -> None:
    # Whole-second stamps cannot order two reports of the same second; between our pushes the
    # level only falls, so the lower report is the later one whatever its stamp says.
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10, "b": 10})
    await level(nexus, "a", "S", 8, at=T0)
    before = await state(nexus, "S")
    assert (before.on_hand, before.listing("a").drift_qty) == (8, -2)

    older = await level(nexus, "a", "S", 9, at=T0 - timedelta(seconds=5))
    assert (older.in_doubt, older.changes) == (1, [])  # higher: older, verified, not booked
    same_second = await level(nexus, "a", "S", 3, at=T0)
    assert [c.delta for c in same_second.changes] == [-5]
    after = await state(nexus, "S")
    assert (after.on_hand, after.listing("a").remote_qty, after.listing("a").drift_qty) == (3, 3, -7)


async def test_an_observation_older_than_our_acknowledged_push_is_ignored(make_nexus: MakeNexus) -> None:
    nexus, drivers = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10})
    await nexus.product("S").update_inventory(quantity=6)
    drivers["a"].stamp = T0
    await nexus.push_worker("a").run_once()
    before = await state(nexus, "S")
    assert before.listing("a").remote_qty == 6

    outcome = await level(nexus, "a", "S", 10, at=T0 - timedelta(seconds=1))  # the level before our push

    assert outcome.stale == 1
    assert (await state(nexus, "S")).snapshot() == before.snapshot()


# -- leases and in-flight pushes ------------------------------------------------------------------


async def test_a_level_for_a_leased_listing_is_refused_whole_and_retried_later(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10})
    await nexus.product("S").adjust(-1)
    claimed = await nexus.push_worker("a").claim(10)
    assert [c.sku for c in claimed] == ["S"]
    before = await state(nexus, "S")

    with pytest.raises(ListingBusy):
        await inbound(
            nexus, "a", [SaleEvent(ref("a", "S"), 1, "9", "1"), ObservedLevel(ref("a", "S"), 4)], "d"
        )

    # The whole delivery rolled back, the sale in it too: a retry of the delivery is exact.
    assert (await state(nexus, "S")).snapshot() == before.snapshot()
    async with nexus.db.transaction() as session:  # the lease expires (the worker died, or is late)
        await session.execute(
            update(ChannelMapping).values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    # Its push may still land and its answer still be written: the level keeps waiting...
    with pytest.raises(ListingBusy):
        await level(nexus, "a", "S", 4)
    assert (await state(nexus, "S")).snapshot() == before.snapshot()
    # ... until another worker takes the listing over and records its own push.
    taken_over = await nexus.push_worker("a").run_once()
    assert taken_over is not None and taken_over.ok == 1
    outcome = await level(nexus, "a", "S", 4)
    assert [c.delta for c in outcome.changes] == [-5]


async def test_a_level_waits_for_a_read_back_only_while_its_lease_is_live(make_nexus: MakeNexus) -> None:
    # A read-back changes nothing on the channel, so a reconciler that died must not hold the
    # channel's levels back until someone happens to take its listing over.
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10})

    async def read_back_lease(until: datetime) -> None:
        async with nexus.db.transaction() as session:
            await session.execute(
                update(ChannelMapping).values(lease_owner="reconciler", lease_until=until, sending_qty=None)
            )

    await read_back_lease(datetime.now(UTC) + timedelta(seconds=60))
    with pytest.raises(ListingBusy):
        await level(nexus, "a", "S", 7)
    await read_back_lease(datetime.now(UTC) - timedelta(seconds=1))
    outcome = await level(nexus, "a", "S", 7)
    assert [c.delta for c in outcome.changes] == [-3]


async def test_a_sale_during_an_absolute_push_leaves_the_level_unknown_until_pushed_again(
    make_nexus: MakeNexus,
) -> None:
    nexus, drivers = await build(make_nexus, compare_and_set=False)
    await seed(nexus, "S", 10, {"a": 10})
    await nexus.product("S").update_inventory(quantity=12)
    driver = drivers["a"]
    driver.gate = asyncio.Event()

    push = asyncio.create_task(nexus.push_worker("a").run_once())
    await driver.entered.wait()
    assert [u.quantity for u in driver.push_calls[0]] == [12]
    # The channel applied our 12, then sold one: it shows 11, and says so in the order webhook.
    await sale(nexus, "a", "S", 1, order="during-push")
    mid = await state(nexus, "S")
    assert mid.listing("a").inflight_delta == -1
    driver.gate.set()
    outcome = await push

    assert outcome is not None and outcome.ok == 1
    after = await state(nexus, "S")
    a = after.listing("a")
    assert after.on_hand == 11
    # This channel has no compare-and-set: nothing says whether the sale landed before our 12 (and
    # was written over) or after it, so its level is unknown and the listing is pushed once more,
    # with the absolute 11.
    assert (a.pushed_qty, a.remote_qty, a.desired_qty) == (12, None, 11)
    assert a.inflight_delta == 0
    assert a.dirty_since is not None
    again = await nexus.push_worker("a").run_once()
    assert again is not None and again.ok == 1
    assert [u.quantity for u in driver.push_calls[-1]] == [11]
    assert (await state(nexus, "S")).listing("a").dirty_since is None
    assert await nexus.push_worker("a").run_once() is None


# -- priority ---------------------------------------------------------------------------------------


async def test_going_into_low_stock_is_pushed_with_immediate_priority(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)  # low_stock_threshold defaults to 5
    await seed(nexus, "LOW", 20, {"a": 20, "b": 20})
    await seed(nexus, "MANY", 20, {"a": 20, "b": 20})

    await nexus.product("MANY").adjust(-5)
    await nexus.product("LOW").adjust(-5)
    assert {listing.priority for listing in (await state(nexus, "LOW")).listings.values()} == {
        Priority.NORMAL
    }
    await nexus.product("LOW").adjust(-10)  # 5 left: low stock

    low = await state(nexus, "LOW")
    assert {listing.priority for listing in low.listings.values()} == {Priority.IMMEDIATE}
    assert {listing.priority for listing in (await state(nexus, "MANY")).listings.values()} == {
        Priority.NORMAL
    }
    # The low-stock listings are claimed first although they became dirty later.
    claimed = await nexus.push_worker("a").claim(1)
    assert [c.sku for c in claimed] == ["LOW"]


async def test_a_dirty_listing_never_loses_urgency_until_pushed(make_nexus: MakeNexus) -> None:
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 20, {"a": 20})
    await nexus.product("S").update_inventory(quantity=0)
    await nexus.product("S").update_inventory(quantity=30)
    assert (await state(nexus, "S")).listing("a").priority == Priority.IMMEDIATE
    await nexus.push_worker("a").run_once()
    await nexus.product("S").update_inventory(quantity=25)
    assert (await state(nexus, "S")).listing("a").priority == Priority.NORMAL


async def test_a_level_reported_before_our_last_push_was_answered_is_stale_without_channel_timestamps(
    make_nexus: MakeNexus,
) -> None:
    # Amazon stamps nothing on a push's answer; its notifications carry EventTime. A notification
    # about a push we have since replaced must not be booked as a change made on the channel.
    nexus, _ = await build(make_nexus)
    await seed(nexus, "S", 10, {"a": 10})
    await nexus.product("S").update_inventory(quantity=12)
    await nexus.push_worker("a").run_once()
    before_push = datetime.now(UTC) - timedelta(seconds=5)
    await nexus.product("S").update_inventory(quantity=9)
    await nexus.push_worker("a").run_once()

    outcome = await level(nexus, "a", "S", 12, at=before_push)

    assert outcome.stale == 1 and outcome.changes == []
    after = await state(nexus, "S")
    assert after.on_hand == 9 and after.listing("a").remote_qty == 9
