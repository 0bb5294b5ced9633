"""The per-minute 429 count of each channel (`nexus_rate_limit_logs`): what the dashboard's cards
and `GET /nexus/api/v1/channels` show as 429s in the last minute and hour, from every process.

One row per channel and minute, incremented with an upsert, so a 429 storm adds one statement per
refusal to a row nobody else is waiting on (each refusal already costs its Retry-After wait).
"""

from __future__ import annotations

from datetime import datetime

from nexus.storage.database import Database
from nexus.storage.dialect import upsert_insert
from nexus.storage.models import RateLimitLog, utcnow


async def count_throttled(db: Database, channel: str, *, now: datetime | None = None) -> None:
    minute = (now or utcnow()).replace(second=0, microsecond=0)
    insert = upsert_insert(db.is_sqlite)
    statement = insert(RateLimitLog).values(channel=channel, minute=minute, requests=0, throttled=1)
    statement = statement.on_conflict_do_update(
        index_elements=[RateLimitLog.channel, RateLimitLog.minute],
        set_={"throttled": RateLimitLog.throttled + 1},
    )
    async with db.transaction() as session:
        await session.execute(statement)
