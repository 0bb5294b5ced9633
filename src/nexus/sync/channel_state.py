"""Channel health as state: each channel is `connected`, `throttled`, `paused` or `disconnected`.

    connected      pushes flow
    throttled      the channel answered `worker.throttle_threshold` 429s in a row; pushes still
                   flow, paced by the bucket (`ChannelThrottleMonitor`)
    paused         a person paused it (`nexus channels pause`): no process claims its listings;
                   webhooks are still received and booked, so the listings queue up
    disconnected   the channel refused the credentials (401/403, a refused token refresh): its
                   listings stay queued (no attempt used, no dead letter), one error is logged,
                   and one process at a time probes the channel every `worker.probe_interval`
                   seconds; the first probe that passes reconnects it and everything queued is pushed

The state lives in `nexus_channel_states`, so every process (several `nexus worker`s on
PostgreSQL) sees the same; a channel without a row is connected. Workers read it through a
per-process copy trusted for `worker.state_ttl` seconds; a change wakes the channel's workers
here and, with Redis, everywhere (`Nexus.notify`). Transitions are conditional updates, so
exactly one process logs a disconnection and dispatches its event.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.errors import ChannelAuthError, ChannelBlockedError, TransientError, UnknownChannelError
from nexus.events import ChannelDisconnected, ChannelPaused, ChannelReconnected, ChannelResumed
from nexus.storage.dialect import upsert_insert
from nexus.storage.models import ChannelStateRow, utcnow

if TYPE_CHECKING:
    from nexus.engine import ChannelRuntime, Nexus

log = structlog.get_logger("nexus.channels")


UNBLOCK_HINT = "nexus channels resume, or fix its credentials"


class ChannelState(enum.StrEnum):
    CONNECTED = "connected"
    THROTTLED = "throttled"
    PAUSED = "paused"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """One channel's state as `nexus channels` and `/nexus/readyz` show it."""

    channel: str
    state: ChannelState = ChannelState.CONNECTED
    since: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    paused_by: str | None = None
    pause_reason: str | None = None
    next_probe_at: datetime | None = None

    @property
    def may_push(self) -> bool:
        return self.state not in (ChannelState.PAUSED, ChannelState.DISCONNECTED)

    def as_dict(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "channel": self.channel,
            "state": self.state.value,
            "since": iso(self.since),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "paused_by": self.paused_by,
            "pause_reason": self.pause_reason,
            "next_probe_at": iso(self.next_probe_at),
        }


def state_of(row: ChannelStateRow) -> ChannelState:
    """Paused wins (a person decided), then disconnected, then throttled."""
    if row.paused_at is not None:
        return ChannelState.PAUSED
    if row.disconnected_at is not None:
        return ChannelState.DISCONNECTED
    if row.throttled_at is not None:
        return ChannelState.THROTTLED
    return ChannelState.CONNECTED


def _health(row: ChannelStateRow) -> ChannelHealth:
    return ChannelHealth(
        channel=row.channel,
        state=state_of(row),
        since=row.since,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        paused_by=row.paused_by,
        pause_reason=row.pause_reason,
        next_probe_at=row.next_probe_at if row.disconnected_at is not None else None,
    )


def _brief(error: str) -> str:
    """An error as stored and shown: one line, bounded."""
    text = error.replace("\n", " ")
    return text if len(text) <= 1000 else text[:997] + "..."


async def probe_driver(driver: Any) -> None:
    """The cheapest request that needs the credentials: the driver's own `probe()` when it has
    one, else a read of one product (`list_products(per_page=1)`). Raises what the driver raised."""
    probe = getattr(driver, "probe", None)
    if callable(probe):
        await probe()
        return
    await driver.list_products(None, per_page=1)


