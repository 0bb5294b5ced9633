"""Randomized model-based tests of the belief rules (docs/consistency.md): random interleavings
of channel sales, local changes, pushes and their answers, and deliveries delayed, duplicated and
reordered, over channels of every semantics. `make soak` runs the same simulation over tens of
thousands of seeds (tests/consistency/soak.py)."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from simulator import KINDS, Simulation

EXAMPLES = int(os.environ.get("NEXUS_SIMULATION_EXAMPLES", "300"))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_every_interleaving_converges_and_the_ledger_adds_up(seed: int) -> None:
    outcome = Simulation(seed).run()
    # Channels converge and every decidable sale is counted once; a sale whose only report
    # cannot be told from our own push's report (documented) leaves at most its units off.
    assert outcome.ok, (outcome.problems, "\n".join(outcome.trace[-60:]))


@settings(max_examples=max(EXAMPLES // 3, 20), deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), kind=st.sampled_from(KINDS))
def test_each_channel_semantics_on_its_own(seed: int, kind: object) -> None:
    outcome = Simulation(seed, kinds=(kind,)).run()  # type: ignore[arg-type]
    assert outcome.ok, (outcome.problems, "\n".join(outcome.trace[-60:]))


def test_decidable_runs_are_exact() -> None:
    """Where nothing undecidable happened the ledger is exact, not merely within bounds."""
    for seed in range(200):
        outcome = Simulation(seed).run()
        if not outcome.indistinguishable:
            assert outcome.on_hand == outcome.expected_on_hand, (seed, outcome.problems)
