"""Wake-ups and shared events between processes, over Redis pub/sub (the scaled mode).

A stock change committed on a web node must wake an idle worker on another machine within
milliseconds, not at its next poll; and an event such as `ChannelThrottled` must reach listeners
in every process, once. Both ride on two pub/sub channels of the instance's namespace.

Delivery is at most once: a process that is disconnected misses messages. That is safe because
nothing depends on them for correctness: the dirty marks live in the database and every worker
still polls at `worker.poll_interval`; batch status is always readable from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from nexus import redis_keys
from nexus.events import SHARED_EVENTS

log = structlog.get_logger("nexus.bridge")

RECONNECT_DELAY = 1.0


class RedisBridge:
    def __init__(
        self,
        client: Redis,
        namespace: str,
        origin: str,
        *,
        on_wake: Callable[[list[str]], None],
        on_event: Callable[[object], Awaitable[None]],
    ) -> None:
        self._client = client
        self._origin = origin
        self._on_wake = on_wake
        self._on_event = on_event
        self._wake_channel = redis_keys.wakeups(namespace)
        self._event_channel = redis_keys.events(namespace)
        self._pending_wakes: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    # -- publishing -------------------------------------------------------------------------

    def wake(self, names: Iterable[str]) -> None:
        """Publish a wake-up for `names` soon; calls within one loop turn share one message."""
        self._pending_wakes.update(names)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._flush_wakes())

    async def _flush_wakes(self) -> None:
        await asyncio.sleep(0)
        names, self._pending_wakes = sorted(self._pending_wakes), set()
        if names:
            await self._publish(self._wake_channel, {"origin": self._origin, "names": names})

    async def publish_event(self, event: object) -> None:
        if not dataclasses.is_dataclass(event) or isinstance(event, type):
            return
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        message = {"origin": self._origin, "type": type(event).__name__, "fields": fields}
        await self._publish(self._event_channel, message)

    async def _publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self._client.publish(channel, json.dumps(message, separators=(",", ":"), default=str))
        except RedisError as exc:
            # Losing a wake-up costs at most one poll interval; never fail the caller for it.
            log.warning("publish failed", channel=channel, error=str(exc))

    # -- subscribing ------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe and return once the subscription is live (so no message after it is missed)."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="nexus-bridge")
        await asyncio.wait_for(self._subscribed.wait(), timeout=10)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._wake_channel, self._event_channel)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        await self._handle(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pub/sub connection lost; reconnecting", error=str(exc))
                await asyncio.sleep(RECONNECT_DELAY)

    async def _handle(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        try:
            body = json.loads(message["data"])
        except (TypeError, ValueError):
            log.warning("ignored a pub/sub message that is not JSON", channel=channel)
            return
        if not isinstance(body, dict) or body.get("origin") == self._origin:
            return
        if channel == self._wake_channel:
            names = body.get("names")
            if isinstance(names, list):
                self._on_wake([str(name) for name in names])
        elif channel == self._event_channel:
            event = _rebuild(body)
            if event is not None:
                await self._on_event(event)

    async def aclose(self) -> None:
        if self._flush is not None and not self._flush.done():
            with contextlib.suppress(Exception):
                await self._flush
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None


def _rebuild(body: dict[str, Any]) -> object | None:
    event_type = SHARED_EVENTS.get(str(body.get("type")))
    fields = body.get("fields")
    if event_type is None or not isinstance(fields, dict):
        log.warning("ignored an unknown shared event", type=body.get("type"))
        return None
    try:
        event: object = event_type(**fields)
        return event
    except TypeError:
        log.warning("ignored a shared event with unexpected fields", type=body.get("type"))
        return None
