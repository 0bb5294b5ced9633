"""Token buckets.

A bucket answers *how long to wait*, not just yes or no, so a caller sleeps exactly as long as
needed instead of polling. The in-process bucket serves the embedded mode; a Redis bucket with
the same protocol serves many processes (scaled mode).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from nexus.errors import QuotaExhausted
from nexus.ratelimit.config import RateLimitConfig
from nexus.write_guard import in_write_transaction

log = structlog.get_logger("nexus.ratelimit")

# How many of the latest round trips size a limiter's margin: enough to remember a slow spell
# for a round or two of pipelined requests, few enough to forget it soon after.
ROUND_TRIPS_KEPT = 64
# How long a bucket shared by several limiters honours the smallest capacity one of them asked
# for (the largest margin, from the slowest round trips: see `BoundLimiter`). A limiter that keeps
# seeing slow answers renews it with every call; once none does, the bucket forgets it.
CAPACITY_FLOOR_SECONDS = 10.0


class TokenBucket(Protocol):
    async def reserve(self, key: str, cost: float, limit: RateLimitConfig) -> float:
        """Take `cost` tokens and return 0.0, or take nothing and return the seconds to wait."""
        ...

    async def penalize(self, key: str, seconds: float) -> None:
        """Block every caller of `key` for `seconds` (one worker's 429 pauses all of them)."""
        ...

    async def refund(self, key: str, tokens: float, limit: RateLimitConfig) -> None: ...

    async def observe(
        self,
        key: str,
        limit: RateLimitConfig,
        *,
        available: float,
        capacity: float | None = None,
        refill_per_second: float | None = None,
    ) -> None: ...

    async def level(self, key: str, limit: RateLimitConfig) -> float:
        """Tokens available now (for the dashboard and `nexus status`)."""
        ...

    async def note_throttled(self, counter: str) -> int:
        """Count one more consecutive 429 on `counter`; return the count, this one included."""
        ...

    async def note_success(self, counter: str) -> int:
        """A request succeeded: reset `counter` and return the count it ended."""
        ...


@dataclass
class _State:
    tokens: float
    updated: float
    blocked_until: float = 0.0
    floor: float = math.inf  # the smallest capacity a caller asked for lately ...
    floor_since: float = -math.inf  # ... and when it was last asked for


def _capacity(state: _State, asked: float, now: float, *, renew: bool) -> float:
    """The capacity a call gets: its own, unless another caller asked for less lately.

    Callers of one key pass the channel's capacity less their own margin, and each margin comes
    from that caller's round trips. The bucket must keep the widest of them, or the caller that
    saw the fastest answers would fill the bucket past what the slowest one needs kept.
    A request (`renew`) sets or renews the floor; a reading only honours it. A capacity raised
    (the channel reported a larger plan, or a margin narrowed) applies once no request has asked
    for the old one for the window's length; a capacity lowered applies at once."""
    if now - state.floor_since > CAPACITY_FLOOR_SECONDS:
        state.floor, state.floor_since = math.inf, -math.inf
    if renew and asked <= state.floor:
        state.floor, state.floor_since = asked, now
    return min(asked, state.floor)


class InProcessTokenBucket:
    """Buckets for one process. Not shared across processes: that is what the Redis bucket is for."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._throttled: dict[str, int] = {}

    def _refilled(
        self, key: str, limit: RateLimitConfig, now: float, *, renew: bool = True
    ) -> tuple[_State, float]:
        """The key's state brought up to `now`, and the capacity this call gets (`_capacity`)."""
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State(tokens=limit.capacity, updated=now)
        capacity = _capacity(state, limit.capacity, now, renew=renew)
        if now > state.updated:
            state.tokens += (now - state.updated) * limit.refill_per_second
            state.updated = now
        state.tokens = min(capacity, state.tokens)
        return state, capacity

    async def reserve(self, key: str, cost: float, limit: RateLimitConfig) -> float:
        now = self._clock()
        state, capacity = self._refilled(key, limit, now)
        if now < state.blocked_until:
            return state.blocked_until - now
        # A request costing more than the whole bucket would wait forever; let it through when full.
        need = min(cost, capacity)
        if state.tokens >= need:
            state.tokens -= cost
            return 0.0
        return (need - state.tokens) / limit.refill_per_second

    async def penalize(self, key: str, seconds: float) -> None:
        now = self._clock()
        state = self._states.setdefault(key, _State(tokens=0.0, updated=now))
        state.blocked_until = max(state.blocked_until, now + seconds)
        state.tokens = 0.0
        state.updated = now

    async def refund(self, key: str, tokens: float, limit: RateLimitConfig) -> None:
        state, capacity = self._refilled(key, limit, self._clock())
        state.tokens = min(capacity, state.tokens + max(tokens, 0.0))

    async def observe(
        self,
        key: str,
        limit: RateLimitConfig,
        *,
        available: float,
        capacity: float | None = None,
        refill_per_second: float | None = None,
    ) -> None:
        state, _ = self._refilled(key, limit, self._clock())
        # The channel's figure wins when it is lower: another client of the same key spent tokens
        # we did not see. When it is higher we keep ours, because requests may still be in flight.
        state.tokens = min(state.tokens, available)

    async def level(self, key: str, limit: RateLimitConfig) -> float:
        state, _ = self._refilled(key, limit, self._clock(), renew=False)
        return state.tokens

    async def note_throttled(self, counter: str) -> int:
        self._throttled[counter] = self._throttled.get(counter, 0) + 1
        return self._throttled[counter]

    async def note_success(self, counter: str) -> int:
        return self._throttled.pop(counter, 0)


class ThrottleMonitor(Protocol):
    """Told about every 429 and every success on a channel (see `nexus.sync.throttle`)."""

    async def throttled(self) -> None: ...

    async def succeeded(self) -> None: ...


class BoundLimiter:
    """A bucket bound to one key and limit: what a driver receives as `ChannelContext.rate`.

    `max_wait` turns a long wait (a daily quota spent) into a `QuotaExhausted` error, so the
    worker reschedules the listings instead of holding them, and a worker slot, for hours.

    `headroom_seconds` sizes the margin of tokens kept unused, in seconds of the channel's refill.
    Our bucket takes tokens when a request leaves, the channel when it arrives. With a steady
    latency the channel's bucket is ours, delayed: nothing is lost. When the latency varies, a
    channel kept full while a slow burst is on the wire loses refill that ours counted, and a
    faster request after the burst finds it short by up to refill x the slowest one-way time
    (`tests/unit/test_token_bucket.py` checks this against a model of the channel). So the
    margin is `refill * max(headroom_seconds, the slowest recent round trip)` (a round trip is at
    least one way), at most half the capacity. It costs that many tokens of the burst, once,
    never the sustained rate: 25 of a Shopify store's 2,000 points at the default 0.25 s.
    The round trips are this limiter's own (one process, one operation); a bucket shared by
    several limiters keeps the widest margin any of them asked for in the last
    `CAPACITY_FLOOR_SECONDS`, so the process that saw the slowest answers sets it for all.
    """

    def __init__(
        self,
        bucket: TokenBucket,
        key: str,
        limit: RateLimitConfig,
        sleep: Callable[[float], object] = asyncio.sleep,
        *,
        max_wait: float | None = None,
        monitor: ThrottleMonitor | None = None,
        headroom_seconds: float = 0.0,
    ) -> None:
        if not headroom_seconds >= 0.0:  # also refuses NaN
            raise ValueError("headroom_seconds must be zero or more")
        self.bucket = bucket
        self.key = key
        self.limit = limit
        self.headroom_seconds = headroom_seconds
        self._round_trips: deque[float] = deque(maxlen=ROUND_TRIPS_KEPT)
        self.max_wait = max_wait
        self.monitor = monitor
        self._sleep = sleep
        self.waited_seconds = 0.0
        self.requests = 0

    @property
    def margin_seconds(self) -> float:
        """How much of the channel's refill may be lost while requests are on the wire, in seconds."""
        return max(self.headroom_seconds, max(self._round_trips, default=0.0))

    @property
    def margin(self) -> float:
        """The tokens kept unused, for refill the channel may lose while requests are on the wire."""
        return min(self.limit.capacity / 2, self.limit.refill_per_second * self.margin_seconds)

    @property
    def effective_limit(self) -> RateLimitConfig:
        """The limit the bucket enforces: the channel's, less the margin."""
        margin = self.margin
        if not margin:
            return self.limit
        return RateLimitConfig(
            capacity=self.limit.capacity - margin,
            refill_per_second=self.limit.refill_per_second,
            cost_per_push=self.limit.cost_per_push,
        )

    async def acquire(self, cost: float = 1.0) -> None:
        if in_write_transaction():
            # A bug, not a load problem: the wait below would hold every other writer.
            raise RuntimeError(f"a request to {self.key!r} inside a write transaction")
        while True:
            wait = await self.bucket.reserve(self.key, cost, self.effective_limit)
            if wait <= 0:
                self.requests += 1
                await self._settle_oversized(cost)
                return
            if self.max_wait is not None and wait > self.max_wait:
                raise QuotaExhausted(
                    f"rate limit {self.key!r} allows the next request in {wait:.0f} s", retry_after=wait
                )
            self.waited_seconds += wait
            await self._sleep(wait)  # type: ignore[misc]

    async def _settle_oversized(self, cost: float) -> None:
        """Give a request too large to leave the margin beside it the margin's time instead.

        A request costing more than the capacity less the margin's refill needs the channel's
        bucket nearly full when it arrives, and no count of tokens can keep that margin: the
        channel may still be short of the refill it lost to the slowest request on the wire.
        Waiting that long after our bucket allows the request lets the channel refill it. Only
        buckets little larger than one request see this, and it delays such a request without
        lowering the rate: the next request's tokens are counted from this one's grant."""
        seconds = self.margin_seconds
        if seconds and cost > self.limit.capacity - self.limit.refill_per_second * seconds:
            self.waited_seconds += seconds
            await self._sleep(seconds)  # type: ignore[misc]

    async def observe(
        self,
        *,
        available: float | None,
        capacity: float | None = None,
        refill_per_second: float | None = None,
        round_trip: float | None = None,
    ) -> None:
        if round_trip is not None and math.isfinite(round_trip) and round_trip >= 0:
            self._round_trips.append(round_trip)
        # The channel's own figures describe the account's real plan (a Shopify Plus store
        # restores ten times faster than a Standard one): adopt them over the configured guess.
        if capacity or refill_per_second:
            self.limit = RateLimitConfig(
                capacity=capacity or self.limit.capacity,
                refill_per_second=refill_per_second or self.limit.refill_per_second,
                cost_per_push=self.limit.cost_per_push,
            )
        if available is None:
            return
        effective = self.effective_limit
        # Bookkeeping after an answer is best effort: the request already happened, and a
        # shared bucket that is briefly out of reach (Redis restarting) must not turn an
        # applied push into a failed one. A missed observation only makes the bucket less exact.
        try:
            await self.bucket.observe(
                self.key,
                effective,
                available=max(0.0, available - self.margin),
                capacity=effective.capacity,
                refill_per_second=effective.refill_per_second,
            )
        except Exception as exc:
            log.warning("rate bucket not updated after an answer", bucket=self.key, error=str(exc))

    async def penalize(self, seconds: float) -> None:
        await self.bucket.penalize(self.key, seconds)
        if self.monitor is not None:
            await self.monitor.throttled()

    async def refund(self, tokens: float) -> None:
        try:  # after an answer, like `observe`: best effort
            await self.bucket.refund(self.key, tokens, self.effective_limit)
        except Exception as exc:
            log.warning("rate bucket refund lost", bucket=self.key, error=str(exc))

    async def level(self) -> float:
        return await self.bucket.level(self.key, self.effective_limit)
