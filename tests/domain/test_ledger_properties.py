"""The ledger, driven through the public API with random sequences of changes.

After every step: on_hand is the sum of the ledger, each movement's on_hand_after is the running
sum, a repeated idempotency key changed nothing at all, and every listing shows
allocate(on_hand - reserved, its channel's rule) and is dirty exactly while the channel differs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexus.config import AllocationRule
from nexus.domain.allocation import allocate
from nexus.engine import Nexus
from tests.domain.domain_kit import State, level, sale, seed, state

CHANNELS: dict[str, dict[str, Any]] = {
    "plain": {"driver": "unused"},
    "half": {"driver": "unused", "allocation": {"percentage": 50, "buffer": 1}},
    "capped": {"driver": "unused", "allocation": {"zero_at": 2, "max": 6}},
    "pinned": {"driver": "unused", "allocation": {"fixed": 4}},
}
RULES = {name: AllocationRule(**config.get("allocation", {})) for name, config in CHANNELS.items()}
KEYS = st.none() | st.integers(min_value=0, max_value=3)  # a small pool: keys repeat often

api_steps = st.one_of(
    st.tuples(st.just("adjust"), st.integers(min_value=-15, max_value=15), KEYS),
    st.tuples(st.just("set"), st.integers(min_value=0, max_value=40), KEYS),
)
channel_steps = st.one_of(
    # (a sale on a channel, idempotent by order id; an absolute level observed on a channel)
    st.tuples(st.just("sale"), st.sampled_from(sorted(CHANNELS)), st.integers(1, 5), st.integers(0, 3)),
    st.tuples(st.just("level"), st.sampled_from(sorted(CHANNELS)), st.integers(0, 30)),
)
remote_quantities = st.fixed_dictionaries({name: st.none() | st.integers(0, 30) for name in CHANNELS})

_examples = itertools.count()


@pytest.fixture
async def nexus(make_nexus: Callable[..., Any]) -> Nexus:
    # One engine for the whole property test; each example works on its own SKU.
    engine: Nexus = await make_nexus(channels=CHANNELS)
    return engine


def check_invariants(current: State) -> None:
    assert current.on_hand == current.ledger_sum
    running = 0
    for movement in current.movements:
        running += movement.delta
        assert movement.on_hand_after == running
    available = current.on_hand - current.reserved
    for channel, listing in current.listings.items():
        assert listing.desired_qty == allocate(available, RULES[channel]), channel
        in_sync = (
            listing.remote_qty is not None
            and listing.remote_qty == listing.desired_qty
            and not listing.verify_pending
        )
        assert (listing.dirty_since is None) == in_sync, channel


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(min_value=0, max_value=30),
    remotes=remote_quantities,
    steps=st.lists(api_steps, min_size=1, max_size=10),
)
async def test_api_changes_keep_the_ledger_and_listings_consistent(
    nexus: Nexus, start: int, remotes: dict[str, int | None], steps: list[tuple[str, int, int | None]]
) -> None:
    example = next(_examples)
    sku = f"P{example}"
    await seed(nexus, sku, start, remotes)
    after = await state(nexus, sku)
    check_invariants(after)
    expected = start
    used: set[str] = set()
    for kind, value, key_index in steps:
        key = None if key_index is None else f"{sku}:key-{key_index}"
        before = after
        product = nexus.product(sku)
        if kind == "adjust":
            result = await product.adjust(value, reference="property", idempotency_key=key)
        else:
            result = await product.update_inventory(quantity=value, idempotency_key=key)
        after = await state(nexus, sku)
        if key is not None and key in used:
            assert not result.applied
            assert after.snapshot() == before.snapshot()
        else:
            expected = expected + value if kind == "adjust" else value
            assert result.applied
            assert result.on_hand == expected
            assert len(after.movements) == len(before.movements) + 1
            assert after.movements[-1].delta == expected - before.on_hand
            if key is not None:
                used.add(key)
        assert after.on_hand == expected
        check_invariants(after)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(min_value=0, max_value=30),
    remotes=remote_quantities,
    steps=st.lists(st.one_of(api_steps, channel_steps), min_size=1, max_size=10),
)
async def test_channel_sales_and_levels_keep_the_ledger_consistent(
    nexus: Nexus, start: int, remotes: dict[str, int | None], steps: list[tuple[Any, ...]]
) -> None:
    example = next(_examples)
    sku = f"C{example}"
    await seed(nexus, sku, start, remotes)
    after = await state(nexus, sku)
    for number, step in enumerate(steps):
        before = after
        if step[0] == "sale":
            _, channel, quantity, order = step
            outcome = await sale(nexus, channel, sku, quantity, order=f"{sku}-{order}")
            after = await state(nexus, sku)
            was, now = before.listing(channel), after.listing(channel)
            if outcome.duplicates:
                # The same order line twice: nothing moves, not even the channel's believed level.
                assert after.snapshot() == before.snapshot()
            else:
                # The ledger books the sale itself; any drift it explains is given back.
                sold = [m for m in after.movements[len(before.movements) :] if m.reason == "sale"]
                assert [m.delta for m in sold] == [-quantity]
                absorbed = min(quantity, -was.drift_qty)
                assert after.on_hand - before.on_hand == absorbed - quantity
                assert now.drift_qty == was.drift_qty + absorbed
                if was.remote_qty is not None:
                    # The rest of the sale moves the belief (this channel verifies its pushes).
                    assert now.remote_qty == was.remote_qty - (quantity - absorbed)
        elif step[0] == "level":
            _, channel, quantity = step
            await level(nexus, channel, sku, quantity, key=f"{sku}-{number}")
            after = await state(nexus, sku)
            was, now = before.listing(channel), after.listing(channel)
            booked = after.on_hand - before.on_hand
            if was.remote_qty is not None and quantity < was.remote_qty:
                # A drop: booked as drift, and believed.
                assert (now.remote_qty, booked) == (quantity, quantity - was.remote_qty)
                assert now.drift_qty == was.drift_qty + booked
            else:
                # Nothing new, or not comparable: nothing booked; a disagreement is verified.
                assert (now.remote_qty, booked) == (was.remote_qty, 0)
                assert now.verify_pending == (was.verify_pending or quantity != was.remote_qty)
        else:
            kind, value, key_index = step
            key = None if key_index is None else f"{sku}:key-{key_index}"
            product = nexus.product(sku)
            if kind == "adjust":
                await product.adjust(value, idempotency_key=key)
            else:
                await product.update_inventory(quantity=value, idempotency_key=key)
            after = await state(nexus, sku)
        for listing in after.listings.values():
            assert listing.drift_qty <= 0  # drift is an unexplained *decrease*
        check_invariants(after)
