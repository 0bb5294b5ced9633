"""The dead-letter desk (nexus.sync.dead_letters): list, show, replay, resolve, and what each does
to the counts `nexus status` shows. A replay pushes what the listing should show now."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from nexus.domain.vocabulary import DeadLetterStatus
from nexus.errors import DeadLetterError, TerminalChannelError, UnknownDeadLetterError
from nexus.storage.models import utcnow
from nexus.sync.dead_letters import (
    DeadLetterFilter,
    list_dead_letters,
    replay_dead_letters,
    resolve_dead_letters,
    show_dead_letter,
)
from tests.sync.sync_kit import Engine

MakeEngine = Callable[..., Any]
DEAD_LETTERED = "listing dead-lettered: no more pushes until its stock changes or `nexus dlq replay`"


async def drain(engine: Engine, channel: str = "m") -> None:
    worker = engine.nexus.push_worker(channel)
    while await worker.run_once() is not None:
        pass


async def counts(engine: Engine, channel: str = "m") -> tuple[int, int, int]:
    """(dead letters, failed listings, dirty listings) as `nexus status` shows them."""
    row = next(row for row in await engine.nexus.status() if row.channel == channel)
    return row.dead_letters, row.failed, row.dirty


async def dead_letter(
    engine: Engine, sku: str, error: str = "404 listing not found", channel: str = "m"
) -> int:
    """Sell one of `sku` while its channel refuses it for good: one dead letter; its id."""
    engine.driver(channel).fail_listing(TerminalChannelError(error, status=404), sku=sku, times=None)
    await engine.nexus.product(sku).adjust(-1)
    for name in engine.nexus.channel_names():  # the other channel takes the sale's level
        await drain(engine, name)
    engine.driver(channel).clear_failures()
    page = await list_dead_letters(engine.nexus.db, DeadLetterFilter(channel=channel, sku=sku))
    [letter] = page.items
    return letter.id


async def test_dead_lettering_logs_a_warning_with_channel_sku_and_error(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    with capture_logs() as logs:
        letter_id = await dead_letter(engine, "S", "404 listing not found")
    [warning] = [entry for entry in logs if entry["event"] == DEAD_LETTERED]
    assert warning["log_level"] == "warning"
    assert (warning["channel"], warning["sku"], warning["error"]) == ("m", "S", "404 listing not found")
    assert warning["dead_letter_id"] == letter_id


async def test_list_filters_and_pages(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"A": 10, "B": 10, "C": 10}, channels=("m", "n"))
    a = await dead_letter(engine, "A", "404 listing not found")
    b = await dead_letter(engine, "B", "422 Quantity Invalid")
    c = await dead_letter(engine, "C", "404 listing not found", channel="n")
    db = engine.nexus.db

    everything = await list_dead_letters(db)
    assert [item.id for item in everything.items] == [c, b, a]  # newest first
    assert everything.total == 3 and everything.next_offset is None
    [first] = (await list_dead_letters(db, DeadLetterFilter(channel="m", sku="A"))).items
    assert (first.id, first.channel, first.sku, first.status, first.quantity, first.attempts) == (
        a,
        "m",
        "A",
        "failed",
        9,
        1,
    )
    assert [i.id for i in (await list_dead_letters(db, DeadLetterFilter(error="QUANTITY"))).items] == [b]
    assert [i.id for i in (await list_dead_letters(db, DeadLetterFilter(channel="n"))).items] == [c]
    assert (await list_dead_letters(db, DeadLetterFilter(older_than=timedelta(hours=1)))).total == 0
    later = utcnow() + timedelta(hours=2)
    assert (
        await list_dead_letters(db, DeadLetterFilter(older_than=timedelta(hours=1)), now=later)
    ).total == 3
    resolved = DeadLetterFilter(statuses=frozenset({DeadLetterStatus.RESOLVED}))
    assert (await list_dead_letters(db, resolved)).total == 0

    page = await list_dead_letters(db, limit=2)
    assert [i.id for i in page.items] == [c, b] and page.next_offset == 2
    page = await list_dead_letters(db, limit=2, offset=2)
    assert [i.id for i in page.items] == [a] and page.next_offset is None


async def test_show_has_the_payload_the_history_and_the_listing_now(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    letter_id = await dead_letter(engine, "S")
    await engine.nexus.db.dispose()  # nothing cached: read back from the database
    detail = await show_dead_letter(engine.nexus.db, letter_id)
    assert detail.letter.error == "404 listing not found" and detail.letter.attempts == 1
    assert detail.payload["quantity"] == 9 and detail.payload["sku"] == "S"
    assert [(h.from_status, h.status) for h in detail.history] == [(None, "failed")]
    assert detail.history[0].actor.startswith("worker ")
    assert detail.listing is not None
    assert (detail.listing.desired, detail.listing.believed, detail.listing.failed) == (9, 10, True)
    document = detail.as_dict()
    assert document["listing"]["desired"] == 9 and isinstance(document["failed_at"], str)

    with pytest.raises(UnknownDeadLetterError, match="no dead letter 999"):
        await show_dead_letter(engine.nexus.db, 999)


async def test_replay_pushes_the_current_level_not_the_stale_payload(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10, "T": 10})
    letter_id = await dead_letter(engine, "S")  # it tried to push 9
    assert await counts(engine) == (1, 1, 1)

    await engine.nexus.product("S").adjust(-3)  # the channel is fixed, the stock moved on: 6
    result = await replay_dead_letters(engine.nexus.db, [letter_id], actor="test", note="token fixed")
    assert result.replaying == [letter_id] and result.channels == ["m"]
    assert (await show_dead_letter(engine.nexus.db, letter_id)).letter.status == "replaying"
    assert await counts(engine) == (0, 0, 1)  # no longer failed; queued for its push

    round_ = await engine.nexus.push_worker("m").run_once()

    assert round_ is not None and round_.ok == 1
    assert [(u.sku, u.quantity) for u in engine.driver().push_calls[-1]] == [("S", 6)]
    assert engine.driver().levels["m-S"] == 6
    detail = await show_dead_letter(engine.nexus.db, letter_id)
    assert detail.letter.status == "resolved" and detail.letter.resolved_at is not None
    assert [(h.from_status, h.status, h.reason) for h in detail.history] == [
        (None, "failed", "404 listing not found"),
        ("failed", "replaying", "token fixed"),
        ("replaying", "resolved", "a push of the listing succeeded"),
    ]
    assert await counts(engine) == (0, 0, 0)


async def test_replay_queues_a_listing_nothing_else_would_push(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    letter_id = await dead_letter(engine, "S")
    assert await engine.nexus.push_worker("m").run_once() is None  # dead-lettered: out of the queue

    await replay_dead_letters(engine.nexus.db, [letter_id], actor="test")
    await drain(engine)

    assert engine.driver().levels["m-S"] == 9
    assert (await show_dead_letter(engine.nexus.db, letter_id)).letter.status == "resolved"
    listing = await engine.listing("S")
    assert (listing.failed_at, listing.attempts, listing.dirty_since) == (None, 0, None)


async def test_a_replay_that_fails_again_goes_back_to_failed(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    letter_id = await dead_letter(engine, "S")
    await replay_dead_letters(engine.nexus.db, [letter_id], actor="test")
    engine.driver().fail_listing(TerminalChannelError("401 bad token", status=401), sku="S")

    await drain(engine)

    page = await list_dead_letters(engine.nexus.db)
    assert [(i.id, i.status, i.error) for i in page.items] == [(letter_id, "failed", "401 bad token")]
    detail = await show_dead_letter(engine.nexus.db, letter_id)
    assert [(h.from_status, h.status) for h in detail.history][-2:] == [
        ("failed", "replaying"),
        ("replaying", "failed"),
    ]
    assert await counts(engine) == (1, 1, 1)


async def test_replay_by_filter_takes_only_the_matching_failed_letters(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"A": 10, "B": 10, "C": 10}, channels=("m", "n"))
    a = await dead_letter(engine, "A", "404 listing not found")
    await dead_letter(engine, "B", "422 Quantity Invalid")
    await dead_letter(engine, "C", "404 listing not found", channel="n")
    db = engine.nexus.db

    result = await replay_dead_letters(db, where=DeadLetterFilter(channel="m", error="404"), actor="test")

    assert result.replaying == [a] and result.channels == ["m"]
    assert await counts(engine, "m") == (1, 1, 2) and await counts(engine, "n") == (1, 1, 1)
    await drain(engine)
    assert engine.driver("m").levels["m-A"] == 9 and engine.driver("m").levels["m-B"] == 10
    assert await counts(engine, "m") == (1, 1, 1)
    nothing = await replay_dead_letters(db, where=DeadLetterFilter(channel="m", error="404"), actor="test")
    assert nothing.replaying == []


async def test_replay_refuses_no_selection_unknown_and_resolved_letters(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    letter_id = await dead_letter(engine, "S")
    db = engine.nexus.db
    with pytest.raises(DeadLetterError, match="needs dead letter ids or a filter"):
        await replay_dead_letters(db, actor="test")
    with pytest.raises(DeadLetterError, match="needs dead letter ids or a filter"):
        await replay_dead_letters(db, where=DeadLetterFilter(), actor="test")
    with pytest.raises(UnknownDeadLetterError, match="no dead letter 998, 999"):
        await replay_dead_letters(db, [letter_id, 998, 999], actor="test")
    assert (await show_dead_letter(db, letter_id)).letter.status == "failed"  # nothing half-done
    await resolve_dead_letters(db, [letter_id], actor="test")
    with pytest.raises(DeadLetterError, match=f"dead letter {letter_id} already resolved"):
        await replay_dead_letters(db, [letter_id], actor="test")


async def test_resolve_acknowledges_without_replaying(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10, "T": 10})
    s = await dead_letter(engine, "S")
    t = await dead_letter(engine, "T")
    assert await counts(engine) == (2, 2, 2)

    result = await resolve_dead_letters(engine.nexus.db, [s], actor="test", note="discontinued")

    assert result.resolved == [s] and result.already == []
    assert await counts(engine) == (1, 2, 2)  # the listing itself stays dead-lettered
    assert await engine.nexus.push_worker("m").run_once() is None  # and out of the queue
    detail = await show_dead_letter(engine.nexus.db, s)
    assert detail.letter.status == "resolved"
    assert (detail.history[-1].actor, detail.history[-1].reason) == ("test", "discontinued")
    again = await resolve_dead_letters(engine.nexus.db, [s, t], actor="test")
    assert again.resolved == [t] and again.already == [s]
    assert await counts(engine) == (0, 2, 2)
    with pytest.raises(UnknownDeadLetterError, match="no dead letter 999"):
        await resolve_dead_letters(engine.nexus.db, [999], actor="test")


async def test_a_later_successful_push_clears_a_dead_letter(make_engine: MakeEngine) -> None:
    """The stock moved and the channel took the new level: the dead letter leaves the counts."""
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    letter_id = await dead_letter(engine, "S")
    await engine.nexus.product("S").adjust(-1)
    await drain(engine)
    assert engine.driver().levels["m-S"] == 8
    assert (await show_dead_letter(engine.nexus.db, letter_id)).letter.status == "resolved"
    assert await counts(engine) == (0, 0, 0)


async def test_failing_again_updates_the_open_dead_letter(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine()
    await engine.seed({"S": 10})
    letter_id = await dead_letter(engine, "S", "404 listing not found")
    engine.driver().fail_listing(TerminalChannelError("410 gone", status=410), sku="S")
    await engine.nexus.product("S").adjust(-1)
    await drain(engine)
    [item] = (await list_dead_letters(engine.nexus.db)).items
    assert (item.id, item.error, item.quantity) == (letter_id, "410 gone", 8)
    assert await counts(engine) == (1, 1, 1)
