"""What `nexus status` and the dashboard show per channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import case, func, select

from nexus.domain.vocabulary import DeadLetterStatus
from nexus.storage.models import ChannelMapping, DeadLetter, utcnow

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


async def channel_status(nexus: Nexus) -> list[ChannelStatus]:
    now = utcnow()
    async with nexus.db.read() as session:
        rows = {
            row.channel: row
            for row in await session.execute(
                select(
                    ChannelMapping.channel,
                    func.count().label("listings"),
                    func.sum(case((ChannelMapping.dirty_since.is_not(None), 1), else_=0)).label("dirty"),
                    func.sum(case((ChannelMapping.lease_until > now, 1), else_=0)).label("in_flight"),
                    func.sum(case((ChannelMapping.failed_at.is_not(None), 1), else_=0)).label("failed"),
                    func.max(ChannelMapping.last_synced_at).label("last_sync"),
                ).group_by(ChannelMapping.channel)
            )
        }
        letters = dict(
            (
                await session.execute(
                    select(DeadLetter.channel, func.count())
                    .where(DeadLetter.status == DeadLetterStatus.FAILED)
                    .group_by(DeadLetter.channel)
                )
            ).all()
        )
    statuses = []
    for name, config in nexus.settings.channels.items():
        row = rows.get(name)
        tokens: float | None = None
        try:
            tokens = await nexus.channel(name).limiter.level()
        except Exception:  # a channel whose driver cannot be built still gets its row
            tokens = None
        last_sync = row.last_sync if row is not None else None
        if isinstance(last_sync, str):  # SQLite's MAX() returns text, not the column's type
            last_sync = datetime.fromisoformat(last_sync)
        statuses.append(
            ChannelStatus(
                channel=name,
                driver=config.driver,
                enabled=config.enabled,
                listings=int(row.listings) if row else 0,
                dirty=int(row.dirty or 0) if row else 0,
                in_flight=int(row.in_flight or 0) if row else 0,
                failed=int(row.failed or 0) if row else 0,
                dead_letters=int(letters.get(name, 0)),
                last_sync=last_sync,
                tokens=tokens,
            )
        )
    return statuses
