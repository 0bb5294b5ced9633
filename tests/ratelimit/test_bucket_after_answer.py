"""A shared bucket out of reach after an answer arrived must not fail the request that was
answered (docs/faults.md, bug 2: a Redis restart turned applied pushes into failed ones)."""

from __future__ import annotations

from typing import Any

import pytest

from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig


class Unreachable(InProcessTokenBucket):
    async def observe(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Redis is restarting")

    async def refund(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Redis is restarting")


async def test_observe_and_refund_after_an_answer_are_best_effort() -> None:
    limiter = BoundLimiter(Unreachable(), "shop:default", RateLimitConfig(10, 1))
    await limiter.observe(available=5.0)  # does not raise
    await limiter.refund(3.0)  # does not raise


async def test_taking_a_token_still_fails_loudly() -> None:
    class Down(InProcessTokenBucket):
        async def reserve(self, *args: Any, **kwargs: Any) -> float:
            raise ConnectionError("Redis is down")

    with pytest.raises(ConnectionError):
        await BoundLimiter(Down(), "shop:default", RateLimitConfig(10, 1)).acquire()
