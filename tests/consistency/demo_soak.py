"""`make soak`, second half: the demo scenarios over many seeds, each a real `nexus demo` process
(sandboxes over HTTP, signed webhooks, SQLite), counting runs that did not converge.

    python tests/consistency/demo_soak.py --runs 100 --jobs 3 [--scenario single|four|both] [--keep DIR]

With --keep, a run that did not converge leaves its database (listings and their timelines,
stock movements, every webhook delivery, push jobs) and its whole output in DIR, named by
scenario and seed, for a post-mortem; converged runs leave nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

SCENARIOS = {
    # the single-channel demo test's scenario (and the repository's stop hook's spot check)
    "single": ["--skus", "150", "--duration", "4", "--sales-per-second", "40"],
    # the four-channel demo test's scenario
    "four": [
        "--channels",
        "shopify,woocommerce,amazon,etsy",
        "--skus",
        "60",
        "--duration",
        "4",
        "--sales-per-second",
        "20",
    ],
}


async def run_one(nexus: str, scenario: str, seed: int, folder: Path, limit: asyncio.Semaphore) -> str | None:
    """None when the run converged; otherwise what it printed last."""
    async with limit:
        command = [nexus, "demo", *SCENARIOS[scenario], "--seed", str(seed)]
        database = folder / f"{scenario}-{seed}.db"
        command += ["--database", str(database)]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
        except TimeoutError:
            process.kill()
            return "timed out after 300 s"
        text = output.decode(errors="replace")
        last = [line for line in text.splitlines() if line.startswith("out_of_sync: ")]
        converged = process.returncode == 0 and bool(last) and last[-1] == "out_of_sync: 0"
        await asyncio.to_thread(_keep_or_forget, database, text, converged)
        if converged:
            return None
        return f"exit {process.returncode}, {last[-1] if last else 'no summary'}\n{text[-800:]}"


def _keep_or_forget(database: Path, output: str, converged: bool) -> None:
    """A converged run's files go; a failed one's output is written beside its database."""
    if converged:
        for path in database.parent.glob(f"{database.stem}.*"):
            path.unlink()
    else:
        database.with_suffix(".log").write_text(output)


async def soak(scenario: str, runs: int, start: int, jobs: int, keep: Path | None = None) -> int:
    nexus = str(Path(sys.executable).with_name("nexus"))
    limit = asyncio.Semaphore(jobs)
    started = time.perf_counter()
    with nullcontext(str(keep)) if keep is not None else tempfile.TemporaryDirectory() as folder:
        seeds = range(start, start + runs)
        results = await asyncio.gather(*(run_one(nexus, scenario, s, Path(folder), limit) for s in seeds))
    failed = [(seed, result) for seed, result in zip(seeds, results, strict=True) if result is not None]
    elapsed = time.perf_counter() - started
    seeds_text = f"seeds {start}..{start + runs - 1}"
    print(f"demo {scenario}: {runs} runs ({seeds_text}), {len(failed)} failures, {elapsed:.0f} s")
    for seed, result in failed:
        print(f"  FAILED seed {seed}: {result}")
    return len(failed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--start", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "both"], default="both")
    parser.add_argument("--keep", type=Path, help="leave failed runs' databases and output here")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    names = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    failures = sum(asyncio.run(soak(name, args.runs, args.start, args.jobs, args.keep)) for name in names)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
