"""Retry delays: bounded exponential backoff with jitter that never undercuts Retry-After."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from nexus.backoff import backoff_delay

SETTINGS = settings(max_examples=50, deadline=None)

attempts = st.integers(min_value=1, max_value=10_000)
bases = st.floats(min_value=0, max_value=60, allow_nan=False, allow_infinity=False)
caps = st.floats(min_value=0, max_value=3_600, allow_nan=False, allow_infinity=False)
seeds = st.integers(min_value=0, max_value=2**32)


@SETTINGS
@given(attempt=attempts, base=bases, cap=caps, seed=seeds)
def test_delay_stays_within_half_step_and_full_step(attempt: int, base: float, cap: float, seed: int) -> None:
    step = min(cap, base * 2.0 ** min(attempt - 1, 64))
    delay = backoff_delay(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert step / 2 <= delay <= step
    assert delay <= cap


@SETTINGS
@given(
    attempt=attempts,
    base=bases,
    cap=caps,
    seed=seeds,
    retry_after=st.floats(min_value=0, max_value=86_400, allow_nan=False, allow_infinity=False),
)
def test_retry_after_is_always_honoured(
    attempt: int, base: float, cap: float, seed: int, retry_after: float
) -> None:
    delay = backoff_delay(attempt, base=base, cap=cap, retry_after=retry_after, rng=random.Random(seed))
    assert delay >= retry_after
    # The hint only lengthens the wait as far as the channel asked, never beyond the usual bound.
    assert delay <= max(retry_after, cap)


@SETTINGS
@given(attempt=attempts, seed=seeds)
def test_zero_base_makes_retries_instant(attempt: int, seed: int) -> None:
    assert backoff_delay(attempt, base=0.0, cap=300.0, rng=random.Random(seed)) == 0.0


def test_delay_grows_until_the_cap() -> None:
    # Equal jitter: with the random half at its minimum, the delay is exactly half the step.
    class Low(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a

    rng = Low()
    delays = [backoff_delay(n, base=1.0, cap=10.0, rng=rng) for n in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_very_many_attempts_do_not_overflow() -> None:
    # max_attempts has no upper bound in the configuration: a listing on its 2000th attempt must
    # still get a delay (the cap), not an OverflowError that kills the worker round.
    assert 150.0 <= backoff_delay(2_000, base=1.0, cap=300.0, rng=random.Random(1)) <= 300.0
