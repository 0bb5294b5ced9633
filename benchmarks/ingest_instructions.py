"""Webhook ingestion in instructions: each receiver's work per delivery, counted, not timed.

`webhook_ingest.py` times receivers over HTTP. On a shared 2-core machine its runs scatter by
10-20 %, so a change worth 2 % of a delivery cannot be seen there, and neither can the share of a
delivery one part of the route takes. This benchmark counts the instructions a receiver executes
per delivery under valgrind's callgrind: the count does not depend on what else the machine is
doing, so two trees, or Nexus and a reference receiver, compare exactly.

One process per variant and size: the variant's app, built as `webhook_ingest.py` builds it, on a
fresh SQLite file (WAL, synchronous=FULL), on `nexus.eventloop` with the start-up heap frozen as
`nexus serve` freezes it, driven in process through ASGI by `--clients` concurrent callers (no
sockets: the HTTP server's own work is the same for every variant and is left out). Every delivery
is a Shopify-signed `inventory_levels/update` with its own ids; every answer must be 200
"accepted" and every delivery must be stored once. Each variant runs at two sizes, and the
difference of the two counts over the difference of the sizes is its instructions per delivery:
start-up, imports and first-call costs cancel.

Variants (see `webhook_ingest.py`): nexus (the app as shipped, processing stopped), contract (the
least code that keeps Nexus's receiver contract), drivers (contract, with the channel's driver
verifying, describing and parsing through the driver contract), minimal (HMAC and a group commit,
nothing else),
ceiling (the empty route, no database). A reference's count over Nexus's is the share of the
reference's throughput Nexus would reach if a delivery were bound by instructions alone; the
measured throughput share differs (cache misses, the writer thread's share of the GIL, the HTTP
server's work, which this leaves out), so this explains the timed figures, it does not replace
them.

    .venv/bin/python benchmarks/ingest_instructions.py                       # nexus and contract
    .venv/bin/python benchmarks/ingest_instructions.py --variants nexus,contract,drivers --keep DIR
    callgrind_annotate DIR/nexus.1200.out | head -40                         # where nexus's work goes

valgrind runs a Python process about 50 times slower: the default sizes take ~1.5 minutes per
variant, two runs at a time. `--no-valgrind` runs the same drive without it (the smoke test), and
prints microseconds per delivery instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import webhook_ingest as ingest

VARIANTS = ("nexus", "contract", "drivers", "minimal", "ceiling")
COLLECTED = re.compile(r"Collected : (\d+)")
DRIVE = re.compile(r"drive: ([\d.]+) s")


# -- one drive, in the measured process -----------------------------------------------------------


def _request(delivery: ingest.Delivery) -> tuple[dict[str, Any], bytes]:
    path = f"/nexus/webhooks/{ingest.CHANNEL}"
    headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(delivery.body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in delivery.headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 50000),
    }
    return scope, delivery.body


async def _call(app: Any, scope: dict[str, Any], body: bytes) -> None:
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    answer: list[Any] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # a disconnect never comes: the answer is awaited
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.append(message["status"])
        elif message["type"] == "http.response.body":
            answer.append(message.get("body", b""))

    await app(dict(scope), receive, send)
    status, content = answer[0], b"".join(answer[1:])
    ingest._check(status, content)


async def drive(variant: str, deliveries: int, clients: int, directory: str) -> int:
    """Send `deliveries` through `variant`'s app, `clients` at a time; the rows it stored."""
    from sqlalchemy import func, select

    from nexus.engine import Nexus
    from nexus.runtime import freeze_startup_heap
    from nexus.storage.models import WebhookLog
    from nexus.web import create_app

    requests = [_request(d) for d in ingest.make_deliveries(deliveries, variant)]
    async with Nexus(ingest.settings_for(f"{directory}/nexus.db"), source="benchmark") as nexus:
        await nexus.migrate()
        reference = ingest.reference_receiver(variant, f"{directory}/{variant}.db", nexus)
        if reference is not None:
            app: Any = reference.app()
        elif variant == "ceiling":
            app = ingest._ceiling_app()
        else:
            app = create_app(nexus)
            app.state.webhook_processor.schedule = lambda receipt: None  # ingestion only
        freeze_startup_heap()
        pending = iter(requests)

        async def caller() -> None:
            for scope, body in pending:
                await _call(app, scope, body)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(clients)))
        print(f"drive: {time.perf_counter() - started:.6f} s", flush=True)
        if reference is not None:
            return reference.stored()
        if variant == "ceiling":
            return deliveries
        async with nexus.db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(WebhookLog)) or 0)


