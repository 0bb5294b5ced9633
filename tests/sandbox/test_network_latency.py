"""`latency_ms`, the fixed network delay every sandbox can add per request
(`nexus.sandbox.base.NetworkLatency`): the benchmarks use it to show a remote store's round trip.

No test here measures time: the delay's sleep is replaced by a gate the test opens itself, so what
is asserted is where requests wait, for how long they ask to, and that they wait side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from nexus.sandbox.amazon import AmazonSandbox
from nexus.sandbox.etsy import EtsySandbox
from nexus.sandbox.shopify import ShopifySandbox
from nexus.sandbox.woocommerce import WooCommerceSandbox

KINDS: dict[str, Callable[..., Any]] = {
    "shopify": ShopifySandbox,
    "woocommerce": WooCommerceSandbox,
    "etsy": EtsySandbox,
    "amazon": AmazonSandbox,
}


class Gate:
    """A stand-in for asyncio.sleep: records each requested delay and holds the caller until opened."""

    def __init__(self) -> None:
        self.requested: list[float] = []
        self.waiting = 0
        self.opened = asyncio.Event()
        self._changed = asyncio.Condition()

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        async with self._changed:
            self.waiting += 1
            self._changed.notify_all()
        try:
            await self.opened.wait()
        finally:
            self.waiting -= 1

    async def until_waiting(self, count: int) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self.waiting >= count)

        await asyncio.wait_for(wait(), 10)  # a hang guard, not a timing claim


@pytest.mark.parametrize("name", list(KINDS))
async def test_every_sandbox_delays_each_request_by_its_latency_side_by_side(name: str) -> None:
    sandbox = KINDS[name](seed=1, latency_ms=150)
    sandbox.seed_catalog(2, quantity=5)
    gate = Gate()
    sandbox.network.sleep = gate
    transport = httpx.ASGITransport(app=sandbox.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            sales = [
                asyncio.create_task(http.post("/_sandbox/sales", json={"sku": "SKU-000001"}))
                for _ in range(4)
            ]
            # All four wait on the way in at once (not one after another), and none has reached
            # the store yet: the sandbox sees a request only after the first half of the delay.
            await gate.until_waiting(4)
            assert gate.requested == [0.075] * 4
            assert sandbox.available("SKU-000001") == 5
            assert not any(task.done() for task in sales)
            gate.opened.set()
            answers = await asyncio.gather(*sales)
    finally:
        await sandbox.aclose()

    assert [answer.status_code for answer in answers] == [201] * 4
    assert sandbox.available("SKU-000001") == 1
    # The other half passes before each answer starts: 150 ms per request in all.
    assert gate.requested == [0.075] * 8


async def test_the_answer_waits_for_the_second_half_after_the_change_landed() -> None:
    sandbox = ShopifySandbox(seed=1, latency_ms=40)
    sandbox.seed_catalog(1, quantity=5)
    way_in = asyncio.Event()
    way_back = Gate()

    async def sleep(seconds: float) -> None:
        if not way_in.is_set():
            way_in.set()  # the first half: let it through
            return
        await way_back(seconds)

    sandbox.network.sleep = sleep
    transport = httpx.ASGITransport(app=sandbox.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            sale = asyncio.create_task(http.post("/_sandbox/sales", json={"sku": "SKU-000001"}))
            await way_back.until_waiting(1)
            # Applied in the store, the answer still on its way back.
            assert sandbox.available("SKU-000001") == 4
            assert not sale.done()
            way_back.opened.set()
            assert (await sale).status_code == 201
    finally:
        await sandbox.aclose()
    assert way_back.requested == [0.02]


@pytest.mark.parametrize("name", list(KINDS))
async def test_no_latency_by_default_and_it_can_be_turned_while_serving(name: str) -> None:
    sandbox = KINDS[name](seed=1)
    sandbox.seed_catalog(1, quantity=5)
    gate = Gate()
    gate.opened.set()
    sandbox.network.sleep = gate
    transport = httpx.ASGITransport(app=sandbox.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            before = await http.get("/_sandbox/latency")
            await http.get("/_sandbox/levels")
            assert gate.requested == []  # 0 ms: no wait at all
            changed = await http.put("/_sandbox/latency", json={"ms": 150})
            await http.get("/_sandbox/levels")
            negative = await http.put("/_sandbox/latency", json={"ms": -1})
            not_a_number = await http.put("/_sandbox/latency", json={"ms": "150"})
    finally:
        await sandbox.aclose()

    assert before.json() == {"ms": 0.0}
    assert changed.json() == {"ms": 150.0}
    assert sandbox.network.ms == 150.0
    assert (negative.status_code, not_a_number.status_code) == (400, 400)
    # The PUT itself arrived at 0 ms; the GET after it and the two refused PUTs took both halves.
    assert gate.requested == [0.075] * 6


def test_a_negative_latency_is_refused_when_building() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        ShopifySandbox(latency_ms=-5)
