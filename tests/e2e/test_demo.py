"""The demo scenario end to end: a real sandbox store over HTTP, real signed webhooks, SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from nexus.config import NexusSettings
from nexus.engine import Nexus
from nexus.sandbox.demo import DemoOptions, run_demo
from nexus.storage.models import Item, StockMovement

pytestmark = pytest.mark.slow


async def test_demo_converges_and_every_unit_is_accounted_for(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    options = DemoOptions(
        skus=150, duration=4.0, sales_per_second=40.0, database=database, seed=11, quiet=True
    )

    summary = await run_demo(options, Console(quiet=True))

    assert summary.linked == 150 and summary.unmatched == 3
    assert summary.channel_sales > 50, "the scenario must actually sell on the store"
    assert summary.webhooks > summary.channel_sales, "orders/create and inventory_levels/update flow back"
    assert summary.out_of_sync == 0, summary.out_of_sync_skus
    # Ground truth kept by the scenario itself: start + Nexus-side changes - units sold on the store.
    assert summary.ledger_mismatches == 0

    nexus = Nexus(NexusSettings(database_url=f"sqlite+aiosqlite:///{database}"))
    async with nexus, nexus.db.read() as session:
        ledger = dict(
            (
                await session.execute(
                    select(StockMovement.sku, func.sum(StockMovement.delta)).group_by("sku")
                )
            ).all()
        )
        starting = dict(
            (
                await session.execute(
                    select(StockMovement.sku, StockMovement.delta).where(
                        StockMovement.reference == "initial stock"
                    )
                )
            ).all()
        )
        items = list((await session.execute(select(Item))).scalars())
    assert len(items) == 150
    for item in items:
        later = ledger.get(item.sku, 0) - starting.get(item.sku, 0)
        assert item.on_hand == starting.get(item.sku, 0) + later, item.sku


async def test_four_channel_demo_converges_without_overselling(tmp_path: Path) -> None:
    options = DemoOptions(
        skus=60,
        duration=4.0,
        sales_per_second=20.0,
        database=tmp_path / "demo.db",
        seed=5,
        channels=("shopify", "woocommerce", "amazon", "etsy"),
        quiet=True,
    )

    summary = await run_demo(options, Console(quiet=True))

    assert set(summary.channels) == {"shopify-demo", "woocommerce-demo", "amazon-demo", "etsy-demo"}
    for name, channel in summary.channels.items():
        assert channel.linked == 60, name
        assert channel.sales > 0, f"the scenario must sell on {name}"
        assert channel.oversold_units == 0, name
        assert channel.out_of_sync == 0, (name, channel.out_of_sync_skus)
    assert summary.out_of_sync == 0
    assert summary.ledger_mismatches == 0  # start + Nexus-side changes - units sold on every store
