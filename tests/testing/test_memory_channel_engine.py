"""The README's MemoryChannel example, end to end: an engine pushes to it, a sale on it is refused by
compare-and-set and booked, and its signed order webhook is received and counted once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from nexus.domain.catalog import ItemSpec
from nexus.drivers.contract import ListingRef, SaleEvent
from nexus.errors import TransientChannelError
from nexus.testing import MemoryChannel
from nexus.web import create_app


async def test_an_engine_on_a_memory_channel(make_nexus: Callable[..., Any]) -> None:
    memory = MemoryChannel.factory(max_batch_size=3)
    nexus = await make_nexus(channels={"shop": {"driver": "memory", "credentials": {"secret": "k"}}})
    nexus.extend("memory", memory)
    await nexus.add_items([ItemSpec("SKU-1", title="SKU-1", on_hand=5)])
    nexus.channel("shop")
    shop = memory["shop"]
    shop.add_product("SKU-1", quantity=5)
    assert (await nexus.import_channel("shop")).linked == 1

    shop.fail_next_push(TransientChannelError("503 upstream", status=503))
    await nexus.product("SKU-1").adjust(-1)  # sold elsewhere: the channel must show 4
    assert await nexus.push_worker("shop").run_once() is not None  # refused whole: retried
    shop.simulate_sale("SKU-1")  # meanwhile a buyer takes one on the channel: it shows 4 already
    while await nexus.push_worker("shop").run_once() is not None:
        pass
    assert [u.change_from for u in shop.pushed] == [5, 5, 4]  # 503; stale (it showed 4); then 3 from 4
    assert shop.levels["SKU-1"] == 3
    assert (await nexus.product("SKU-1").get()).on_hand == 3  # the stale answer booked the sale

    request = shop.webhook(SaleEvent(ListingRef(remote_id="SKU-1"), 1, "order-1", "1"), delivery_id="D1")
    app = create_app(nexus)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post(
            "/nexus/webhooks/shop", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code < 300, response.text
        forged = dict(request.headers, **{"x-memory-signature": shop.sign(b"other")})
        refused = await client.post("/nexus/webhooks/shop", content=request.body, headers=forged)
        assert refused.status_code == 401
    await app.state.webhook_processor.drain()
    assert (await nexus.product("SKU-1").get()).on_hand == 3  # its order is the same sale: counted once
