"""The read services behind the API and the dashboard: channel cards and success rates
(nexus.sync.overview), the push audit, the ledger, items and listings (nexus.sync.history)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from nexus.errors import InvalidArgumentError, TerminalChannelError, UnknownSkuError
from nexus.storage.models import RateLimitLog, SyncJob, WebhookLog, utcnow
from nexus.sync.history import (
    ledger,
    list_items,
    list_listings,
    list_push_audit,
    listing_of,
    movement_by_key,
)
from nexus.sync.overview import channel_overview, health_rates
from nexus.webhooks.log import WebhookFilter, list_webhooks
from tests.sync.sync_kit import Engine

MakeEngine = Callable[..., Any]
TWO = {"m": {"driver": "mem"}, "n": {"driver": "mem"}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_engine(request: pytest.FixtureRequest, make_engine: MakeEngine) -> MakeEngine:
    """The engine on SQLite and on PostgreSQL: the JSON text match of the push audit and the
    windowed sums differ by backend."""
    if request.param == "sqlite":
        return make_engine
    url = request.getfixturevalue("postgres_url")

    async def build(**overrides: Any) -> Engine:
        return await make_engine(database_url=url, **overrides)  # type: ignore[no-any-return]

    return build


async def drain(engine: Engine, channel: str = "m") -> None:
    worker = engine.nexus.push_worker(channel)
    while await worker.run_once() is not None:
        pass


async def test_cards_show_queue_pace_and_state(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(channels=TWO)
    await engine.seed({"A": 5, "B": 5, "C": 5}, channels=("m", "n"))
    await engine.nexus.product("A").adjust(-1)
    await engine.nexus.product("B").adjust(-1)
    await drain(engine, "n")  # n pushes both; m keeps them queued
    await engine.nexus.channel_states.pause("m", reason="stocktake", actor="test")
    now = utcnow()
    async with engine.nexus.db.transaction() as session:
        minute = now.replace(second=0, microsecond=0)
        session.add(RateLimitLog(channel="n", minute=minute, requests=9, throttled=2))
        session.add(RateLimitLog(channel="n", minute=minute - timedelta(minutes=30), requests=9, throttled=3))
        session.add(RateLimitLog(channel="n", minute=minute - timedelta(hours=3), requests=9, throttled=50))

    cards = {card.channel: card for card in await channel_overview(engine.nexus)}
    m, n = cards["m"], cards["n"]
    assert (m.state, m.paused_by, m.pause_reason) == ("paused", "test", "stocktake")
    assert (m.listings, m.queued, m.dirty, m.failed, m.dead_letters) == (3, 2, 2, 0, 0)
    assert m.oldest_dirty_seconds is not None and m.oldest_dirty_seconds >= 0
    assert m.pushes_last_minute == 0
    assert (n.state, n.queued, n.oldest_dirty_seconds) == ("connected", 0, None)
    assert n.pushes_last_minute == 2  # A and B, in one request
    assert n.last_sync is not None and n.last_sync.tzinfo is not None
    assert (n.throttled_last_minute, n.throttled_last_hour) == (2, 5)  # the 3-hour-old row is out
    assert n.capacity is not None and n.tokens is not None and 0 <= n.tokens <= n.capacity
    document = n.as_dict()
    assert document["last_sync"] == n.last_sync.isoformat()
    assert set(document) >= {"queued", "in_flight", "tokens", "capacity", "throttled_last_hour"}


async def test_health_rates_per_window(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(channels=TWO)
    now = utcnow()
    async with engine.nexus.db.transaction() as session:
        for age, count, ok in [
            (timedelta(minutes=5), 4, 3),
            (timedelta(hours=5), 6, 0),
            (timedelta(days=3), 10, 10),
        ]:
            session.add(
                SyncJob(
                    channel="m",
                    count=count,
                    succeeded=ok,
                    status="partial",
                    duration_ms=1.0,
                    created_at=now - age,
                )
            )
        session.add(
            SyncJob(
                channel="m",
                count=99,
                succeeded=0,
                status="failed",
                duration_ms=1.0,
                created_at=now - timedelta(days=8),
            )
        )
    rates = {rate.channel: rate for rate in await health_rates(engine.nexus, now=now)}
    m = rates["m"]
    assert (m.hour.pushed, m.hour.succeeded, m.hour.rate) == (4, 3, 0.75)
    assert (m.day.pushed, m.day.succeeded) == (10, 3)
    assert (m.week.pushed, m.week.succeeded, m.week.rate) == (20, 13, 0.65)
    assert rates["n"].week.rate is None  # nothing sent: no rate, not 0 %
    assert rates["n"].as_dict()["hour"] == {"pushed": 0, "succeeded": 0, "rate": None}


async def test_push_audit_filters_pages_and_masks(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(channels=TWO)
    await engine.seed({"A": 5, "B": 5}, channels=("m", "n"))
    await engine.nexus.product("A").adjust(-1)
    await drain(engine, "m")
    await drain(engine, "n")
    await engine.nexus.product("B").adjust(-1)
    await drain(engine, "m")
    async with engine.nexus.db.transaction() as session:
        session.add(
            SyncJob(
                channel="n",
                count=1,
                succeeded=0,
                status="failed",
                duration_ms=1.0,
                error="401",
                payload={"updates": [{"sku": "Z"}], "access_token": "shpat_abcdef"},
            )
        )
    db = engine.nexus.db

    everything = await list_push_audit(db)
    assert everything.total == 4
    assert everything.items[0].channel == "n"  # newest first
    assert (await list_push_audit(db, channel="m")).total == 2
    assert [job.status for job in (await list_push_audit(db, status="failed")).items] == ["failed"]
    by_sku = await list_push_audit(db, sku="A")
    assert by_sku.total == 2 and {job.channel for job in by_sku.items} == {"m", "n"}
    assert (await list_push_audit(db, sku="A%")).total == 0  # a SKU is matched as it is, not a pattern
    [failed] = (await list_push_audit(db, sku="Z")).items
    assert failed.payload["access_token"] == "***"
    assert "shpat_abcdef" not in str(failed.as_dict())
    page = await list_push_audit(db, limit=3, offset=3)
    assert (len(page.items), page.total, page.next_offset) == (1, 4, None)
    with pytest.raises(InvalidArgumentError):
        await list_push_audit(db, status="exploded")


async def test_ledger_is_the_running_total(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"A": 5})
    await engine.nexus.product("A").adjust(-2, idempotency_key="k-1")
    await engine.nexus.product("A").update_inventory(quantity=10)
    page = await ledger(engine.nexus.db, "A")
    assert [(m.delta, m.on_hand_after) for m in page.items] == [(7, 10), (-2, 3), (5, 5)]
    assert page.total == 3
    second = await ledger(engine.nexus.db, "A", limit=1, offset=1)
    assert [m.on_hand_after for m in second.items] == [3] and second.next_offset == 2
    booked = await movement_by_key(engine.nexus.db, "k-1")
    assert booked is not None and (booked.delta, booked.on_hand_after) == (-2, 3)
    assert await movement_by_key(engine.nexus.db, "never") is None
    with pytest.raises(UnknownSkuError):
        await ledger(engine.nexus.db, "nope")


async def test_items_search_by_sku_or_title_prefix(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"TSHIRT-S": 1, "TSHIRT-M": 2, "MUG": 3, "100%": 4})
    db = engine.nexus.db
    page = await list_items(db, query="TSHIRT")
    assert [item.sku for item in page.items] == ["TSHIRT-M", "TSHIRT-S"] and page.total == 2
    assert [item.sku for item in (await list_items(db, query="mu")).items] == ["MUG"]  # title, any case
    assert [item.sku for item in (await list_items(db, query="100%")).items] == ["100%"]
    assert (await list_items(db, query="1_0")).total == 0  # `_` is no wildcard
    everything = await list_items(db, limit=2)
    assert (everything.total, len(everything.items), everything.next_offset) == (4, 2, 2)
    assert everything.items[0].available == everything.items[0].on_hand


async def test_listings_filter_dirty_and_failed(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"A": 5, "B": 5, "C": 5})
    engine.driver("m").fail_listing(TerminalChannelError("404 gone", status=404), sku="C", times=None)
    await engine.nexus.product("C").adjust(-1)
    await drain(engine)
    await engine.nexus.product("B").adjust(-1)  # queued, not pushed
    db = engine.nexus.db
    everything = await list_listings(db, "m")
    assert [listing.sku for listing in everything.items] == ["A", "B", "C"]
    assert [listing.sku for listing in (await list_listings(db, "m", dirty=True, failed=False)).items] == [
        "B"
    ]
    [failed] = (await list_listings(db, "m", failed=True)).items
    assert (failed.sku, failed.failed, failed.last_error is not None) == ("C", True, True)
    clean = await list_listings(db, "m", dirty=False)
    assert [listing.sku for listing in clean.items] == ["A"]
    assert (await list_listings(db, "other")).total == 0
    b = await listing_of(db, "m", "B")
    assert (b.desired, b.believed, b.dirty, b.in_flight) == (4, 5, True, False)
    with pytest.raises(UnknownSkuError):
        await listing_of(db, "m", "nope")


async def test_webhook_log_filters_verified_remote_id_and_dates(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    now = utcnow()
    async with engine.nexus.db.transaction() as session:
        for delivery, event, verified, age in [
            ("d-1", "e-1", True, timedelta(days=2)),
            ("d-2", "e-2", False, timedelta(hours=1)),
            ("d-3", None, True, timedelta(minutes=1)),
        ]:
            session.add(
                WebhookLog(
                    channel="m",
                    topic="stock",
                    delivery_id=delivery,
                    event_id=event,
                    verified=verified,
                    status="processed" if verified else "rejected",
                    http_status=200 if verified else 401,
                    body=b"{}",
                    received_at=now - age,
                )
            )
    db = engine.nexus.db

    async def ids(where: WebhookFilter) -> list[str | None]:
        return [item.delivery_id for item in (await list_webhooks(db, where)).items]

    assert await ids(WebhookFilter(verified=False)) == ["d-2"]
    assert await ids(WebhookFilter(verified=True)) == ["d-3", "d-1"]
    assert await ids(WebhookFilter(remote_id="e-1")) == ["d-1"]  # the event id
    assert await ids(WebhookFilter(remote_id="d-3")) == ["d-3"]  # or the delivery id
    window = WebhookFilter(received_from=now - timedelta(days=1), received_to=now - timedelta(minutes=30))
    assert await ids(window) == ["d-2"]
