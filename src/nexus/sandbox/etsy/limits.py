"""Etsy's two rate limits: queries per second and queries per rolling day.

QPD (Etsy "Rate Limits" page): a sliding 24-hour window made of fixed buckets; requests count in
the bucket of their time, and a bucket's requests free up when it leaves the window. QPS: Etsy
does not say how the second is measured; the sandbox refills a bucket of `per_second` tokens at
`per_second` per second (*unconfirmed*; it is what `x-remaining-this-second` reads like).
The day runs `time_scale` times faster, so a demo can watch a quota come back.

Every answer under the limit carries `x-limit-per-second`, `x-remaining-this-second`,
`x-limit-per-day`, `x-remaining-today`; a 429 carries none of them (Etsy: "none of the above
headers will return"), optionally a Retry-After.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

DAY_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    daily: bool = False  # refused by the daily quota rather than the per-second one


class RateLimits:
    def __init__(
        self,
        *,
        per_second: int = 10,
        per_day: int = 10_000,
        day_buckets: int = 24,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.per_day = per_day
        self.time_scale = time_scale
        self._clock = clock
        self._bucket_seconds = DAY_SECONDS / day_buckets
        self._tokens = float(per_second)
        self._updated = clock()
        self._day: deque[tuple[int, int]] = deque()  # (bucket number, requests), oldest first

    def _bucket_now(self) -> int:
        return math.floor(self._clock() * self.time_scale / self._bucket_seconds)

    def used_today(self) -> int:
        current = self._bucket_now()
        oldest = current - int(DAY_SECONDS / self._bucket_seconds) + 1
        while self._day and self._day[0][0] < oldest:
            self._day.popleft()
        return sum(count for _, count in self._day)

    def spend_day(self, requests: int) -> None:
        """Count requests made elsewhere with the same API key (another app, another process)."""
        current = self._bucket_now()
        if self._day and self._day[-1][0] == current:
            self._day[-1] = (current, self._day[-1][1] + requests)
        else:
            self._day.append((current, requests))

    def take(self) -> Decision:
        now = self._clock()
        self._tokens = min(float(self.per_second), self._tokens + (now - self._updated) * self.per_second)
        self._updated = now
        if self._tokens < 1.0:
            return Decision(False, {}, retry_after=(1.0 - self._tokens) / self.per_second)
        if self.used_today() >= self.per_day:
            oldest = self._day[0][0] if self._day else self._bucket_now()
            frees_at = (oldest + DAY_SECONDS / self._bucket_seconds) * self._bucket_seconds / self.time_scale
            return Decision(False, {}, retry_after=max(frees_at - now, 1.0), daily=True)
        self._tokens -= 1.0
        self.spend_day(1)
        return Decision(
            True,
            {
                "x-limit-per-second": str(self.per_second),
                "x-remaining-this-second": str(math.floor(self._tokens)),
                "x-limit-per-day": str(self.per_day),
                "x-remaining-today": str(max(0, self.per_day - self.used_today())),
            },
        )
