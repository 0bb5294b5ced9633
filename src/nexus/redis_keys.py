"""Every Redis key and pub/sub channel Nexus uses, in one place.

All of them start with the instance's namespace (`redis_namespace`, default "nexus"), so several
Nexus deployments, or test runs, can share one Redis server without seeing each other.
"""

from __future__ import annotations


def bucket(namespace: str, key: str) -> str:
    """Hash with the token bucket `key`: tokens, ts (Redis TIME, seconds), blocked_until, fill_ms."""
    return f"{namespace}:bucket:{key}"


def throttle_counter(namespace: str, counter: str) -> str:
    """Consecutive 429s of one channel account (an integer)."""
    return f"{namespace}:throttled:{counter}"


def wakeups(namespace: str) -> str:
    """Pub/sub: a JSON list of the channels (or worker kinds) with new work."""
    return f"{namespace}:wake"


def events(namespace: str) -> str:
    """Pub/sub: events that every process should see (ChannelThrottled, batch progress)."""
    return f"{namespace}:events"
