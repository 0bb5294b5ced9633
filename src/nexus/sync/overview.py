"""What an operator watches per channel: the dashboard's channel cards, `GET /nexus/api/v1/channels`
and the health page's success rates.

`channel_overview` builds on `nexus.status.channel_status` (state, queue counts, dead letters,
bucket level) and adds what a person judges a channel's pace by: the bucket's capacity, how long
the oldest waiting listing has waited, pushes in the last minute (the push audit, `sync_jobs`)
and the channel's 429s (`rate_limit_logs`, one row per channel and minute). `health_rates` reads
the push audit over 1 h / 24 h / 7 d: the share of the listings sent that the channel accepted.

Plain async functions over a `Nexus`: no web code, so the CLI, the API and the dashboard answer
from the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select

from nexus.status import channel_status
from nexus.storage.models import RateLimitLog, SyncJob, utcnow

if TYPE_CHECKING:
    from nexus.engine import Nexus

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ChannelCard:
    """One channel as its card shows it. `queued`: listings waiting for a push (dirty, not
    dead-lettered); `dirty` counts the dead-lettered ones too. `tokens`/`capacity`: the rate
    bucket's level and size (None when the channel's driver cannot be built)."""

    channel: str
    driver: str
    enabled: bool
    state: str  # connected, throttled, paused, disconnected
    state_since: datetime | None
    last_error: str | None
    paused_by: str | None
    pause_reason: str | None
    listings: int
    queued: int
    dirty: int
    in_flight: int
    failed: int
    dead_letters: int
    oldest_dirty_seconds: float | None  # how long the longest-waiting listing has waited
    last_sync: datetime | None  # the last successful push of any of its listings
    tokens: float | None
    capacity: float | None
    pushes_last_minute: int  # listings sent in the last minute (push audit)
    throttled_last_minute: int  # 429s the channel answered in the last minute
    throttled_last_hour: int

    def as_dict(self) -> dict[str, Any]:
        return {key: _json(value) for key, value in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class WindowRate:
    """Listings sent in a window and how many the channel accepted; `rate` is None when none were sent."""

    pushed: int
    succeeded: int

    @property
    def rate(self) -> float | None:
        return None if self.pushed == 0 else self.succeeded / self.pushed

    def as_dict(self) -> dict[str, Any]:
        return {"pushed": self.pushed, "succeeded": self.succeeded, "rate": self.rate}


@dataclass(frozen=True, slots=True)
class HealthRates:
    channel: str
    hour: WindowRate
    day: WindowRate
    week: WindowRate

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "hour": self.hour.as_dict(),
            "day": self.day.as_dict(),
            "week": self.week.as_dict(),
        }


async def channel_overview(nexus: Nexus, *, now: datetime | None = None) -> list[ChannelCard]:
    """Every configured channel's card, in configuration order."""
    now = now or utcnow()
    statuses = await channel_status(nexus)
    backlog = await nexus.queue.backlog()
    health = await nexus.channel_states.all()  # channel_status read them fresh just now
    async with nexus.db.read() as session:
        pushes = dict(
            (
                await session.execute(
                    select(SyncJob.channel, func.sum(SyncJob.count))
                    .where(SyncJob.created_at >= now - MINUTE)
                    .group_by(SyncJob.channel)
                )
            ).all()
        )
        # The current minute's row counts toward the last minute: the rows are per whole minute.
        minute_start = now.replace(second=0, microsecond=0)
        throttled = {
            channel: (int(last_minute or 0), int(last_hour or 0))
            for channel, last_minute, last_hour in (
                await session.execute(
                    select(
                        RateLimitLog.channel,
                        func.sum(
                            case(
                                (RateLimitLog.minute >= minute_start - MINUTE, RateLimitLog.throttled),
                                else_=0,
                            )
                        ),
                        func.sum(RateLimitLog.throttled),
                    )
                    .where(RateLimitLog.minute >= minute_start - HOUR)
                    .group_by(RateLimitLog.channel)
                )
            ).all()
        }
    cards = []
    for status in statuses:
        name = status.channel
        waiting = backlog.get(name)
        capacity: float | None = None
        try:
            capacity = nexus.channel(name).limiter.effective_limit.capacity
        except Exception:  # a channel whose driver cannot be built still gets its card
            capacity = None
        channel_health = health[name]
        last_minute, last_hour = throttled.get(name, (0, 0))
        cards.append(
            ChannelCard(
                channel=name,
                driver=status.driver,
                enabled=status.enabled,
                state=status.state,
                state_since=channel_health.since,
                last_error=channel_health.last_error,
                paused_by=channel_health.paused_by,
                pause_reason=channel_health.pause_reason,
                listings=status.listings,
                queued=waiting[0] if waiting else 0,
                dirty=status.dirty,
                in_flight=status.in_flight,
                failed=status.failed,
                dead_letters=status.dead_letters,
                oldest_dirty_seconds=max(0.0, (now - waiting[1]).total_seconds()) if waiting else None,
                last_sync=_aware(status.last_sync),
                tokens=status.tokens,
                capacity=capacity,
                pushes_last_minute=int(pushes.get(name) or 0),
                throttled_last_minute=last_minute,
                throttled_last_hour=last_hour,
            )
        )
    return cards


async def health_rates(nexus: Nexus, *, now: datetime | None = None) -> list[HealthRates]:
    """Per configured channel, the push success rate over the last hour, day and week."""
    now = now or utcnow()

    def within(window: timedelta, column: Any) -> Any:
        return func.sum(case((SyncJob.created_at >= now - window, column), else_=0))

    async with nexus.db.read() as session:
        rows = (
            await session.execute(
                select(
                    SyncJob.channel,
                    within(HOUR, SyncJob.count),
                    within(HOUR, SyncJob.succeeded),
                    within(DAY, SyncJob.count),
                    within(DAY, SyncJob.succeeded),
                    func.sum(SyncJob.count),
                    func.sum(SyncJob.succeeded),
                )
                .where(SyncJob.created_at >= now - WEEK)
                .group_by(SyncJob.channel)
            )
        ).all()
    sums = {row[0]: [int(value or 0) for value in row[1:]] for row in rows}
    rates = []
    for name in nexus.settings.channels:
        h_pushed, h_ok, d_pushed, d_ok, w_pushed, w_ok = sums.get(name, [0] * 6)
        rates.append(
            HealthRates(
                channel=name,
                hour=WindowRate(h_pushed, h_ok),
                day=WindowRate(d_pushed, d_ok),
                week=WindowRate(w_pushed, w_ok),
            )
        )
    return rates


def _aware(value: datetime | None) -> datetime | None:
    """SQLite's MAX() gives a naive time (the column's type is lost); every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
