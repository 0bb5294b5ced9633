"""A channel call inside a write transaction is refused: its rate-limit wait would hold every other
writer of the process (on SQLite, webhook ingestion too; docs/benchmarks.md, finding 18)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nexus.ratelimit.bucket import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig
from nexus.write_guard import in_write_transaction


async def test_a_rate_limited_request_inside_a_write_transaction_raises(
    make_nexus: Callable[..., Any],
) -> None:
    nexus = await make_nexus()
    limiter = BoundLimiter(InProcessTokenBucket(), "shop:push", RateLimitConfig(10, 1))

    await limiter.acquire()  # outside: granted
    assert not in_write_transaction()
    async with nexus.db.transaction():
        assert in_write_transaction()
        with pytest.raises(RuntimeError, match="'shop:push' inside a write transaction"):
            await limiter.acquire()
    assert not in_write_transaction()
    async with nexus.db.read():
        await limiter.acquire()  # a read holds no writer
    await limiter.acquire()


async def test_the_mark_is_undone_when_the_transaction_fails(make_nexus: Callable[..., Any]) -> None:
    nexus = await make_nexus()
    with pytest.raises(ValueError, match="rolled back"):
        async with nexus.db.transaction():
            raise ValueError("rolled back")
    assert not in_write_transaction()
