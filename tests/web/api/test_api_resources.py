"""What each resource does through the API: pagination totals, filters, idempotent adjustments,
force push, pause and resume, sync and batches, the dead-letter desk (and its refusal of an
unfiltered bulk action), the webhook log, the push audit and conflicts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tests.web.api.conftest import BACKENDS, Api, conflict, dead_letter, stored_webhook

from nexus.storage.models import StockMovement


async def movements(api: Api, sku: str) -> int:
    async with api.nexus.db.read() as session:
        statement = select(func.count()).select_from(StockMovement).where(StockMovement.sku == sku)
        return int(await session.scalar(statement) or 0)


async def test_items_search_pages_and_shows_listings(api: Api) -> None:
    for n in range(7):
        assert (
            await api.post("/items", json={"sku": f"TEE-{n}", "title": "Tee", "on_hand": n})
        ).status_code == 201
    first = (await api.get("/items", params={"q": "TEE", "limit": 3})).json()
    assert (first["total"], first["limit"], first["offset"], first["next_offset"]) == (7, 3, 0, 3)
    assert [item["sku"] for item in first["items"]] == ["TEE-0", "TEE-1", "TEE-2"]
    last = (await api.get("/items", params={"q": "TEE", "limit": 3, "offset": 6})).json()
    assert ([item["sku"] for item in last["items"]], last["next_offset"]) == (["TEE-6"], None)
    assert (await api.get("/items", params={"q": "tee"})).json()["total"] == 7  # titles, any case
    assert (await api.get("/items")).json()["total"] == 10

    shown = (await api.get("/items/A")).json()
    assert (shown["on_hand"], shown["available"]) == (10, 10)
    assert [(row["channel"], row["desired"], row["in_sync"]) for row in shown["listings"]] == [
        ("m", 10, True),
        ("n", 10, True),
    ]
    created = (await api.get("/items/TEE-4")).json()
    assert (created["title"], created["on_hand"], created["listings"]) == ("Tee", 4, [])


async def test_an_adjustment_is_booked_once_per_key(api: Api) -> None:
    key = {"Idempotency-Key": "order-1001-return"}
    first = await api.post("/items/A/adjustments", json={"delta": -3, "reason": "sale"}, headers=key)
    assert first.status_code == 200 and "idempotent-replayed" not in first.headers
    assert (first.json()["previous_on_hand"], first.json()["on_hand"], first.json()["delta"]) == (10, 7, -3)
    again = await api.post("/items/A/adjustments", json={"delta": -3, "reason": "sale"}, headers=key)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the first result, not a second change
    assert (await api.get("/items/A")).json()["on_hand"] == 7
    assert await movements(api, "A") == 2  # the starting stock and one sale

    other = await api.post("/items/A/adjustments", json={"delta": -4, "reason": "sale"}, headers=key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    elsewhere = await api.post("/items/B/adjustments", json={"delta": -3, "reason": "sale"}, headers=key)
    assert elsewhere.json()["error"]["code"] == "idempotency_conflict"
    assert (await api.get("/items/B")).json()["on_hand"] == 10

    missing = await api.post("/items/A/adjustments", json={"delta": 1})
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid_request"
    zero = await api.post("/items/A/adjustments", json={"delta": 0}, headers={"Idempotency-Key": "z"})
    assert zero.status_code == 422
    bad_reason = await api.post(
        "/items/A/adjustments", json={"delta": 1, "reason": "gift"}, headers={"Idempotency-Key": "r"}
    )
    assert bad_reason.status_code == 422
    unknown = await api.post("/items/NOPE/adjustments", json={"delta": 1}, headers={"Idempotency-Key": "u"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert (await api.get("/items/A")).json()["on_hand"] == 7


async def test_setting_the_quantity_books_the_difference(api: Api) -> None:
    answer = (await api.put("/items/A/quantity", json={"on_hand": 4, "reference": "stocktake"})).json()
    assert (answer["delta"], answer["on_hand"], answer["reference"]) == (-6, 4, "stocktake")
    key = {"Idempotency-Key": "count-7"}
    first = await api.put("/items/A/quantity", json={"on_hand": 9}, headers=key)
    await api.post("/items/A/adjustments", json={"delta": -1}, headers={"Idempotency-Key": "sale-1"})
    retried = await api.put("/items/A/quantity", json={"on_hand": 9}, headers=key)
    assert retried.json() == first.json() and retried.headers["idempotent-replayed"] == "true"
    assert (await api.get("/items/A")).json()["on_hand"] == 8  # the retry did not undo the sale
    negative = await api.put("/items/A/quantity", json={"on_hand": -1})
    assert negative.status_code == 422

    ledger = (await api.get("/items/A/ledger", params={"limit": 2})).json()
    assert ledger["total"] == 4 and ledger["next_offset"] == 2
    assert [(row["delta"], row["on_hand_after"]) for row in ledger["items"]] == [(-1, 8), (5, 9)]


async def test_listings_filters_and_force_push(api: Api) -> None:
    await api.nexus.product("A").adjust(-2)  # queued on m and n, nothing pushed yet
    await api.drain("n")
    dirty = (await api.get("/channels/m/listings", params={"dirty": "true"})).json()
    assert [row["sku"] for row in dirty["items"]] == ["A"] and dirty["total"] == 1
    clean = (await api.get("/channels/m/listings", params={"dirty": "false", "failed": "false"})).json()
    assert [row["sku"] for row in clean["items"]] == ["B", "C"]
    assert (await api.get("/channels/n/listings", params={"dirty": "true"})).json()["total"] == 0
    assert (await api.get("/channels/atlantis/listings")).status_code == 404

    pushed = (await api.post("/channels/m/listings/A/push")).json()
    assert pushed["in_sync"] and pushed["listing"]["believed"] == 8 and pushed["rounds"] == 1
    assert api.engine.driver("m").levels["m-A"] == 8
    # A clean listing is pushed as well: that is what "force" means.
    again = (await api.post("/channels/m/listings/B/push")).json()
    assert again["in_sync"] and again["rounds"] == 1
    assert (await api.post("/channels/m/listings/NOPE/push")).status_code == 404

    await api.post("/channels/m/pause")
    blocked = await api.post("/channels/m/listings/A/push")
    assert blocked.status_code == 409 and blocked.json()["error"]["code"] == "channel_unavailable"
    # A sync that a paused channel could never finish is refused too, as `nexus sync` refuses it.
    sync = await api.post("/sync", json={"channels": ["m", "n"]})
    assert sync.status_code == 409 and "m is paused" in sync.json()["error"]["message"]
    assert (await api.get("/batches")).json()["total"] == 0


async def test_channel_cards_pause_and_resume(api: Api) -> None:
    await api.nexus.product("A").adjust(-1)
    cards = (await api.get("/channels")).json()
    assert cards["total"] == 2 and [card["channel"] for card in cards["items"]] == ["m", "n"]
    m = cards["items"][0]
    assert (m["state"], m["queued"], m["listings"]) == ("connected", 1, 3)
    assert m["capacity"] >= m["tokens"] > 0

    paused = (await api.post("/channels/m/pause", json={"reason": "stocktake"})).json()
    assert (paused["state"], paused["paused_by"], paused["pause_reason"], paused["queued"]) == (
        "paused",
        "token:ops",
        "stocktake",
        1,
    )
    shown = (await api.get("/channels/m")).json()
    assert shown["state"] == "paused" and shown["rates"]["channel"] == "m"
    resumed = (await api.post("/channels/m/resume")).json()
    assert resumed["state"] == "connected"
    assert (await api.post("/channels/atlantis/pause")).status_code == 404

    await api.drain("m")
    rates = (await api.get("/health")).json()
    assert rates["items"][0]["hour"] == {"pushed": 1, "succeeded": 1, "rate": 1.0}


async def test_sync_starts_a_batch_and_retries_its_failed_members(api: Api) -> None:
    from nexus.errors import TerminalChannelError

    api.engine.driver("m").fail_listing(TerminalChannelError("404 gone", status=404), sku="B", times=None)
    started = await api.post("/sync", json={"channels": ["m"]})
    assert started.status_code == 202
    batch_id = started.json()["batch_id"]
    assert started.json()["channels"] == ["m"]
    await api.drain("m")
    shown = (await api.get(f"/batches/{batch_id}")).json()
    assert (shown["total"], shown["processed"], shown["failed"], shown["progress"]) == (3, 2, 1, 1.0)
    assert [letter["sku"] for letter in shown["dead_letters"]["items"]] == ["B"]
    assert shown["push_requests"]["listings"] == 3
    listed = (await api.get("/batches")).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == batch_id

    api.engine.driver("m").clear_failures()
    retried = (await api.post(f"/batches/{batch_id}/retry-failed")).json()
    assert len(retried["replaying"]) == 1 and retried["channels"] == ["m"]
    await api.drain("m")
    open_letters = (await api.get("/dead-letters", params={"batch": batch_id})).json()
    assert open_letters["total"] == 0

    unknown = await api.post("/sync", json={"channels": ["atlantis"]})
    assert unknown.status_code == 404
    no_such_sku = await api.post("/sync", json={"skus": ["NOPE"]})
    assert no_such_sku.status_code == 404


async def test_dead_letters_refuse_an_unfiltered_bulk_action(api: Api) -> None:
    a = await dead_letter(api, "A", "m", "404 listing not found")
    b = await dead_letter(api, "B", "m", "422 Quantity Invalid")
    c = await dead_letter(api, "C", "n", "404 listing not found")
    everything = (await api.get("/dead-letters")).json()
    assert [item["id"] for item in everything["items"]] == [c, b, a] and everything["total"] == 3
    by_error = (await api.get("/dead-letters", params={"error": "quantity"})).json()
    assert [item["id"] for item in by_error["items"]] == [b]
    assert (await api.get("/dead-letters", params={"channel": "n"})).json()["total"] == 1
    paged = (await api.get("/dead-letters", params={"limit": 2, "offset": 2})).json()
    assert ([item["id"] for item in paged["items"]], paged["total"]) == ([a], 3)
    detail = (await api.get(f"/dead-letters/{a}")).json()
    assert detail["sku"] == "A" and detail["history"][0]["status"] == "failed" and detail["listing"]["failed"]

    for body in (None, {}, {"ids": []}, {"note": "all of them"}):
        for action in ("replay", "resolve"):
            refused = await api.post(f"/dead-letters/{action}", json=body)
            assert refused.status_code == 422, (action, body)
            assert refused.json()["error"]["code"] == "unfiltered"
    both = await api.post("/dead-letters/replay", json={"ids": [a], "channel": "m"})
    assert both.status_code == 422 and both.json()["error"]["code"] == "invalid_request"
    typo = await api.post("/dead-letters/replay", json={"chanel": "m"})
    assert typo.status_code == 422 and typo.json()["error"]["code"] == "invalid_request"
    assert (await api.get("/dead-letters")).json()["total"] == 3  # nothing changed

    replayed = (await api.post("/dead-letters/replay", json={"channel": "m", "error": "404"})).json()
    assert replayed == {"replaying": [a], "gone": [], "channels": ["m"]}
    await api.drain("m")
    assert [item["id"] for item in (await api.get("/dead-letters")).json()["items"]] == [c, b]
    resolved = (await api.post("/dead-letters/resolve", json={"ids": [b], "note": "delisted"})).json()
    assert resolved == {"resolved": [b], "already": []}
    again = await api.post("/dead-letters/replay", json={"ids": [b]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    missing = await api.post("/dead-letters/replay", json={"ids": [999]})
    assert missing.status_code == 404
    by_filter = (await api.post("/dead-letters/resolve", json={"channel": "n"})).json()
    assert by_filter == {"resolved": [c], "already": []}
    assert (await api.get("/dead-letters")).json()["total"] == 0
    assert (await api.get("/dead-letters", params={"status": "resolved"})).json()["total"] == 3


async def test_webhook_log_search_show_and_reprocess(api: Api) -> None:
    done = await stored_webhook(
        api, delivery_id="d-1", headers={"x-memory-signature": "sig-abc", "content-type": "application/json"}
    )
    rejected = await stored_webhook(api, status="rejected", verified=False, delivery_id="d-2")
    await stored_webhook(api, channel="n", delivery_id="d-3")
    assert (await api.get("/webhooks")).json()["total"] == 3
    unverified = (await api.get("/webhooks", params={"verified": "false"})).json()
    assert [item["id"] for item in unverified["items"]] == [rejected]
    assert [
        item["id"] for item in (await api.get("/webhooks", params={"remote_id": "d-1"})).json()["items"]
    ] == [done]
    assert (await api.get("/webhooks", params={"channel": "n", "status": "processed"})).json()["total"] == 1
    assert (await api.get("/webhooks", params={"received_from": "2999-01-01T00:00:00"})).json()["total"] == 0
    assert (await api.get("/webhooks", params={"status": "exploded"})).status_code == 422

    shown = (await api.get(f"/webhooks/{done}")).json()
    assert shown["body"] == '{"sale": 1}' and not shown["truncated"]
    assert shown["headers"]["x-memory-signature"] == "***"
    assert "sig-abc" not in str(shown)

    refused = await api.post(f"/webhooks/{rejected}/reprocess")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "conflict"
    assert (await api.post("/webhooks/999/reprocess")).status_code == 404
    redone = (await api.post(f"/webhooks/{done}/reprocess")).json()
    assert redone["id"] == done and redone["status"] in {"processed", "failed", "received"}


async def test_push_audit_is_masked_and_filtered(api: Api) -> None:
    await api.nexus.product("A").adjust(-1)
    await api.drain("m")
    await api.drain("n")
    audit = (await api.get("/audit")).json()
    assert audit["total"] == 2 and {row["channel"] for row in audit["items"]} == {"m", "n"}
    only_m = (await api.get("/audit", params={"channel": "m", "sku": "A", "status": "ok"})).json()
    assert only_m["total"] == 1
    [row] = only_m["items"]
    assert row["payload"]["updates"][0]["sku"] == "A" and row["succeeded"] == 1
    assert (await api.get("/audit", params={"sku": "B"})).json()["total"] == 0
    assert (await api.get("/audit", params={"status": "exploded"})).status_code == 422


async def test_conflicts_list_and_resolve(api: Api) -> None:
    dispute = await conflict(api, "B", "m")
    listed = (await api.get("/conflicts")).json()
    assert listed["total"] == 1 and listed["items"][0]["observed"] == 13
    settled = (await api.post(f"/conflicts/{dispute}/resolve", json={"take": "channel"})).json()
    assert (settled["take"], settled["booked"], settled["sku"], settled["on_hand"]) == ("channel", 3, "B", 13)
    assert (await api.get("/conflicts")).json()["total"] == 0
    assert (await api.post(f"/conflicts/{dispute}/resolve", json={"take": "nexus"})).status_code == 404
    assert (await api.post(f"/conflicts/{dispute}/resolve", json={"take": "both"})).status_code == 422


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_text_the_database_cannot_hold_is_refused_not_a_500(api: Api) -> None:
    # A NUL reaches PostgreSQL as an error; a date at the edge of the calendar overflows in UTC.
    for path, params in [
        ("/items", {"q": "a\x00b"}),
        ("/items/a%00b", None),
        ("/dead-letters", {"error": "\x00"}),
        ("/audit", {"sku": "\x00"}),
        ("/webhooks", {"received_from": "0001-01-01T00:00:00+05:00"}),
        ("/webhooks", {"received_to": "9999-12-31T23:59:59-05:00"}),
    ]:
        answer = await api.get(path, params=params)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request", path
    for path, body in [("/items", {"sku": "x\x00y"}), ("/channels/m/pause", {"reason": "\x00"})]:
        answer = await api.post(path, json=body)
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request", path
    assert (await api.get("/channels/m")).json()["state"] == "connected"
