"""The receiver in process: size limits, the order of checks, driver failures, group commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from nexus.storage.models import utcnow
from nexus.webhooks.receiver import GroupWriter, WebhookReceiver, read_limited
from tests.webhooks.webhook_testkit import CHANNEL, LIMIT, Hub, build_hub, channels, delivery, sale


async def test_content_length_is_checked_before_any_byte_is_read(hub: Hub) -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    headers = {"content-length": str(LIMIT + 1), **delivery(sale()).headers}
    receipt = await WebhookReceiver(hub.nexus).receive(CHANNEL, headers, never())

    assert (receipt.status_code, receipt.outcome) == (413, "rejected")
    [row] = await hub.logs()
    assert (row.http_status, row.body) == (413, b"")


async def test_read_limited_holds_at_most_limit_plus_one_bytes() -> None:
    consumed = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal consumed
        while True:
            consumed += 1
            yield b"x" * 4

    body, too_large = await read_limited(endless(), 10)
    assert (body, too_large, consumed) == (b"x" * 10, True, 3)

    async def short() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"def"

    assert await read_limited(short(), 6) == (b"abcdef", False)


async def test_json_content_type_must_hold_json_even_for_topics_nobody_parses(
    hub: Hub, asgi: httpx.AsyncClient
) -> None:
    bad = b"not json at all"
    declared_json = delivery(bad, topic="shop/update")
    plain_text = delivery(bad, topic="shop/update", content_type="text/plain", delivery_id="D2")

    first = await asgi.post(hub.path, content=declared_json.body, headers=declared_json.headers)
    second = await asgi.post(hub.path, content=plain_text.body, headers=plain_text.headers)
    await hub.processor.drain()

    assert (first.status_code, second.status_code) == (400, 200)
    rejected, stored = await hub.logs()
    assert "not valid JSON" in (rejected.error or "")
    assert (stored.topic, stored.status) == ("shop/update", "processed")  # nothing in it to apply


async def test_a_driver_bug_is_a_500_and_logged(hub: Hub, asgi: httpx.AsyncClient) -> None:
    d = delivery(sale(), topic="boom", delivery_id="D1")
    response = await asgi.post(hub.path, content=d.body, headers=d.headers)

    assert response.status_code == 500
    [row] = await hub.logs()
    assert (row.status, row.http_status, row.verified, row.delivery_id) == ("rejected", 500, True, None)
    assert "RuntimeError: driver bug" in (row.error or "")


async def test_a_disabled_channel_is_404(make_nexus: Callable[..., Any]) -> None:
    hub = await build_hub(make_nexus, channels=channels(enabled=False))
    d = delivery(sale())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hub.app), base_url="http://t") as client:
        response = await client.post(hub.path, content=d.body, headers=d.headers)
    assert response.status_code == 404
    [row] = await hub.logs()
    assert "disabled" in (row.error or "")


async def test_an_absurdly_long_delivery_id_is_refused(hub: Hub, asgi: httpx.AsyncClient) -> None:
    d = delivery(sale(), delivery_id="D" * 300)
    response = await asgi.post(hub.path, content=d.body, headers=d.headers)
    assert response.status_code == 400
    [row] = await hub.logs()
    assert row.delivery_id is None


async def test_concurrent_deliveries_are_all_stored_and_duplicates_once(
    hub: Hub, asgi: httpx.AsyncClient
) -> None:
    await hub.seed(on_hand=1000)
    distinct = [delivery(sale(quantity=1, order_id=f"O{i}"), delivery_id=f"D{i}") for i in range(40)]
    copies = [delivery(sale(quantity=1, order_id="ODUP"), delivery_id="DUP")] * 10

    responses = await asyncio.gather(
        *(asgi.post(hub.path, content=d.body, headers=d.headers) for d in distinct + copies)
    )
    await hub.processor.drain()

    assert all(r.status_code == 200 for r in responses)
    statuses = [r.json()["status"] for r in responses[40:]]
    assert sorted(statuses) == ["accepted"] + ["duplicate"] * 9
    rows = await hub.logs()
    assert len(rows) == 41
    assert len({row.id for row in rows}) == 41
    assert all(row.status == "processed" for row in rows)
    assert (await hub.item()).on_hand == 1000 - 41


async def test_group_writer_isolates_a_bad_row(hub: Hub) -> None:
    writer = GroupWriter(hub.nexus.db)
    batches: list[int] = []
    write = writer._write

    async def counting(rows: Any) -> list[int | None]:
        batches.append(len(rows))
        return await write(rows)

    writer._write = counting  # type: ignore[method-assign]

    def row(delivery_id: str, received_at: datetime) -> dict[str, Any]:
        return {
            "channel": CHANNEL,
            "delivery_id": delivery_id,
            "verified": True,
            "status": "received",
            "http_status": 200,
            "headers": {},
            "body": b"{}",
            "received_at": received_at,
        }

    results = await asyncio.gather(
        writer.insert(row("A", utcnow())),
        writer.insert(row("B", datetime.now())),  # naive: the column refuses it
        writer.insert(row("C", utcnow())),
        writer.insert(row("A", utcnow())),
        return_exceptions=True,
    )

    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], Exception)
    assert results[3] is None  # the duplicate of A
    assert [r.delivery_id for r in await hub.logs()] == ["A", "C"]
    assert batches == [4, 1, 1, 1, 1]  # one transaction for all four, then one by one after the failure


@pytest.mark.parametrize("path", ["/nexus/webhooks/hooks/extra", "/nexus/webhooks/"])
async def test_paths_outside_the_route_are_plain_404s(hub: Hub, asgi: httpx.AsyncClient, path: str) -> None:
    response = await asgi.post(path, content=b"{}")
    assert response.status_code == 404
    assert await hub.logs() == []


async def test_headers_are_stored_in_the_order_sent_and_a_repeated_one_keeps_its_first_value(
    hub: Hub, asgi: httpx.AsyncClient
) -> None:
    d = delivery(sale(), delivery_id="D1")
    sent = [
        *d.headers.items(),
        ("X-Audit-First", "1"),
        ("X-Audit-Repeated", "first"),
        ("X-Audit-Last", "3"),
        ("x-audit-repeated", "second"),
    ]
    response = await asgi.post(hub.path, content=d.body, headers=sent)

    assert response.status_code == 200
    [row] = await hub.logs()
    audit = [name for name in row.headers if name.startswith("x-audit-")]
    assert audit == ["x-audit-first", "x-audit-repeated", "x-audit-last"]
    assert row.headers["x-audit-repeated"] == "first"
    ours = [name.lower() for name, _ in d.headers.items()]
    assert [name for name in row.headers if name in ours] == ours  # the channel's own, in order