def inner(variant: str, deliveries: int, clients: int) -> None:
    """The measured process: one drive; exits non-zero unless every delivery was stored."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from nexus import eventloop

    with tempfile.TemporaryDirectory(prefix="nexus-instructions-") as directory:
        stored = eventloop.run(drive(variant, deliveries, clients, directory))
    if stored != deliveries:
        raise SystemExit(f"{variant}: {stored} rows stored for {deliveries} deliveries")


# -- the counting, in this process ----------------------------------------------------------------


def count(variant: str, deliveries: int, clients: int, keep: Path | None, valgrind: bool) -> float:
    """Instructions of the process that drives `deliveries` (without valgrind: the drive's
    seconds of wall time)."""
    command = [sys.executable, __file__, "--inner", variant, str(deliveries), "--clients", str(clients)]
    # A fixed hash seed: with a random one, dict probe lengths (and so the count) differ from run
    # to run by up to ~10,000 instructions per delivery at these sizes.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if not valgrind:
        timed = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        return float(DRIVE.findall(timed.stdout)[-1])
    out = str(keep / f"{variant}.{deliveries}.out") if keep is not None else os.devnull
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
        capture_output=True,
        text=True,
        env=env,
    )
    if run.returncode != 0:
        raise RuntimeError(f"{variant} x {deliveries} failed under valgrind:\n{run.stderr[-2000:]}")
    found = COLLECTED.findall(run.stderr)
    if not found:
        raise RuntimeError(f"valgrind printed no instruction count for {variant} x {deliveries}")
    return float(found[-1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants", default="nexus,contract", help=f"comma-separated, from {', '.join(VARIANTS)}"
    )
    parser.add_argument("--deliveries", type=int, default=1000, help="deliveries between the two sizes")
    parser.add_argument("--base", type=int, default=200, help="deliveries of the smaller run")
    parser.add_argument("--clients", type=int, default=64, help="concurrent callers")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (valgrind uses one core each)")
    parser.add_argument("--keep", type=Path, help="keep each run's callgrind output in this directory")
    parser.add_argument(
        "--no-valgrind", action="store_true", help="time the same drives instead (microseconds per delivery)"
    )
    parser.add_argument("--inner", nargs=2, metavar=("VARIANT", "DELIVERIES"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.inner is not None:
        inner(args.inner[0], int(args.inner[1]), args.clients)
        return {}
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or set(variants) - set(VARIANTS):
        raise SystemExit(f"--variants takes some of {', '.join(VARIANTS)}; got {args.variants!r}")
    valgrind = not args.no_valgrind
    if valgrind and shutil.which("valgrind") is None:
        raise SystemExit(
            "valgrind is not installed: install it (Debian: apt-get install valgrind) or pass --no-valgrind"
        )
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    sizes = (args.base, args.base + args.deliveries)
    runs = [(variant, size) for variant in variants for size in sizes]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        counts = list(pool.map(lambda run: count(run[0], run[1], args.clients, args.keep, valgrind), runs))
    measured = dict(zip(runs, counts, strict=True))
    unit, scale = ("instructions", 1.0) if valgrind else ("µs of wall time", 1e6)
    per_delivery = {
        v: (measured[v, sizes[1]] - measured[v, sizes[0]]) / args.deliveries * scale for v in variants
    }
    print(
        f"ingest {unit} per delivery: in process through ASGI, {args.clients} concurrent callers, "
        f"runs of {sizes[0]} and {sizes[1]} deliveries, SQLite WAL synchronous=FULL"
    )
    for variant in variants:
        print(f"  {variant:9s} {per_delivery[variant]:12,.0f}")
    summary: dict[str, Any] = {"unit": unit, "per_delivery": per_delivery, "shares": {}}
    for faster, slower in (
        ("contract", "nexus"),
        ("drivers", "nexus"),
        ("contract", "drivers"),
        ("minimal", "nexus"),
        ("ceiling", "nexus"),
        ("minimal", "contract"),
        ("ceiling", "minimal"),
    ):
        if faster in per_delivery and slower in per_delivery:
            share = per_delivery[faster] / per_delivery[slower]
            summary["shares"][f"{slower}/{faster}"] = share
            print(
                f"  {slower} at {share:.0%} of {faster} ({slower}'s {unit} are {1 / share:.2f} x {faster}'s)"
            )
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
