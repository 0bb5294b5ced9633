"""Processing stored deliveries: deferral behind a push in flight, crash recovery, retries, the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from nexus.events import InventoryUpdated, WebhookReceived
from nexus.storage.models import WebhookLog, utcnow
from nexus.webhooks import processor as processor_module
from nexus.webhooks.processor import STRAY_AFTER, Attempt, WebhookProcessor
from nexus.webhooks.receiver import Receipt, WebhookReceiver
from tests.webhooks.webhook_testkit import CHANNEL, OTHER, Hub, build_hub, channels, delivery, level, sale


async def store(hub: Hub, payload: dict[str, Any], **kwargs: Any) -> int:
    """Ingest without scheduling processing: what a crash right after the 200 leaves behind."""
    d = delivery(payload, **kwargs)
    receipt = await WebhookReceiver(hub.nexus).receive(CHANNEL, d.headers, d.body)
    assert receipt.stored and receipt.log_id is not None
    return receipt.log_id


async def wait_until_due(hub: Hub) -> None:
    """Sleep until every deferred row is due (not an assertion about timing)."""
    for row in await hub.logs():
        if row.next_attempt_at is not None:
            await asyncio.sleep(max(0.0, (row.next_attempt_at - utcnow()).total_seconds()) + 0.01)


async def test_observed_level_for_a_leased_listing_is_deferred_then_applied(
    hub: Hub, http: httpx.AsyncClient
) -> None:
    await hub.seed()
    await hub.lease(CHANNEL, "worker-1", utcnow() + timedelta(seconds=60))

    response = await http.post(
        hub.path, content=(d := delivery(level(quantity=7), delivery_id="D1")).body, headers=d.headers
    )
    await hub.processor.drain()

    assert response.status_code == 200  # stored, whatever processing later decides
    [row] = await hub.logs()
    assert row.status == "received"
    assert row.attempts == 1
    assert row.next_attempt_at is not None
    assert "push in flight" in (row.error or "")
    assert (await hub.item()).on_hand == 10

    # Still leased: deferred again, nothing applied.
    await wait_until_due(hub)
    assert await hub.processor.process_pending() == 0
    assert (await hub.item()).on_hand == 10

    await hub.lease(CHANNEL, None, None)
    await wait_until_due(hub)
    assert await hub.processor.process_pending() == 1

    [row] = await hub.logs()
    assert row.status == "processed" and row.error is None and row.attempts == 3
    assert (await hub.item()).on_hand == 7  # the channel shows 7 where Nexus believed 10
    assert (await hub.listing(CHANNEL)).remote_qty == 7
    assert (await hub.listing(OTHER)).dirty_since is not None


async def test_crash_recovery_a_stored_row_is_processed_by_process_pending(
    make_nexus: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    settings = make_settings(channels=channels())
    before = await build_hub(make_nexus, settings)
    await before.seed()
    log_id = await store(before, sale(quantity=3), delivery_id="D1")
    await before.nexus.aclose()  # the process dies after answering 200, before processing

    after = await build_hub(make_nexus, settings)  # a restart on the same database
    updated: list[InventoryUpdated] = []
    after.nexus.events.listen(InventoryUpdated, updated.append)
    assert await WebhookProcessor(after.nexus).process_pending() == 1
    assert await WebhookProcessor(after.nexus).process_pending() == 0

    [row] = await after.logs()
    assert (row.id, row.status) == (log_id, "processed")
    assert (await after.item()).on_hand == 7
    assert [e.delta for e in updated] == [-3]


async def test_processing_is_idempotent_per_row(hub: Hub) -> None:
    await hub.seed()
    log_id = await store(hub, level(quantity=4), delivery_id="D1")
    processor = WebhookProcessor(hub.nexus)

    assert await processor.process(log_id) is Attempt.PROCESSED
    assert await processor.process(log_id) is Attempt.SKIPPED
    assert await processor.process_pending() == 0
    assert (await hub.item()).on_hand == 4


async def test_concurrent_attempts_on_one_row_apply_it_once(hub: Hub) -> None:
    await hub.seed()
    log_id = await store(hub, level(quantity=4), delivery_id="D1")
    attempts = await asyncio.gather(*(WebhookProcessor(hub.nexus).process(log_id) for _ in range(5)))
    assert sorted(a.value for a in attempts) == ["processed"] + ["skipped"] * 4
    assert (await hub.item()).on_hand == 4


async def test_a_body_the_driver_refuses_at_processing_fails_at_once(hub: Hub) -> None:
    await hub.seed()
    log_id = await store(hub, sale(quantity=1))
    hub.driver().refuse_on_processing = True

    assert await WebhookProcessor(hub.nexus).process(log_id) is Attempt.FAILED
    [row] = await hub.logs()
    assert row.status == "failed" and "refused on processing" in (row.error or "")
    assert (await hub.item()).on_hand == 10


async def test_an_error_is_retried_then_fails_after_max_attempts(make_nexus: Callable[..., Any]) -> None:
    hub = await build_hub(make_nexus, channels=channels(), worker={"backoff_base": 0.0, "max_attempts": 2})
    await hub.seed()
    log_id = await store(hub, sale(quantity=1))
    hub.driver().crash_on_processing = True
    processor = WebhookProcessor(hub.nexus)

    assert await processor.process(log_id) is Attempt.RETRY
    [row] = await hub.logs()
    assert (row.status, row.attempts) == ("received", 1)
    assert "driver bug while processing" in (row.error or "")

    assert await processor.process_pending() == 1
    [row] = await hub.logs()
    assert (row.status, row.attempts) == ("failed", 2)


async def test_an_error_then_success(hub: Hub) -> None:
    await hub.seed()
    log_id = await store(hub, sale(quantity=1))
    processor = WebhookProcessor(hub.nexus)
    hub.driver().crash_on_processing = True
    assert await processor.process(log_id) is Attempt.RETRY
    hub.driver().crash_on_processing = False
    assert await processor.process_pending() == 1
    [row] = await hub.logs()
    assert (row.status, row.attempts, row.error) == ("processed", 2, None)
    assert (await hub.item()).on_hand == 9


async def test_unmatched_events_are_noted_on_the_processed_row(hub: Hub) -> None:
    await hub.seed()
    log_id = await store(hub, sale(remote_id="NOPE"))
    assert await WebhookProcessor(hub.nexus).process(log_id) is Attempt.PROCESSED
    [row] = await hub.logs()
    assert row.status == "processed"
    assert "remote_id=NOPE" in (row.error or "")
    assert (await hub.item()).on_hand == 10


async def test_run_loop_takes_deferred_rows_and_strays_and_leaves_fresh_rows_to_their_batcher(
    hub: Hub,
) -> None:
    """The pending loop processes what no batcher will: a deferred row once due, and a row its
    receiving process never processed (older than STRAY_AFTER: stored before a crash). A row
    just received is its receiving process's batcher's: taking it too doubled the attempts."""
    await hub.seed()
    await hub.lease(CHANNEL, "worker-1", utcnow() + timedelta(seconds=60))
    deferred = await store(hub, level(quantity=6), delivery_id="D1")
    assert await WebhookProcessor(hub.nexus).process(deferred) is Attempt.DEFERRED
    stray = await store(hub, sale(quantity=2), delivery_id="D2")
    async with hub.nexus.db.transaction() as session:
        row = await session.get(WebhookLog, stray)
        assert row is not None
        row.received_at = utcnow() - STRAY_AFTER - timedelta(seconds=1)
    fresh = await store(hub, sale(quantity=1), delivery_id="D3")
    stop = asyncio.Event()
    runner = asyncio.create_task(WebhookProcessor(hub.nexus).run(stop))
    try:
        await _until(hub, lambda rows: {r.id: r.status for r in rows}[stray] == "processed")
        await hub.lease(CHANNEL, None, None)
        await _until(hub, lambda rows: {r.id: r.status for r in rows}[deferred] == "processed")
    finally:
        stop.set()
        await asyncio.wait_for(runner, timeout=10)
    untouched = {r.id: r for r in await hub.logs()}[fresh]
    assert (untouched.status, untouched.attempts) == ("received", 0)
    # The receiving process's batcher (or, STRAY_AFTER later, a pending loop) still takes it.
    assert await WebhookProcessor(hub.nexus).process_pending() == 1


async def test_webhook_received_fires_once_per_stored_delivery_before_processing(
    hub: Hub, asgi: httpx.AsyncClient
) -> None:
    await hub.seed()
    seen: list[tuple[str, int]] = []

    async def on_received(event: WebhookReceived) -> None:
        seen.append(("received", (await hub.item()).on_hand))

    hub.nexus.events.listen(WebhookReceived, on_received)
    d = delivery(sale(quantity=2), delivery_id="D1")
    for _ in range(3):
        await asgi.post(hub.path, content=d.body, headers=d.headers)
    await asgi.post(hub.path, content=d.body, headers={**d.headers, "X-Test-Signature": "AAAA"})
    await hub.processor.drain()

    assert seen == [("received", 10)]  # once, and before the stock moved
    assert (await hub.item()).on_hand == 8


async def _until(hub: Hub, condition: Callable[[list[Any]], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await hub.logs()
        if rows and condition(rows):
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not reached; rows: {[(r.id, r.status, r.attempts) for r in rows]}")
        await asyncio.sleep(0.02)


async def test_a_slow_resolve_holds_no_transaction(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver that calls its channel to resolve a delivery (Etsy fetches the receipt an
    `order.paid` names) may wait on the channel's rate limit for a minute. Meanwhile every other
    writer goes on: on SQLite a transaction held across that wait stopped the whole process,
    webhook ingestion included (a 100,000 x 4 benchmark stalled for minutes). Once the answer
    comes, the delivery is applied."""
    await hub.seed()
    first = await store(hub, sale(quantity=2), delivery_id="D1")
    driver = hub.driver()
    resolving, answered = asyncio.Event(), asyncio.Event()
    resolve = driver.resolve_webhook

    async def waits_on_its_channel(request: Any) -> Any:
        resolving.set()
        await answered.wait()
        return await resolve(request)

    monkeypatch.setattr(driver, "resolve_webhook", waits_on_its_channel)
    attempt = asyncio.create_task(hub.processor.process(first))
    try:
        await asyncio.wait_for(resolving.wait(), 5)
        # Meanwhile: a delivery is stored (the receiver's group commit), a stock change commits.
        second = await asyncio.wait_for(store(hub, sale(quantity=1, order_id="O2"), delivery_id="D2"), 5)
        await asyncio.wait_for(hub.nexus.product("SKU-1").adjust(+5), 5)
        assert not attempt.done()
    finally:
        answered.set()  # a failure above must not leave the attempt waiting for ever
    assert await asyncio.wait_for(attempt, 5) is Attempt.PROCESSED
    assert (await hub.item()).on_hand == 13  # 10 + 5 - 2
    monkeypatch.undo()
    assert await hub.processor.process(second) is Attempt.PROCESSED
    assert (await hub.item()).on_hand == 12


