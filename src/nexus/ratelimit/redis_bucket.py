"""A token bucket in Redis, shared by every process of a scaled deployment.

Several workers, web processes and CLI runs may push to the same channel account; the account's
rate limit is one budget, so the bucket must be one too. Each operation is a single Lua script
call: Redis runs scripts one at a time, so the read-refill-decide-write cycle of one process can
never interleave with another's, without locks or retries.

The clock is Redis `TIME`, read inside the script, never the caller's clock. Processes on
different hosts disagree about the time (NTP drift, a container's paused clock, a laptop that
slept), and a bucket refilled by whoever's clock runs fastest would hand out more than the
rate. With one clock, the refill is exact whatever the callers believe the time is.

`reserve` answers *how long to wait* instead of yes or no (see `nexus.ratelimit.bucket`): a
caller sleeps once for exactly that long and asks again, instead of polling Redis in a loop. A
refused reservation takes nothing, so a caller that gives up (a daily quota, see
`BoundLimiter.max_wait`) leaves no debt behind.

State lives in the hash `redis_keys.bucket(namespace, key)`: `tokens`, `ts` (Redis time of
`tokens`), `blocked_until` (a 429's pause), `fill_ms` (how long the bucket takes to refill
from empty, so `penalize`, which knows no limit, can still give the key a long enough life), and
`floor` / `floor_ts`, the smallest capacity a caller asked for lately and when (the widest
in-flight margin of the processes sharing the bucket, `nexus.ratelimit.bucket._capacity`). A
missing hash is a full bucket, so every write sets an expiry by which the bucket would be full
again anyway: idle keys disappear by themselves, and their disappearance changes nothing.

Needs Redis 6.2 or later (GETDEL; scripts replicated by their effects, so a script may read
TIME and then write).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nexus import redis_keys
from nexus.ratelimit.bucket import CAPACITY_FLOOR_SECONDS
from nexus.ratelimit.config import RateLimitConfig

if TYPE_CHECKING:
    from redis.asyncio import Redis

# Keep a key this long past the moment its bucket would be full again: a margin for clock
# granularity and slow callers, and a floor so short-lived keys are not rewritten constantly.
_EXPIRY_MARGIN_MS = 60_000
# Consecutive 429s older than this belong to an incident that is over.
_THROTTLE_COUNTER_TTL_S = 3600

# The bucket arithmetic of every operation. Numbers go back to Python as strings: Redis turns a
# Lua number reply into an integer, which would truncate waits and levels. "%.17g" round-trips
# a double exactly.
#
# KEYS[1]  the bucket hash
# ARGV     op ("reserve" | "penalize" | "refund" | "observe" | "level"), capacity,
#          refill_per_second, amount (cost, seconds, tokens or available, by op), the expiry
#          margin in ms, CAPACITY_FLOOR_SECONDS
# Returns  {value, redis_now}: the wait, the level or "0", and the Redis time of the decision.
_BUCKET_LUA = """
local key = KEYS[1]
local op = ARGV[1]
local capacity = tonumber(ARGV[2])
local refill = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])

-- One Redis TIME tick. A wait shorter than that is float rounding or clock truncation, not a
-- real shortage: a caller that slept exactly the answered wait must not be sent back to sleep.
local TICK = 0.000001
local MARGIN_MS = tonumber(ARGV[5])

local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

local function fmt(x)
  return string.format('%.17g', x)
end

local FLOOR_SECONDS = tonumber(ARGV[6])

