"""`ChannelThrottled`: tell operators when a channel keeps refusing us, once per episode.

The count of consecutive 429s lives in the token-bucket store (Redis in the scaled mode), so all
processes count together and exactly one of them, the one whose 429 reaches the threshold,
emits the event; whichever process then succeeds first emits the recovery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from nexus.events import ChannelRecovered, ChannelThrottled
from nexus.sync.rate_log import count_throttled

if TYPE_CHECKING:
    from nexus.engine import Nexus

log = structlog.get_logger("nexus.throttle")


class ChannelThrottleMonitor:
    def __init__(self, nexus: Nexus, channel: str, counter: str) -> None:
        self.nexus = nexus
        self.channel = channel
        self.counter = counter

    @property
    def threshold(self) -> int:
        return self.nexus.settings.worker.throttle_threshold

    async def throttled(self) -> None:
        self.nexus.metrics.throttled(self.channel)
        try:
            await count_throttled(self.nexus.db, self.channel)
        except Exception as exc:  # the count is for people; the request's retry must not fail over it
            log.warning("recording a 429 failed", channel=self.channel, error=str(exc))
        count = await self.nexus.bucket.note_throttled(self.counter)
        if count == self.threshold:
            queued = await self.queued_listings()
            await self._state(throttled=True)
            await self.nexus.events.dispatch(ChannelThrottled(self.channel, count, queued))

    async def succeeded(self) -> None:
        ended = await self.nexus.bucket.note_success(self.counter)
        if ended >= self.threshold:
            queued = await self.queued_listings()
            await self._state(throttled=False)
            await self.nexus.events.dispatch(ChannelRecovered(self.channel, ended, queued))

    async def _state(self, *, throttled: bool) -> None:
        """The channel shows `throttled` (nexus.sync.channel_state) while the episode lasts."""
        try:
            await self.nexus.channel_states.throttled(self.channel, throttled)
        except Exception as exc:  # the state is for people; the push must not fail over it
            log.warning("recording the throttled state failed", channel=self.channel, error=str(exc))

    async def queued_listings(self) -> int:
        return await self.nexus.queue.queued(self.channel)