class ChannelStates:
    """The channels' states for one Nexus instance (`nexus.channel_states`)."""

    def __init__(self, nexus: Nexus) -> None:
        self.nexus = nexus
        self._copy: dict[str, ChannelHealth] = {}
        self._read_at: float | None = None

    @property
    def ttl(self) -> float:
        return self.nexus.settings.worker.state_ttl

    @property
    def probe_interval(self) -> timedelta:
        return timedelta(seconds=self.nexus.settings.worker.probe_interval)

    # -- reading ----------------------------------------------------------------------------

    async def all(self, *, fresh: bool = False) -> dict[str, ChannelHealth]:
        """Every configured channel's state (the process's copy unless older than the TTL)."""
        if fresh or self._read_at is None or time.monotonic() - self._read_at >= self.ttl:
            async with self.nexus.db.read() as session:
                rows = (await session.execute(select(ChannelStateRow))).scalars().all()
            self._copy = {row.channel: _health(row) for row in rows}
            self._read_at = time.monotonic()
            for name in self.nexus.settings.channels:
                self._gauge(self.health_of(name))
        return {name: self.health_of(name) for name in self.nexus.settings.channels}

    def health_of(self, channel: str) -> ChannelHealth:
        return self._copy.get(channel) or ChannelHealth(channel)

    async def get(self, channel: str, *, fresh: bool = False) -> ChannelHealth:
        await self.all(fresh=fresh)
        return self.health_of(channel)

    async def blocked(self, channels: Iterable[str]) -> list[str]:
        """'<channel> is paused' for each of `channels` nothing is pushed to now (read fresh)."""
        health = await self.all(fresh=True)
        return [
            f"{name} is {health[name].state.value}"
            for name in channels
            if name in health and not health[name].may_push
        ]

    async def require_pushable(self, channels: Iterable[str]) -> None:
        """Refuse work that only a push can finish (a sync, a force push) on a channel that is
        paused or disconnected: it would wait for ever, or for its timeout, for nothing."""
        if reasons := await self.blocked(channels):
            raise ChannelBlockedError(f"{'; '.join(reasons)} ({UNBLOCK_HINT})")

    async def may_claim(self, runtime: ChannelRuntime, *, woken: bool = False) -> bool:
        """Whether a worker of `runtime`'s channel may claim listings now. A disconnected channel
        whose probe is due is probed here (by one process at a time); `woken`: the worker was
        woken, so a blocked state is read again rather than trusted from the copy."""
        cached = self.health_of(runtime.name) if self._read_at is not None else None
        health = await self.get(runtime.name, fresh=woken and cached is not None and not cached.may_push)
        if health.state is ChannelState.DISCONNECTED:
            due = health.next_probe_at
            if due is None or due <= utcnow():
                return await self.probe(runtime)
        return health.may_push

    # -- changing ---------------------------------------------------------------------------

    async def pause(self, channel: str, *, reason: str | None = None, actor: str = "api") -> ChannelHealth:
        """Stop every process claiming `channel`'s listings until `resume`. Pausing a paused
        channel changes nothing."""
        self._known(channel)

        def change(row: ChannelStateRow, now: datetime) -> bool:
            if row.paused_at is not None:
                return False
            row.paused_at, row.paused_by, row.pause_reason = now, actor, reason
            return True

        changed, health = await self._change(channel, change)
        if changed:
            log.warning("channel paused", channel=channel, actor=actor, reason=reason)
            await self.nexus.events.dispatch(ChannelPaused(channel, reason, actor))
        return health

    async def resume(self, channel: str, *, actor: str = "api") -> ChannelHealth:
        self._known(channel)

        def change(row: ChannelStateRow, now: datetime) -> bool:
            if row.paused_at is None:
                return False
            row.paused_at = row.paused_by = row.pause_reason = None
            return True

        changed, health = await self._change(channel, change)
        if changed:
            queued = await self.nexus.queue.queued(channel)
            log.info("channel resumed", channel=channel, actor=actor, queued_listings=queued)
            await self.nexus.events.dispatch(ChannelResumed(channel, actor, queued))
        return health

    async def disconnect(self, channel: str, error: str) -> ChannelHealth:
        """The channel refused the credentials. The first process to say so logs it (once) and
        dispatches `ChannelDisconnected`; the first probe is due after `probe_interval`."""
        message = _brief(error)

        def change(row: ChannelStateRow, now: datetime) -> bool:
            row.last_error, row.last_error_at = message, now
            if row.disconnected_at is not None:
                return False
            row.disconnected_at = now
            row.next_probe_at = now + self.probe_interval
            return True

        changed, health = await self._change(channel, change)
        if changed:
            queued = await self.nexus.queue.queued(channel)
            log.error(
                "channel disconnected: the channel refused the credentials; its listings wait "
                "(no dead letters) and pushes resume once a probe succeeds",
                channel=channel,
                error=message,
                queued_listings=queued,
                probe_interval=self.probe_interval.total_seconds(),
            )
            await self.nexus.events.dispatch(ChannelDisconnected(channel, message, queued))
        return health

    async def reconnect(self, channel: str) -> ChannelHealth:
        def change(row: ChannelStateRow, now: datetime) -> bool:
            if row.disconnected_at is None:
                return False
            row.disconnected_at = row.next_probe_at = None
            return True

        changed, health = await self._change(channel, change)
        if changed:
            queued = await self.nexus.queue.queued(channel)
            log.warning(
                "channel reconnected: the credentials work again", channel=channel, queued_listings=queued
            )
            await self.nexus.events.dispatch(ChannelReconnected(channel, queued))
        return health

    async def throttled(self, channel: str, throttled: bool) -> None:
        """The throttle monitor saw an episode of 429s begin (True) or end (False)."""

        def change(row: ChannelStateRow, now: datetime) -> bool:
            if (row.throttled_at is not None) == throttled:
                return False
            row.throttled_at = now if throttled else None
            return True

        await self._change(channel, change)

    async def probe(self, runtime: ChannelRuntime) -> bool:
        """Probe a disconnected channel if its probe is due and no other process took it;
        True when the channel is (now) connected. A refused probe stays disconnected; one that
        could not tell (a timeout, a 5xx) too, until the next probe."""
        channel = runtime.name
        if not await self._take_probe(channel):
            return self.health_of(channel).may_push
        try:
            await probe_driver(runtime.driver)
        except ChannelAuthError as exc:
            log.info("channel still refuses the credentials", channel=channel, error=_brief(str(exc)))
            await self._change(channel, _note_error(_brief(str(exc))))
            return False
        except TransientError as exc:
            log.info(
                "channel probe inconclusive; trying again later", channel=channel, error=_brief(str(exc))
            )
            return False
        except Exception as exc:  # not a refusal of the credentials: let the pushes tell
            log.info("channel probe failed without refusing the credentials", channel=channel, error=str(exc))
        await self.reconnect(channel)
        return True

    # -- storage ----------------------------------------------------------------------------

    async def _take_probe(self, channel: str) -> bool:
        """Move the channel's next probe one interval on, if it is due: True for the one
        process that moved it (it probes now)."""

        def change(row: ChannelStateRow, now: datetime) -> bool:
            if row.disconnected_at is None:
                return False
            if row.next_probe_at is not None and row.next_probe_at > now:
                return False
            row.next_probe_at = now + self.probe_interval
            return True

        changed, _ = await self._change(channel, change)
        return changed

    async def _change(
        self, channel: str, change: Callable[[ChannelStateRow, datetime], bool]
    ) -> tuple[bool, ChannelHealth]:
        """Apply `change` to the channel's row under its lock; `since` moves when the state
        shown does. Wakes the channel's workers everywhere when it changed."""
        now = utcnow()
        async with self.nexus.db.transaction() as session:
            row = await self._locked(session, channel, now)
            before = state_of(row)
            changed = change(row, now)
            if state_of(row) is not before:
                row.since = now
            health = _health(row)
        self._copy[channel] = health
        self._gauge(health)
        if changed and health.state is not before:
            self.nexus.notify([channel])
        return changed, health

    async def _locked(self, session: AsyncSession, channel: str, now: datetime) -> ChannelStateRow:
        statement = select(ChannelStateRow).where(ChannelStateRow.channel == channel).with_for_update()
        row = (await session.execute(statement)).scalar_one_or_none()
        if row is not None:
            return row
        insert = upsert_insert(self.nexus.db.is_sqlite)
        await session.execute(
            insert(ChannelStateRow).values(channel=channel, since=now).on_conflict_do_nothing()
        )
        return (await session.execute(statement)).scalar_one()

    def _known(self, channel: str) -> None:
        if channel not in self.nexus.settings.channels:
            names = ", ".join(sorted(self.nexus.settings.channels)) or "none"
            raise UnknownChannelError(f"no channel named {channel!r} is configured (configured: {names})")

    def _gauge(self, health: ChannelHealth) -> None:
        self.nexus.metrics.channel_state(health.channel, health.state.value)