local state = redis.call('HMGET', key, 'tokens', 'ts', 'blocked_until', 'fill_ms', 'floor', 'floor_ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
local blocked_until = tonumber(state[3]) or 0
local fill_ms = tonumber(state[4]) or 0
local floor = tonumber(state[5])
local floor_ts = tonumber(state[6])
local floor_renewed = false

if capacity then
  -- The smallest capacity a caller asked for lately binds every caller (bucket._capacity).
  if floor == nil or floor_ts == nil or now - floor_ts > FLOOR_SECONDS then
    floor = nil
  end
  if op ~= 'level' and (floor == nil or capacity <= floor) then
    floor = capacity
    floor_ts = now
    floor_renewed = true
  elseif floor ~= nil and floor < capacity then
    capacity = floor
  end
  fill_ms = math.ceil(capacity / refill * 1000)
  if tokens == nil or ts == nil then
    tokens = capacity
  elseif now > ts then
    tokens = tokens + (now - ts) * refill
  end
  tokens = math.min(capacity, tokens)
end

local function save()
  redis.call('HSET', key, 'tokens', fmt(tokens), 'ts', fmt(now),
             'blocked_until', fmt(blocked_until), 'fill_ms', fill_ms)
  if floor ~= nil then
    redis.call('HSET', key, 'floor', fmt(floor), 'floor_ts', fmt(floor_ts))
  end
  local blocked_ms = math.max(0, blocked_until - now) * 1000
  redis.call('PEXPIRE', key, math.ceil(fill_ms + blocked_ms + MARGIN_MS))
end

if op == 'level' then
  -- A reading is not a request: it neither renews the floor nor writes anything.
  return {fmt(tokens), fmt(now)}
elseif op == 'reserve' then
  if now < blocked_until then
    if floor_renewed then save() end
    return {fmt(blocked_until - now), fmt(now)}
  end
  -- A request costing more than the whole bucket would wait forever; let it through when full.
  local need = math.min(amount, capacity)
  local wait = (need - tokens) / refill
  if wait <= TICK then
    tokens = tokens - amount
    save()
    return {'0', fmt(now)}
  end
  -- A caller that waits still asked for its capacity: the bucket must remember it.
  if floor_renewed then save() end
  return {fmt(wait), fmt(now)}
elseif op == 'penalize' then
  blocked_until = math.max(blocked_until, now + amount)
  tokens = 0
  save()
elseif op == 'refund' then
  tokens = math.min(capacity, tokens + math.max(amount, 0))
  save()
elseif op == 'observe' then
  -- The channel's figure wins when it is lower: another client of the same API key spent
  -- tokens we did not see. When it is higher we keep ours: requests may still be in flight.
  tokens = math.min(tokens, amount)
  save()
else
  return redis.error_reply('unknown bucket op ' .. tostring(op))
end
return {'0', fmt(now)}
"""

# INCR and EXPIRE in one step, so a counter can never be left without an expiry.
_THROTTLED_LUA = """
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""


class RedisTokenBucket:
    """The `TokenBucket` protocol on Redis: one budget per key for every process that shares
    the server and the namespace."""

    def __init__(self, client: Redis, namespace: str = "nexus") -> None:
        self.client = client
        self.namespace = namespace
        # register_script runs EVALSHA and loads the script again by itself after a Redis
        # restart or SCRIPT FLUSH.
        self._bucket = client.register_script(_BUCKET_LUA)
        self._throttled = client.register_script(_THROTTLED_LUA)

    async def _run(
        self, op: str, key: str, amount: float, capacity: float | None, refill_per_second: float | None
    ) -> tuple[float, float]:
        if capacity is not None and (capacity <= 0 or refill_per_second is None or refill_per_second <= 0):
            # Lua would divide by zero and answer an infinite wait or an infinite expiry.
            raise ValueError(
                f"rate limit {key!r} needs a positive capacity and refill, "
                f"not {capacity} and {refill_per_second}"
            )
        if not math.isfinite(amount):
            raise ValueError(f"bucket {key!r}: {op} needs a finite amount, not {amount}")
        limit_args: list[str] = (
            [repr(float(capacity)), repr(float(refill_per_second))]
            if capacity is not None and refill_per_second is not None
            else ["", ""]
        )
        reply: Any = await self._bucket(
            keys=[redis_keys.bucket(self.namespace, key)],
            args=[op, *limit_args, repr(float(amount)), _EXPIRY_MARGIN_MS, repr(CAPACITY_FLOOR_SECONDS)],
        )
        value, now = reply
        return float(value), float(now)

    async def reserve_at(self, key: str, cost: float, limit: RateLimitConfig) -> tuple[float, float]:
        """`reserve`, and the Redis time (seconds) at which the bucket decided: a shared clock for
        callers that must order or measure reservations across processes."""
        return await self._run("reserve", key, cost, limit.capacity, limit.refill_per_second)

    async def reserve(self, key: str, cost: float, limit: RateLimitConfig) -> float:
        wait, _ = await self.reserve_at(key, cost, limit)
        return wait

    async def penalize(self, key: str, seconds: float) -> None:
        await self._run("penalize", key, seconds, None, None)

    async def refund(self, key: str, tokens: float, limit: RateLimitConfig) -> None:
        await self._run("refund", key, tokens, limit.capacity, limit.refill_per_second)

    async def observe(
        self,
        key: str,
        limit: RateLimitConfig,
        *,
        available: float,
        capacity: float | None = None,
        refill_per_second: float | None = None,
    ) -> None:
        await self._run(
            "observe",
            key,
            available,
            capacity or limit.capacity,
            refill_per_second or limit.refill_per_second,
        )

    async def level(self, key: str, limit: RateLimitConfig) -> float:
        tokens, _ = await self._run("level", key, 0.0, limit.capacity, limit.refill_per_second)
        return tokens

    async def note_throttled(self, counter: str) -> int:
        count: Any = await self._throttled(
            keys=[redis_keys.throttle_counter(self.namespace, counter)], args=[_THROTTLE_COUNTER_TTL_S]
        )
        return int(count)

    async def note_success(self, counter: str) -> int:
        # GETDEL, not GET then DEL: a 429 counted by another process in between would be lost.
        count = await self.client.getdel(redis_keys.throttle_counter(self.namespace, counter))
        return int(count) if count is not None else 0
