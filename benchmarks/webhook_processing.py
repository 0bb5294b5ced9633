"""Webhook processing: stored deliveries turned into stock changes, per delivery, on SQLite and
PostgreSQL.

What propagation waits on once a delivery is stored (docs/benchmarks.md, section 4): every sale
costs three deliveries (the order, the level, the other channel's echo of our push), each applied
through `apply_inbound` in a batch transaction.

Set-up (not timed): a Nexus with two memory channels (`nexus.testing.MemoryChannel`), N items at 10
on hand, each listed on both, and for each item three deliveries stored by the real receiver: an
order of 1 on shop-a, shop-a's level of 9 after it, and shop-b's level of 10 (what it shows: an
echo, nothing new). Timed: `WebhookProcessor.process_pending` in batches of 16 until none is
left, as the pending loop runs them. Figures: deliveries/s, CPU per delivery (the whole process:
on SQLite the driver's thread too) and SQL statements per delivery.

- nexus: the processor as shipped (the batch's rows locked and looked up up front, one flush).
- baseline, same run, fresh database: the same processor with the up-front lookups off and every
  delivery in a savepoint of its own: each delivery looks up its listing, item and ledger key
  itself, as every delivery did before issue 13.

    .venv/bin/python benchmarks/webhook_processing.py          # N = 1000, SQLite and PostgreSQL, 3 runs
    .venv/bin/python benchmarks/webhook_processing.py --databases sqlite --skus 200 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from quiet import quiet_logs

DEFAULT_POSTGRES = os.environ.get("NEXUS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
VARIANTS = ("nexus", "baseline")
DATABASES = ("sqlite", "postgres")
CHANNELS = ("shop-a", "shop-b")
BATCH = 16


@dataclass
class Run:
    database: str
    variant: str
    deliveries: int
    seconds: float
    cpu_seconds: float
    statements: int

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds / self.deliveries * 1000


@contextlib.asynccontextmanager
async def database(kind: str, postgres: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="nexus-bench-proc-") as tmp:
            yield f"sqlite+aiosqlite:///{Path(tmp) / 'nexus.db'}"
        return
    from rate_limit_utilisation import temporary_database

    async with temporary_database(postgres, prefix="nexus_bench_proc_") as url:
        yield url


@contextlib.contextmanager
def one_by_one() -> Iterator[None]:
    """The baseline: no up-front lookups, a savepoint per delivery."""
    from nexus.domain import inbound
    from nexus.domain.stock import LockedStock
    from nexus.webhooks.processor import WebhookProcessor

    lock, attempt_all = inbound.InboundScope.lock, WebhookProcessor._attempt_all

    async def nothing_locked(cls: Any, session: Any, deliveries: Any) -> Any:
        return cls(LockedStock({}, {}, frozenset(), {}), {})

    async def careful(self: Any, session: Any, log_ids: Any, *, careful: bool) -> Any:
        return await attempt_all(self, session, log_ids, careful=True)

    inbound.InboundScope.lock = classmethod(nothing_locked)  # type: ignore[assignment]
    WebhookProcessor._attempt_all = careful  # type: ignore[method-assign]
    try:
        yield
    finally:
        inbound.InboundScope.lock = lock  # type: ignore[method-assign]
        WebhookProcessor._attempt_all = attempt_all  # type: ignore[method-assign]


async def measure(kind: str, variant: str, skus: int, postgres: str) -> Run:
    from sqlalchemy import event, func, select

    from nexus.config import NexusSettings
    from nexus.engine import Nexus
    from nexus.storage.models import ChannelMapping, Item, utcnow
    from nexus.testing import MemoryChannel, signed_headers
    from nexus.webhooks.processor import WebhookProcessor
    from nexus.webhooks.receiver import WebhookReceiver

    async with database(kind, postgres) as url:
        settings = NexusSettings(database_url=url, channels={name: {"driver": "memory"} for name in CHANNELS})
        nexus = Nexus(settings)
        nexus.extend("memory", MemoryChannel.factory())
        try:
            await nexus.migrate()
            async with nexus.db.transaction() as session:
                for i in range(skus):
                    sku = f"SKU-{i:06d}"
                    session.add(Item(sku=sku, title=sku, on_hand=10))
                    for channel in CHANNELS:
                        session.add(
                            ChannelMapping(
                                syncable_id=sku,
                                sku=sku,
                                channel=channel,
                                remote_id=f"{channel}-{i}",
                                desired_qty=10,
                                pushed_qty=10,
                                remote_qty=10,
                            )
                        )
            receiver = WebhookReceiver(nexus)
            stamp = utcnow().isoformat()
            for i in range(skus):
                for channel, payload in (
                    (
                        "shop-a",
                        {
                            "sales": [
                                {
                                    "remote_id": f"shop-a-{i}",
                                    "quantity": 1,
                                    "order_id": f"O{i}",
                                    "line_id": "1",
                                }
                            ]
                        },
                    ),
                    (
                        "shop-a",
                        {"levels": [{"remote_id": f"shop-a-{i}", "quantity": 9, "observed_at": stamp}]},
                    ),
                    (
                        "shop-b",
                        {"levels": [{"remote_id": f"shop-b-{i}", "quantity": 10, "observed_at": stamp}]},
                    ),
                ):
                    body = json.dumps(payload).encode()
                    headers = signed_headers(body, delivery_id=f"{channel}-{i}-{len(body)}")
                    receipt = await receiver.receive(channel, headers, body)
                    assert receipt.stored, receipt
            processor = WebhookProcessor(nexus)
            statements = [0]

            def count(*_: Any) -> None:
                statements[0] += 1

            engine = nexus.db.engine.sync_engine
            event.listen(engine, "before_cursor_execute", count)
            with one_by_one() if variant == "baseline" else contextlib.nullcontext():
                started, cpu = time.perf_counter(), time.process_time()
                done = 0
                while finished := await processor.process_pending(limit=BATCH):
                    done += finished
                seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
            event.remove(engine, "before_cursor_execute", count)
            async with nexus.db.read() as session:
                left = (await session.execute(select(func.count()).where(Item.on_hand != 9))).scalar_one()
            if done != 3 * skus or left:
                raise SystemExit(f"{kind} {variant}: {done} of {3 * skus} processed, {left} items not at 9")
            return Run(kind, variant, done, seconds, cpu_seconds, statements[0])
        finally:
            await nexus.aclose()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=1000, help="items, three deliveries each (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported (3)")
    parser.add_argument("--databases", default=",".join(DATABASES), help="sqlite,postgres (both)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin DSN (temporary databases)")
    args = parser.parse_args(argv)
    kinds = [d.strip() for d in args.databases.split(",") if d.strip()]
    print(
        f"webhook processing: {args.skus} items x 3 deliveries (order, level, the other channel's echo), "
        f"batches of {BATCH}, {args.repeat} repetition(s), variants interleaved"
    )
    runs: list[Run] = []
    for kind in kinds:
        for repetition in range(args.repeat):
            for variant in VARIANTS:
                run = asyncio.run(measure(kind, variant, args.skus, args.postgres))
                runs.append(run)
                print(
                    f"  {kind:<8} {variant:<8} run {repetition + 1}: {run.per_second:7,.0f} deliveries/s, "
                    f"CPU {run.cpu_ms:5.2f} ms each, {run.statements / run.deliveries:4.1f} statements each"
                )
    summary: dict[str, Any] = {"runs": [asdict(r) for r in runs], "medians": {}}
    print(f"median of {args.repeat}:")
    for kind in kinds:
        medians = {}
        for variant in VARIANTS:
            mine = [r for r in runs if r.database == kind and r.variant == variant]
            medians[variant] = {
                "per_second": statistics.median(r.per_second for r in mine),
                "cpu_ms": statistics.median(r.cpu_ms for r in mine),
                "statements": statistics.median(r.statements / r.deliveries for r in mine),
            }
            m = medians[variant]
            print(
                f"  {kind:<8} {variant:<8} {m['per_second']:7,.0f} deliveries/s, CPU {m['cpu_ms']:5.2f} ms "
                f"each, {m['statements']:4.1f} statements each"
            )
        n, b = medians["nexus"], medians["baseline"]
        print(
            f"  {kind}: ratio nexus / baseline throughput = {n['per_second'] / b['per_second']:.2f}x, "
            f"CPU per delivery {b['cpu_ms'] / n['cpu_ms']:.2f}x less, "
            f"statements {b['statements'] / n['statements']:.2f}x fewer"
        )
        summary["medians"][kind] = medians
    return summary


if __name__ == "__main__":
    quiet_logs()
    main(sys.argv[1:])
