"""Pipelined push rounds: a channel keeps as many rounds in flight as its driver allows
(`DriverCapabilities.max_in_flight`, overridden by `worker.concurrency`), each round its own
claim, so no listing is ever in two rounds, and shutdown still gives back what is in flight.

The proof holds pushes open on a MemoryChannel (`gate`) and counts: rounds at the channel at
once, and the rounds each listing was sent in. Nothing here is timed."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nexus.runtime import rounds_in_flight, running
from nexus.testing import MemoryChannel
from tests.sync.sync_kit import Engine

MakeEngine = Callable[..., Any]

SKUS = {f"S{i}": 10 for i in range(9)}  # three rounds of three (the kit's batch size)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition`; the bound only turns a hang into a failure (nothing is timed)."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def settled(engine: Engine) -> None:
    """Wait until no listing is queued or leased any more."""
    for _ in range(1500):
        listings = await engine.listings()
        if all(listing.dirty_since is None and listing.lease_owner is None for listing in listings):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("listings still queued or leased")


async def pipelined_engine(make_engine: MakeEngine, **settings: Any) -> tuple[Engine, MemoryChannel]:
    engine: Engine = await make_engine(driver={"max_in_flight": 2}, **settings)
    # The channel shows 0 of everything, so every listing is queued for a push.
    await engine.seed(SKUS, remote=0)
    driver = engine.driver()
    driver.gate = asyncio.Event()
    return engine, driver


async def test_two_rounds_of_one_channel_are_in_flight_at_once_and_no_listing_is_in_two(
    make_engine: MakeEngine,
) -> None:
    engine, driver = await pipelined_engine(make_engine, worker={"poll_interval": 0.05})
    async with running(engine.nexus, web=False):
        engine.nexus.notify()
        # Both rounds reach the channel while neither has been answered.
        await until(lambda: len(driver.push_calls) == 2)
        first, second = ({u.listing_id for u in call} for call in driver.push_calls)
        assert len(first) == len(second) == 3 and not first & second
        leased = [listing for listing in await engine.listings() if listing.lease_owner is not None]
        assert len(leased) == 6 and len({listing.lease_owner for listing in leased}) == 2
        # Nothing else is claimed meanwhile: the third round waits for a free slot.
        assert len(driver.push_calls) == 2

        assert driver.gate is not None
        driver.gate.set()
        await settled(engine)

    sent = Counter(u.listing_id for call in driver.push_calls for u in call)
    assert sorted(sent.values()) == [1] * len(SKUS)  # every listing in exactly one round
    listings = await engine.listings()
    assert all(listing.dirty_since is None and listing.lease_owner is None for listing in listings)
    assert {listing.sku: driver.levels[listing.remote_id] for listing in listings} == SKUS


async def test_worker_concurrency_overrides_what_the_channel_allows(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(driver={"max_in_flight": 3})
    assert rounds_in_flight(engine.nexus, "m") == 3
    assert rounds_in_flight(engine.nexus, "m", concurrency=1) == 1

    forced: Engine = await make_engine(driver={"max_in_flight": 3}, worker={"concurrency": 1})
    assert rounds_in_flight(forced.nexus, "m") == 1
    async with running(forced.nexus, web=False, channels=["m"]) as service:
        pushes = sorted(t.get_name() for t in service.tasks if t.get_name().startswith("push:"))
    assert pushes == ["push:m:0"]


async def test_shutdown_past_its_grace_gives_back_every_round_in_flight(make_engine: MakeEngine) -> None:
    engine, driver = await pipelined_engine(make_engine, worker={"shutdown_grace": 0.05})
    async with running(engine.nexus, web=False):
        engine.nexus.notify()
        await until(lambda: len(driver.push_calls) == 2)
    # Both rounds were cancelled mid-push: sent, fate unknown, so each listing keeps its owner
    # with its lease already over (the next holder reads the channel first); none stays leased.
    now = datetime.now(UTC)
    listings = await engine.listings()
    sent = [listing for listing in listings if listing.lease_owner is not None]
    assert len(sent) == 6 and len({listing.lease_owner for listing in sent}) == 2
    assert all(listing.lease_until is not None and listing.lease_until <= now for listing in sent)
    assert all(listing.dirty_since is not None for listing in listings)
