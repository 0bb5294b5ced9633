"""Every 429 a channel answers is counted per minute in the database, so the channel cards show
what every process met (nexus.sync.rate_log, called by the throttle monitor)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from nexus.storage.models import utcnow
from nexus.sync.overview import channel_overview
from nexus.sync.rate_log import count_throttled
from tests.sync.sync_kit import Engine

MakeEngine = Callable[..., Any]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_engine(request: pytest.FixtureRequest, make_engine: MakeEngine) -> MakeEngine:
    if request.param == "sqlite":
        return make_engine
    url = request.getfixturevalue("postgres_url")

    async def build(**overrides: Any) -> Engine:
        return await make_engine(database_url=url, **overrides)  # type: ignore[no-any-return]

    return build


async def test_429s_reach_the_channel_card(make_engine: MakeEngine) -> None:
    engine: Engine = await make_engine(channels={"m": {"driver": "mem"}})
    monitor = engine.nexus.channel("m").monitor
    for _ in range(3):
        await monitor.throttled()
    await count_throttled(engine.nexus.db, "m", now=utcnow() - timedelta(minutes=20))
    [card] = await channel_overview(engine.nexus)
    assert (card.throttled_last_minute, card.throttled_last_hour) == (3, 4)