async def test_the_routes_processing_leaves_a_slow_resolve_to_the_pending_loop(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite takes the route's chunks one after another: a delivery whose resolution waits on
    its channel (an Etsy receipt behind the rate limit) must not hold back the deliveries with
    it. Past RESOLVE_PATIENCE it is left "received", attempts untouched, and the pending loop,
    which waits, applies it."""
    monkeypatch.setattr(processor_module, "RESOLVE_PATIENCE", 0.05)
    await hub.seed()
    slow = await store(hub, sale(quantity=2), delivery_id="D1")
    quick = await store(hub, sale(quantity=1, order_id="O2"), delivery_id="D2")
    driver = hub.driver()
    answered = asyncio.Event()
    resolve = driver.resolve_webhook

    async def waits_for_order_1(request: Any) -> Any:
        if b'"O1"' in request.body:
            await answered.wait()
        return await resolve(request)

    monkeypatch.setattr(driver, "resolve_webhook", waits_for_order_1)
    for log_id in (slow, quick):
        hub.processor.schedule(Receipt(CHANNEL, 200, "accepted", log_id=log_id))
    await asyncio.wait_for(hub.processor.drain(), 5)

    assert (await hub.item()).on_hand == 9  # the quick sale only
    rows = {row.id: row for row in await hub.logs()}
    assert (rows[slow].status, rows[slow].attempts) == ("received", 0)
    assert rows[quick].status == "processed"

    answered.set()
    assert await asyncio.wait_for(hub.processor.process_pending(), 5) == 1
    assert (await hub.item()).on_hand == 7


async def test_after_aclose_nothing_is_processed_not_even_chunks_started_while_it_waited(hub: Hub) -> None:
    """Chunks run side by side (PostgreSQL) are tasks of their own, which the batcher starts:
    closing must wait for them, or cancel them, with the batcher, since the database is closed
    next."""
    await hub.seed()
    processor = hub.processor
    processor.parallel, processor.chunk_size = 2, 2  # PostgreSQL's way, on this SQLite file
    ids = [await store(hub, sale(order_id=f"O{n}"), delivery_id=f"D{n}") for n in range(6)]
    original = processor.process_many

    async def slow(log_ids: Any, **kwargs: Any) -> dict[int, Attempt]:
        await asyncio.sleep(0.3)
        return await original(log_ids, **kwargs)

    processor.process_many = slow  # type: ignore[method-assign]
    for log_id in ids:
        processor.schedule(Receipt(CHANNEL, 200, "accepted", log_id=log_id))
    await asyncio.sleep(0.05)  # the batcher has started two chunks, the third waits for a slot

    # The first two chunks end inside the wait, and the batcher starts the third one then.
    await processor.aclose(timeout=0.45)
    closed = [row.status for row in await hub.logs()]
    await asyncio.sleep(0.5)  # longer than a chunk takes
    assert [row.status for row in await hub.logs()] == closed
    assert (await hub.item()).on_hand == 10 - closed.count("processed")


async def test_a_delivery_stored_after_aclose_is_left_for_the_next_process_pending(hub: Hub) -> None:
    """A mounted app can still store a delivery while its host shuts down: closing Nexus
    closes the processor, then the database. Processing it then would race the database's
    close, so it waits, "received", for the next start's `process_pending`."""
    await hub.seed()
    processor = hub.processor
    await processor.aclose()
    log_id = await store(hub, sale(order_id="LATE"), delivery_id="LATE")

    assert processor.schedule(Receipt(CHANNEL, 200, "accepted", log_id=log_id)) is None
    await asyncio.sleep(0.1)
    assert [row.status for row in await hub.logs()] == ["received"]
    assert (await hub.item()).on_hand == 10

    await WebhookProcessor(hub.nexus).process_pending()
    assert [row.status for row in await hub.logs()] == ["processed"]
    assert (await hub.item()).on_hand == 9
