"""`make soak`: the consistency simulation over many seeds, with counts.

python tests/consistency/soak.py --runs 20000 [--start 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from simulator import Simulation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--start", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    failures: list[tuple[int, list[str]]] = []
    undecidable = inexact = 0
    by_kinds: Counter[tuple[str, ...]] = Counter()
    for seed in range(args.start, args.start + args.runs):
        outcome = Simulation(seed).run()
        by_kinds[tuple(sorted(outcome.kinds))] += 1
        if outcome.indistinguishable:
            undecidable += 1
            inexact += outcome.on_hand != outcome.expected_on_hand
        if not outcome.ok:
            failures.append((seed, outcome.problems))
    elapsed = time.perf_counter() - started
    print(
        f"simulation: {args.runs} runs (seeds {args.start}..{args.start + args.runs - 1}), "
        f"{len(failures)} failures, {elapsed:.0f} s"
    )
    print(
        f"  {undecidable} runs had a sale indistinguishable from our own push's report "
        f"(docs/consistency.md); {inexact} of them ended within that bound rather than exact"
    )
    for seed, problems in failures[:20]:
        print(f"  FAILED seed {seed}: {'; '.join(problems)}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
