"""What stands in front of a self-hosted WooCommerce: the host's rate limiter and its failures.

WooCommerce has no rate limit of its own. Hosts and proxies (a WAF, a managed WordPress host)
often do, answering 429 with Retry-After; a struggling PHP pool answers 502/503. These knobs
make those answers on purpose. None of this is WooCommerce's API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from nexus.sandbox.woocommerce.payloads import wp_error


@dataclass(frozen=True, slots=True)
class HostAnswer:
    status: int
    body: dict[str, object]
    headers: dict[str, str]


class HostGate:
    def __init__(
        self,
        *,
        capacity: float | None = None,
        refill_per_second: float | None = None,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (capacity is None) != (refill_per_second is None):
            raise ValueError("give the host limit both a capacity and a refill_per_second, or neither")
        self._capacity = capacity
        self._refill = refill_per_second * time_scale if refill_per_second is not None else None
        self._clock = clock
        self._tokens = capacity or 0.0
        self._updated = clock()
        self._throttle: list[int] = []  # Retry-After of each 429 still to answer
        self._failures: list[int] = []  # status of each 5xx still to answer

    def throttle_next(self, count: int = 1, retry_after: int = 1) -> None:
        self._throttle.extend([retry_after] * count)

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        self._failures.extend([status] * count)

    def admit(self) -> HostAnswer | None:
        """None lets the request through; otherwise the host's answer instead of WooCommerce's."""
        if self._failures:
            status = self._failures.pop(0)
            return HostAnswer(status, {"code": "sandbox_host_error", "message": "Service Unavailable"}, {})
        if self._throttle:
            return _too_many(self._throttle.pop(0))
        if self._capacity is None or self._refill is None:
            return None
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._refill)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        # Retry-After is whole seconds (delta-seconds); round up so the client never comes back early.
        return _too_many(math.ceil((1.0 - self._tokens) / self._refill))


def _too_many(seconds: int) -> HostAnswer:
    return HostAnswer(
        429,
        wp_error("too_many_requests", "Too Many Requests", 429),
        {"Retry-After": str(seconds)},
    )