def _note_error(message: str) -> Callable[[ChannelStateRow, datetime], bool]:
    def change(row: ChannelStateRow, now: datetime) -> bool:
        row.last_error, row.last_error_at = message, now
        return False

    return change


async def readiness(nexus: Nexus) -> tuple[bool, dict[str, Any]]:
    """What `/nexus/readyz` answers: ready when the database answers and every enabled channel
    can be built; each channel's state either way (a disconnected channel is a state, not a
    failure of this process). `failing` names what is wrong."""
    failing: list[str] = []
    body: dict[str, Any] = {"status": "ok", "database": "ok", "channels": {}}
    states: dict[str, ChannelHealth] = {}
    try:
        states = await nexus.channel_states.all(fresh=True)
    except Exception as exc:
        body["database"] = f"{type(exc).__name__}: {exc}"
        failing.append("database")
    for name in nexus.channel_names():
        health = states.get(name)
        entry: dict[str, Any] = health.as_dict() if health is not None else {"channel": name, "state": None}
        try:
            nexus.channel(name)
        except Exception as exc:
            entry["error"] = f"cannot be built: {type(exc).__name__}: {exc}"
            failing.append(f"channel {name}")
        body["channels"][name] = entry
    if failing:
        body["status"] = "error"
        body["failing"] = failing
    return not failing, body
