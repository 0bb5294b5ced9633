"""Retry delays: exponential with jitter, never shorter than the channel's own Retry-After."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

    "Equal jitter": half the exponential step is fixed, half random, so retries of many listings
    spread out without any of them coming back almost at once.
    """
    # The exponent is bounded: 2 ** 2000 does not fit a float, and any cap is reached long before.
    step = min(cap, base * 2.0 ** min(max(0, attempt - 1), 64))
    delay: float = step / 2 + (rng or random).uniform(0, step / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay
