"""SNS signature verification on or off the event loop (issue 13 point 2: "verification off the
event loop where it is CPU-bound (SNS RSA)").

Every Amazon delivery is an SNS message whose RSA signature (2048-bit, PKCS#1 v1.5) Nexus checks
with the certificate it fetched once. One event loop parses every delivery of the process, so what
matters for ingestion is the loop thread's CPU per delivery; a check in a worker thread (OpenSSL
releases the GIL while it works) can run on the other core.

M Notifications signed by the Amazon sandbox's SNS topic (its certificate served by its `fetch`),
verified through `nexus.channels.amazon.sns.SnsVerifier` by K concurrent callers, while the loop
also does a fixed amount of other work per delivery (--loop-work-us, standing for the HTTP parsing
and the receiver's own work that shares the loop; 0 to leave it out):

- thread: `SnsVerifier(in_thread=True)`, the check in `asyncio.to_thread` (as shipped);
- inline (the baseline): `SnsVerifier(in_thread=False)`, the check on the loop.

Printed per variant: deliveries/s, the loop thread's CPU per delivery (`time.thread_time` in the
loop), the whole process's CPU per delivery, and the ratios thread / inline.

    .venv/bin/python benchmarks/sns_verify.py                       # M = 4000, K = 64, 3 repetitions
    .venv/bin/python benchmarks/sns_verify.py --loop-work-us 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

VARIANTS = ("thread", "inline")


@dataclass
class Result:
    variant: str
    deliveries: int
    seconds: float
    loop_cpu_seconds: float
    process_cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds

    @property
    def loop_us(self) -> float:
        return self.loop_cpu_seconds / self.deliveries * 1e6

    @property
    def process_us(self) -> float:
        return self.process_cpu_seconds / self.deliveries * 1e6


def signed_messages(count: int) -> tuple[list[dict[str, Any]], Any]:
    """`count` signed Notifications and the topic (whose `fetch` serves the certificate)."""
    from nexus.sandbox.amazon.sns import SnsTopic
    from nexus.sandbox.stats import SandboxStats

    topic = SnsTopic(stats=SandboxStats(), region="us-east-1", signature_version="1")
    messages = []
    for n in range(count):
        fields = {
            "Type": "Notification",
            "MessageId": f"00000000-0000-0000-0000-{n:012d}",
            "TopicArn": topic.arn,
            "Message": json.dumps({"NotificationType": "ANY_OFFER_CHANGED", "n": n}),
            "Timestamp": "2026-12-03T08:00:00.000Z",
        }
        messages.append(topic.sign(fields))
    return messages, topic


def busy(microseconds: float) -> None:
    """Spend this much of the loop thread's own CPU (not wall time: the machine is shared)."""
    end = time.thread_time() + microseconds / 1e6
    while time.thread_time() < end:
        pass


async def run_variant(
    variant: str, messages: list[dict[str, Any]], fetch: Any, clients: int, loop_work_us: float
) -> Result:
    from nexus.channels.amazon.sns import SnsVerifier

    verifier = SnsVerifier(fetch, in_thread=variant == "thread")
    await verifier.verify(messages[0])  # the certificate fetch and the thread pool's start
    queue = list(reversed(messages))

    async def client() -> None:
        while queue:
            message = queue.pop()
            busy(loop_work_us)  # the loop's other work for this delivery
            await verifier.verify(message)

    loop0, process0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - wall0
    return Result(
        variant,
        len(messages),
        wall,
        time.thread_time() - loop0,
        time.process_time() - process0,
    )


def report(results: list[Result], options: argparse.Namespace) -> dict[str, Any]:
    print(
        f"SNS verification: {options.deliveries} Notifications (SignatureVersion 1, RSA 2048), "
        f"{options.clients} concurrent callers, {options.loop_work_us:g} us of other loop work per "
        f"delivery; {options.repeat} repetition(s), medians"
    )
    summary: dict[str, Any] = {"options": vars(options), "runs": [asdict(r) for r in results]}
    medians: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        mine = [r for r in results if r.variant == variant]
        if not mine:
            continue
        medians[variant] = {
            "per_second": statistics.median(r.per_second for r in mine),
            "loop_us": statistics.median(r.loop_us for r in mine),
            "process_us": statistics.median(r.process_us for r in mine),
        }
        m = medians[variant]
        runs = " / ".join(f"{r.per_second:,.0f}" for r in mine)
        print(
            f"  {variant:<7} {m['per_second']:>8,.0f} deliveries/s (runs {runs}); loop thread "
            f"{m['loop_us']:.0f} us CPU per delivery; whole process {m['process_us']:.0f} us"
        )
    if {"thread", "inline"} <= medians.keys():
        t, i = medians["thread"], medians["inline"]
        ratios = {
            "throughput": t["per_second"] / i["per_second"],
            "loop_cpu": t["loop_us"] / i["loop_us"],
            "process_cpu": t["process_us"] / i["process_us"],
        }
        summary["ratios"] = ratios
        print(
            f"  ratio thread / inline: throughput {ratios['throughput']:.2f}x, loop CPU per delivery "
            f"{ratios['loop_cpu']:.2f}x, process CPU per delivery {ratios['process_cpu']:.2f}x"
        )
    summary["medians"] = medians
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=4000, help="Notifications per run (4000)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent callers (64)")
    parser.add_argument(
        "--loop-work-us", type=float, default=150.0, help="other loop work per delivery, us (150)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions, interleaved (3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="thread,inline (both)")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    options = parse_args(argv)
    variants = [v for v in options.variants.split(",") if v]
    if set(variants) - set(VARIANTS):
        raise SystemExit(f"variants are {', '.join(VARIANTS)}")
    messages, topic = signed_messages(options.deliveries)
    results = []
    for _ in range(options.repeat):
        for variant in variants:  # interleaved, so outside load hits both alike
            results.append(
                asyncio.run(
                    run_variant(variant, messages, topic.fetch, options.clients, options.loop_work_us)
                )
            )
    summary = report(results, options)
    if options.json is not None:
        options.json.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
