"""What `nexus status` and the dashboard show per channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from nexus.domain.vocabulary import DeadLetterStatus
from nexus.storage.models import DeadLetter
from nexus.sync.queue import QueueCounts

if TYPE_CHECKING:
    from nexus.engine import Nexus


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    channel: str
    driver: str
    enabled: bool
    listings: int
    dirty: int
    in_flight: int
    failed: int
    dead_letters: int
    last_sync: datetime | None
    tokens: float | None
    state: str = "connected"  # connected, throttled, paused or disconnected (nexus.sync.channel_state)


async def channel_status(nexus: Nexus) -> list[ChannelStatus]:
    counts = await nexus.queue.counts()
    async with nexus.db.read() as session:
        letters = dict(
            (
                await session.execute(
                    select(DeadLetter.channel, func.count())
                    .where(DeadLetter.status == DeadLetterStatus.FAILED)
                    .group_by(DeadLetter.channel)
                )
            ).all()
        )
    health = await nexus.channel_states.all(fresh=True)
    statuses = []
    for name, config in nexus.settings.channels.items():
        row = counts.get(name, QueueCounts())
        tokens: float | None = None
        try:
            tokens = await nexus.channel(name).limiter.level()
        except Exception:  # a channel whose driver cannot be built still gets its row
            tokens = None
        last_sync: datetime | str | None = row.last_sync
        if isinstance(last_sync, str):  # SQLite's MAX() returns text, not the column's type
            last_sync = datetime.fromisoformat(last_sync)
        statuses.append(
            ChannelStatus(
                channel=name,
                driver=config.driver,
                enabled=config.enabled,
                listings=row.listings,
                dirty=row.dirty,
                in_flight=row.in_flight,
                failed=row.failed,
                dead_letters=int(letters.get(name, 0)),
                last_sync=last_sync,
                tokens=tokens,
                state=health[name].state.value,
            )
        )
    return statuses
