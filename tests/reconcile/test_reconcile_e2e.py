"""End to end over loopback HTTP: a sale whose webhook was dropped and a level changed in the
channel's admin are both found by one reconciliation cycle and settled, on a compare-and-set
channel (the Shopify sandbox) and on one whose orders book its sales (the WooCommerce sandbox)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select

from nexus.domain.catalog import ItemSpec
from nexus.domain.reconcile import Finding
from nexus.engine import Nexus
from nexus.sandbox.shopify import ShopifySandbox
from nexus.sandbox.woocommerce import WooCommerceSandbox
from nexus.storage.models import Conflict, Item
from nexus.web.server import serve_app

SKUS = ["SKU-000001", "SKU-000002", "SKU-000003"]
SOLD, EDITED, UNTOUCHED = SKUS


async def on_hand(nexus: Nexus) -> dict[str, int]:
    async with nexus.db.read() as session:
        rows = (await session.execute(select(Item.sku, Item.on_hand))).all()
    return {sku: quantity for sku, quantity in rows}


async def push_all(nexus: Nexus, channel: str) -> None:
    worker = nexus.push_worker(channel)
    while await worker.run_once() is not None:
        pass


@asynccontextmanager
async def shopify(make_nexus: Callable[..., Any], **reconcile: Any) -> AsyncIterator[tuple[Nexus, Any]]:
    sandbox = ShopifySandbox(access_token="shpat_t", webhook_secret="whsec")
    sandbox.seed_catalog(len(SKUS), quantity=10)
    async with serve_app(sandbox.app) as store:
        nexus: Nexus = await make_nexus(
            channels={
                "shop": {
                    "driver": "shopify",
                    "base_url": store.base_url,
                    "credentials": {"access_token": "shpat_t", "webhook_secret": "whsec"},
                    "settings": {"location_id": str(sandbox.location_id)},
                    "reconcile": reconcile,
                }
            }
        )
        try:
            yield nexus, sandbox
        finally:
            await sandbox.aclose()


@asynccontextmanager
async def woocommerce(make_nexus: Callable[..., Any], **reconcile: Any) -> AsyncIterator[tuple[Nexus, Any]]:
    sandbox = WooCommerceSandbox(consumer_key="ck_t", consumer_secret="cs_t", webhook_secret="whsec")
    sandbox.seed_catalog(len(SKUS), quantity=10)
    async with serve_app(sandbox.app) as store:
        nexus: Nexus = await make_nexus(
            channels={
                "woo": {
                    "driver": "woocommerce",
                    "base_url": store.base_url,
                    "credentials": {
                        "consumer_key": "ck_t",
                        "consumer_secret": "cs_t",
                        "webhook_secret": "whsec",
                    },
                    "reconcile": reconcile,
                }
            }
        )
        try:
            yield nexus, sandbox
        finally:
            await sandbox.aclose()


async def linked(nexus: Nexus, channel: str) -> None:
    await nexus.add_items(ItemSpec(sku=sku, title=sku, on_hand=10) for sku in SKUS)
    report = await nexus.import_channel(channel)
    assert report.linked == len(SKUS)
    await push_all(nexus, channel)


async def test_shopify_a_dropped_sale_is_booked_and_an_admin_edit_pushed_back(
    make_nexus: Callable[..., Any],
) -> None:
    async with shopify(make_nexus) as (nexus, sandbox):  # nexus_wins, the default
        await linked(nexus, "shop")
        await sandbox.simulate_sale(SOLD, 2)  # nobody subscribed: the webhook is lost
        await sandbox.set_available(EDITED, 25)  # a merchant's edit in the Shopify admin
        reconciler = nexus.reconciler("shop")

        seen = {(d.sku, d.believed, d.observed, d.finding) for d in await reconciler.differences()}
        assert seen == {(SOLD, 10, 8, Finding.BOOKED), (EDITED, 10, 25, Finding.PUSHED)}
        assert await on_hand(nexus) == dict.fromkeys(SKUS, 10)  # a dry run changes nothing

        cycle = await reconciler.cycle()
        assert cycle.read == len(SKUS) and cycle.findings[Finding.AGREES] == 1
        await push_all(nexus, "shop")
        assert await on_hand(nexus) == {SOLD: 8, EDITED: 10, UNTOUCHED: 10}
        assert sandbox.levels() == {SOLD: 8, EDITED: 10, UNTOUCHED: 10}
        assert await reconciler.differences() == []


async def test_woocommerce_a_dropped_order_waits_its_grace_then_the_policy_settles_it(
    make_nexus: Callable[..., Any],
) -> None:
    async with woocommerce(make_nexus, policy="conservative", order_grace=0) as (nexus, sandbox):
        await linked(nexus, "woo")
        await sandbox.simulate_sale(SOLD, 3)  # its order.created webhook never comes
        await sandbox.set_available(EDITED, 4)  # lowered in the WooCommerce admin
        reconciler = nexus.reconciler("woo")

        first = await reconciler.cycle()  # first sight: the orders may still be on their way
        assert first.findings[Finding.AWAITS_ORDER] == 2
        assert await on_hand(nexus) == dict.fromkeys(SKUS, 10)

        second = await reconciler.cycle()  # still lower after the grace: the lower level wins
        assert second.findings[Finding.ADOPTED] == 2
        await push_all(nexus, "woo")
        assert await on_hand(nexus) == {SOLD: 7, EDITED: 4, UNTOUCHED: 10}
        assert sandbox.levels() == {SOLD: 7, EDITED: 4, UNTOUCHED: 10}


async def test_review_opens_one_conflict_and_changes_nothing(make_nexus: Callable[..., Any]) -> None:
    async with shopify(make_nexus, policy="review") as (nexus, sandbox):
        await linked(nexus, "shop")
        await sandbox.set_available(EDITED, 30)
        reconciler = nexus.reconciler("shop")
        await reconciler.cycle()
        await reconciler.cycle()
        async with nexus.db.read() as session:
            conflicts = list((await session.execute(select(Conflict))).scalars())
        assert [(c.sku, c.believed, c.observed, c.desired, c.status) for c in conflicts] == [
            (EDITED, 10, 30, 10, "open")
        ]
        assert await on_hand(nexus) == dict.fromkeys(SKUS, 10)
        assert sandbox.levels()[EDITED] == 30


async def test_the_background_cycle_reads_nothing_from_a_paused_channel(
    make_nexus: Callable[..., Any],
) -> None:
    async with shopify(make_nexus) as (nexus, sandbox):
        await linked(nexus, "shop")
        await sandbox.set_available(EDITED, 25)
        await nexus.channel_states.pause("shop", reason="maintenance")
        reconciler = nexus.reconciler("shop")
        assert (await reconciler.cycle(paced=True)).read == 0
        assert sandbox.levels()[EDITED] == 25
        await nexus.channel_states.resume("shop")
        assert (await reconciler.cycle()).read == len(SKUS)  # resumed: read again


async def test_refused_credentials_while_reading_disconnect_the_channel(
    make_nexus: Callable[..., Any],
) -> None:
    async with shopify(make_nexus) as (nexus, sandbox):
        await linked(nexus, "shop")
        sandbox.revoke_token()
        assert (await nexus.reconciler("shop").cycle()).read == 0
        assert (await nexus.channel_states.get("shop", fresh=True)).state.value == "disconnected"
