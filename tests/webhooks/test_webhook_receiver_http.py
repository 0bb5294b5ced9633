"""The webhook route over real HTTP on loopback: verify, store, deduplicate, refuse."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx

from nexus.events import InventoryUpdated, WebhookReceived
from tests.webhooks.webhook_testkit import CHANNEL, LIMIT, OTHER, SECRET, Delivery, Hub, delivery, sale, sign


async def post(http: httpx.AsyncClient, hub: Hub, d: Delivery, path: str | None = None) -> httpx.Response:
    return await http.post(path or hub.path, content=d.body, headers=d.headers)


async def test_valid_delivery_is_stored_then_processed(hub: Hub, http: httpx.AsyncClient) -> None:
    await hub.seed()
    received: list[WebhookReceived] = []
    updated: list[InventoryUpdated] = []
    hub.nexus.events.listen(WebhookReceived, received.append)
    hub.nexus.events.listen(InventoryUpdated, updated.append)

    d = delivery(sale(quantity=2), delivery_id="D1", event_id="E1", extra={"Authorization": "Bearer hush"})
    response = await post(http, hub, d)

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    log_id = response.json()["id"]
    await hub.processor.drain()

    [row] = await hub.logs()
    assert row.id == log_id
    assert (row.channel, row.topic, row.delivery_id, row.event_id) == (CHANNEL, "stock", "D1", "E1")
    assert row.verified is True
    assert row.status == "processed"
    assert row.http_status == 200
    assert row.body == d.body
    assert row.attempts == 1
    assert row.processed_at is not None and row.duration_ms is not None
    assert row.error is None
    # Secret-looking headers are masked; the rest are kept as received.
    assert row.headers["x-test-signature"] == "***"
    assert row.headers["authorization"] == "***"
    assert row.headers["x-test-delivery-id"] == "D1"

    assert (await hub.item()).on_hand == 8
    source = await hub.listing(CHANNEL)
    assert source.remote_qty == 8  # the channel sold it on its own side
    assert source.dirty_since is None  # ... and already shows what it should
    other = await hub.listing(OTHER)
    assert other.desired_qty == 8 and other.dirty_since is not None  # the other channel needs a push
    assert hub.nexus.wakeup(OTHER).is_set()

    assert received == [WebhookReceived(CHANNEL, "stock", "D1", "E1", log_id)]
    assert [(e.sku, e.delta, e.channel) for e in updated] == [("SKU-1", -2, CHANNEL)]


async def test_tampered_body_is_refused_and_logged_unverified(hub: Hub, http: httpx.AsyncClient) -> None:
    await hub.seed()
    signed = json.dumps(sale(quantity=1)).encode()
    tampered = json.dumps(sale(quantity=9)).encode()
    response = await http.post(
        hub.path,
        content=tampered,
        headers={
            "Content-Type": "application/json",
            "X-Test-Signature": sign(signed),
            "X-Test-Delivery-Id": "D1",
        },
    )

    assert response.status_code == 401
    [row] = await hub.logs()
    assert row.verified is False
    assert row.status == "rejected"
    assert row.http_status == 401
    assert row.body == tampered
    assert "does not match" in (row.error or "")
    assert row.delivery_id is None and row.event_id is None
    assert row.headers["x-test-delivery-id"] == "D1"
    assert row.headers["x-test-signature"] == "***"
    assert (await hub.item()).on_hand == 10


async def test_wrong_secret_and_missing_signature_are_401(hub: Hub, http: httpx.AsyncClient) -> None:
    wrong = await post(http, hub, delivery(sale(), secret="not-the-secret"))
    missing = await post(http, hub, delivery(sale(), signed=False))
    garbage = await post(http, hub, delivery(sale(), signature="%%%not base64%%%"))

    assert [wrong.status_code, missing.status_code, garbage.status_code] == [401, 401, 401]
    rows = await hub.logs()
    assert [(r.status, r.http_status, r.verified) for r in rows] == [("rejected", 401, False)] * 3
    assert "missing" in (rows[1].error or "")


async def test_oversized_with_content_length_is_413(hub: Hub, http: httpx.AsyncClient) -> None:
    body = json.dumps({"sales": [], "padding": "x" * (LIMIT * 2)}).encode()
    response = await post(http, hub, delivery(body))

    assert response.status_code == 413
    [row] = await hub.logs()
    assert (row.status, row.http_status, row.verified) == ("rejected", 413, False)
    assert "Content-Length" in (row.error or "")
    assert len(row.body) <= LIMIT


async def test_oversized_without_content_length_is_counted_while_streaming(
    hub: Hub, http: httpx.AsyncClient
) -> None:
    body = json.dumps({"sales": [], "padding": "x" * (LIMIT * 2)}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    headers = {"Content-Type": "application/json", "X-Test-Signature": sign(body)}
    response = await http.post(hub.path, content=chunks(), headers=headers)

    assert response.status_code == 413
    [row] = await hub.logs()
    assert (row.status, row.http_status) == ("rejected", 413)
    assert "body exceeds" in (row.error or "")
    assert row.body == body[:LIMIT]  # the refused body is kept, cut to the limit


async def test_exactly_at_the_limit_is_accepted(hub: Hub, http: httpx.AsyncClient) -> None:
    prefix = b'{"padding": "'
    body = prefix + b"x" * (LIMIT - len(prefix) - 2) + b'"}'
    assert len(body) == LIMIT
    response = await post(http, hub, delivery(body))
    assert response.status_code == 200


async def test_malformed_json_is_400(hub: Hub, http: httpx.AsyncClient) -> None:
    body = b'{"sales": [ this is not json'
    response = await post(http, hub, delivery(body, delivery_id="D1"))

    assert response.status_code == 400
    [row] = await hub.logs()
    # Signed correctly, so it was verified; still never stored for processing.
    assert (row.status, row.http_status, row.verified) == ("rejected", 400, True)
    assert row.delivery_id is None
    assert row.topic == "stock"


async def test_unknown_channel_is_404_and_logged(hub: Hub, http: httpx.AsyncClient) -> None:
    response = await post(http, hub, delivery(sale(), delivery_id="D1"), path="/nexus/webhooks/nope")

    assert response.status_code == 404
    [row] = await hub.logs()
    assert (row.channel, row.status, row.http_status, row.verified) == ("nope", "rejected", 404, False)
    assert row.delivery_id is None
    assert "not configured" in (row.error or "")


async def test_duplicate_delivery_id_is_stored_once_and_processed_once(
    hub: Hub, http: httpx.AsyncClient
) -> None:
    await hub.seed()
    received: list[WebhookReceived] = []
    hub.nexus.events.listen(WebhookReceived, received.append)
    d = delivery(sale(quantity=1), delivery_id="D1", event_id="E1")

    first = await post(http, hub, d)
    await hub.processor.drain()
    second = await post(http, hub, d)
    await hub.processor.drain()

    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (second.status_code, second.json()["status"]) == (200, "duplicate")
    [row] = await hub.logs()
    assert row.status == "processed" and row.attempts == 1
    assert len(received) == 1
    assert hub.driver().parsed == 3  # ingest, processing, and the duplicate's ingest only
    assert (await hub.item()).on_hand == 9


async def test_duplicate_event_id_with_a_new_delivery_id_is_stored_once(
    hub: Hub, http: httpx.AsyncClient
) -> None:
    await hub.seed()
    first = await post(http, hub, delivery(sale(quantity=1), delivery_id="D1", event_id="E1"))
    second = await post(http, hub, delivery(sale(quantity=1), delivery_id="D2", event_id="E1"))
    await hub.processor.drain()

    assert [first.json()["status"], second.json()["status"]] == ["accepted", "duplicate"]
    [row] = await hub.logs()
    assert row.delivery_id == "D1"
    assert (await hub.item()).on_hand == 9


async def test_forged_request_with_a_real_delivery_id_does_not_block_the_real_one(
    hub: Hub, http: httpx.AsyncClient
) -> None:
    await hub.seed()
    forged = delivery(sale(quantity=5), delivery_id="D1", event_id="E1", secret="attacker")
    real = delivery(sale(quantity=1), delivery_id="D1", event_id="E1")

    assert (await post(http, hub, forged)).status_code == 401
    response = await post(http, hub, real)
    await hub.processor.drain()

    assert (response.status_code, response.json()["status"]) == (200, "accepted")
    rejected, stored = await hub.logs()
    assert (rejected.status, rejected.delivery_id, rejected.event_id) == ("rejected", None, None)
    assert (stored.status, stored.delivery_id, stored.event_id) == ("processed", "D1", "E1")
    assert (await hub.item()).on_hand == 9


async def test_signature_is_over_the_raw_bytes(hub: Hub, http: httpx.AsyncClient) -> None:
    """Whitespace and key order are part of what is signed: the stored body is byte for byte."""
    await hub.seed()
    body = b'{ "sales" : [ {"quantity": 1, "remote_id": "R1", "order_id": "O9", "line_id": "L1"} ] }\n'
    response = await post(http, hub, delivery(body))
    await hub.processor.drain()
    assert response.status_code == 200
    [row] = await hub.logs()
    assert row.body == body
    assert row.status == "processed"
    assert SECRET not in json.dumps(row.headers)
