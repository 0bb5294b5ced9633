"""Faults of the channel, end to end over loopback HTTP: a Shopify sandbox that answers 5xx for a
while, applies pushes and then loses their answers, throttles with a storm of 429s, and drops,
duplicates, reorders and delays its webhooks. Nexus runs as a service (push workers, webhook
processor, web app receiving the signed webhooks) in the test's event loop, on SQLite, while
sales happen on the store and counter sales and restocks in Nexus.

Each test ends converged (the store shows what Nexus wants, every listing clean, nothing
dead-lettered) with a ledger that adds up (on_hand = the sum of the SKU's movements = starting
stock + what happened in Nexus - what sold on the store, each sale counted once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from nexus.domain.reconcile import Finding
from nexus.sandbox.delivery import Faults
from nexus.sandbox.shopify import ShopifySandbox
from tests.faults.faults_kit import (
    CHANNEL,
    assert_converged_and_ledger_adds_up,
    converge,
    fault_seeds,
    shop_rig,
)

pytestmark = pytest.mark.slow

# One seed in `make test`; NEXUS_FAULT_SEEDS=1-10 runs ten (the flakiness check).
SEEDS = fault_seeds()


async def _until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_channel_answering_5xx_for_a_while(make_nexus: Callable[..., Any], seed: int) -> None:
    sandbox = ShopifySandbox(seed=seed, access_token="shpat_t", webhook_secret="whsec")
    # Backoff 0.1 s doubling to 1 s: eight attempts span ~4.5 s, longer than the 2 s outage.
    worker = {"backoff_base": 0.1, "backoff_max": 1.0}
    async with shop_rig(make_nexus, sandbox, seed=seed, worker=worker) as rig:
        nexus, known = rig.nexus, rig.truth
        before = sandbox.stats.mutations

        outage_ends = time.monotonic() + 2.0
        sandbox.fail_next(100_000, status=503)  # every request, until heal()
        while time.monotonic() < outage_ends:
            await known.sell(sandbox, 2)
            await known.counter(nexus, 1)
            await asyncio.sleep(0.1)
        sandbox.heal()
        assert sandbox.stats.failed >= 3, "the outage saw no request; nothing was tested"
        assert sandbox.stats.mutations == before  # nothing got through during the outage

        await known.sell(sandbox, 5)
        await converge(nexus, sandbox)
        await assert_converged_and_ledger_adds_up(nexus, sandbox, known)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", [502, None], ids=["5xx", "dropped"])
async def test_a_push_applied_whose_answer_is_lost_is_not_booked_as_a_sale(
    make_nexus: Callable[..., Any], seed: int, answer: int | None
) -> None:
    # The retry waits 0.3 s, so a storefront sale lands between the lost answer and the retry:
    # the store then shows neither what Nexus believed before the push nor what it pushed.
    sandbox = ShopifySandbox(seed=seed, access_token="shpat_t", webhook_secret="whsec")
    worker = {"backoff_base": 0.3, "backoff_max": 1.0}
    async with shop_rig(make_nexus, sandbox, seed=seed, worker=worker, channel={"batch_size": 4}) as rig:
        nexus, known = rig.nexus, rig.truth

        for round_ in range(6):
            sandbox.lose_next(1, status=answer)
            changed = known.rng.sample(known.skus, 3)
            for sku in changed:  # counter sales make these listings dirty: the next push loses its answer
                await nexus.product(sku).adjust(-1, reason="sale", reference=f"counter-{round_}")
                known.local[sku] -= 1
            await _until(lambda n=round_: sandbox.stats.answers_lost > n, timeout=10, what="a lost answer")
            for sku in changed:  # sold on the store before Nexus retries
                if await sandbox.simulate_sale(sku, 1) is not None:
                    known.sold[sku] += 1
            await known.sell(sandbox, 2)
        await converge(nexus, sandbox)
        assert sandbox.stats.answers_lost == 6
        await assert_converged_and_ledger_adds_up(nexus, sandbox, known)


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_429_storm(make_nexus: Callable[..., Any], seed: int) -> None:
    sandbox = ShopifySandbox(seed=seed, access_token="shpat_t", webhook_secret="whsec")
    worker = {"concurrency": 2, "backoff_base": 0.1, "backoff_max": 1.0}
    async with shop_rig(make_nexus, sandbox, seed=seed, worker=worker, channel={"batch_size": 5}) as rig:
        nexus, known = rig.nexus, rig.truth
        before = dict(sandbox.stats.set_count_by_sku)

        # Forty bare 429s in a row (a proxy in front of the API), each asking for 0.05 s.
        sandbox.fail_next(40, status=429, retry_after=0.05)
        for _ in range(10):
            await known.sell(sandbox, 2)
            await known.counter(nexus, 2)
            await asyncio.sleep(0.05)
        await converge(nexus, sandbox)
        assert sandbox.stats.throttled == 40, "the storm did not blow over"
        await assert_converged_and_ledger_adds_up(nexus, sandbox, known)
        # A refused request changed nothing: no listing was set more often than it changed.
        pushes = {sku: n - before.get(sku, 0) for sku, n in sandbox.stats.set_count_by_sku.items()}
        assert sum(pushes.values()) <= 40, pushes


@pytest.mark.parametrize("seed", SEEDS)
async def test_webhooks_dropped_duplicated_reordered_and_delayed(
    make_nexus: Callable[..., Any], seed: int
) -> None:
    sandbox = ShopifySandbox(
        seed=seed,
        access_token="shpat_t",
        webhook_secret="whsec",
        webhook_concurrency=4,
        webhook_retry_base_seconds=0.2,
    )
    async with shop_rig(make_nexus, sandbox, seed=seed) as rig:
        nexus, known = rig.nexus, rig.truth
        # Each delivery waits up to 0.5 s (delayed, and so reordered), one in five is lost,
        # one in three comes twice.
        sandbox.webhooks.faults = Faults(drop_rate=0.2, duplicate_rate=0.3, reorder=True, reorder_window=0.5)
        for _ in range(8):
            await known.sell(sandbox, 4)
            await known.counter(nexus, 2)
            await asyncio.sleep(0.1)
        await converge(nexus, sandbox, levels=False)  # quiet; the dropped sales are unknown yet
        stats = sandbox.stats
        assert stats.webhooks_dropped > 0 and stats.webhooks_duplicated > 0, stats

        # Quiet now, but the sales whose webhooks were dropped are unknown to Nexus: one cycle
        # finds and books them (each once), and the workers push the result everywhere.
        cycle = await nexus.reconciler(CHANNEL).cycle()
        assert cycle.read == len(known.skus)
        assert not cycle.findings.get(Finding.PUSHED), cycle.findings  # nothing but dropped sales
        await converge(nexus, sandbox)
        await assert_converged_and_ledger_adds_up(nexus, sandbox, known)
        assert await nexus.reconciler(CHANNEL).differences() == []
