"""Running Nexus as a service: the web app, one push worker per channel and the webhook processor,
all in one event loop (`nexus serve`), or any part of them (`nexus worker`, `serve --no-workers`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from nexus.engine import Nexus
from nexus.sync.retention import Retention
from nexus.web.server import serve_app

log = structlog.get_logger("nexus.runtime")


@dataclass
class RunningService:
    stop: asyncio.Event
    base_url: str | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def running(
    nexus: Nexus,
    *,
    web: bool = True,
    workers: bool = True,
    host: str = "127.0.0.1",
    port: int = 8000,
    channels: list[str] | None = None,
    concurrency: int | None = None,
    metrics_port: int | None = None,
) -> AsyncIterator[RunningService]:
    """Start the requested parts; on exit, stop them and let in-flight pushes finish.

    Per channel, `concurrency` push rounds are kept in flight (default `worker.concurrency`,
    else what the channel allows: its driver's `max_in_flight`). Each is a loop of its own with
    its own lease owner, so one claims the next round while another's push is on the wire, and
    a listing leased to one round is never claimed by another (claims skip live leases; on
    PostgreSQL with SKIP LOCKED, on SQLite one claim after the other).
    """
    from nexus.web import create_app, create_metrics_app
    from nexus.webhooks.processor import WebhookProcessor

    service = RunningService(stop=asyncio.Event())
    await nexus.connect()
    if workers:
        for name in channels or nexus.channel_names():
            for slot in range(rounds_in_flight(nexus, name, concurrency)):
                worker = nexus.push_worker(name)
                service.tasks.append(
                    asyncio.create_task(worker.run(service.stop), name=f"push:{name}:{slot}")
                )
            if nexus.channel(name).config.reconcile.enabled:
                reconciler = nexus.reconciler(name)
                service.tasks.append(
                    asyncio.create_task(reconciler.run(service.stop), name=f"reconcile:{name}")
                )
        processor = WebhookProcessor(nexus)
        service.tasks.append(asyncio.create_task(processor.run(service.stop), name="webhooks"))
        service.tasks.append(asyncio.create_task(Retention(nexus).run(service.stop), name="retention"))
    try:
        if web:
            async with serve_app(create_app(nexus), host=host, port=port) as server:
                service.base_url = server.base_url
                yield service
        elif metrics_port is not None:
            # A worker's own counters, for Prometheus to scrape beside the web nodes'.
            async with serve_app(create_metrics_app(nexus), host=host, port=metrics_port) as server:
                service.base_url = server.base_url
                yield service
        else:
            yield service
    finally:
        service.stop.set()
        nexus.notify()
        if service.tasks:
            grace = nexus.settings.worker.shutdown_grace
            done, pending = await asyncio.wait(service.tasks, timeout=grace or None)
            for task in pending:
                # A cancelled round releases its listings (see PushWorker.run_once).
                task.cancel()
            if pending:
                log.warning("shutdown grace ran out; released what was in flight", rounds=len(pending))
                await asyncio.wait(pending, timeout=10)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("task ended with an error", task=task.get_name(), error=repr(task.exception()))
        await nexus.batch_settler.drain()  # the last rounds' batches complete before we stop


def freeze_startup_heap() -> None:
    """Call once start-up is over: the heap it built (models, routes, drivers) lives as long as
    the process. Frozen, the garbage collector stops walking it in every full collection; those
    pauses held every delivery in flight for ~40 ms under load (docs/benchmarks.md, section 2).
    The price: what of it later becomes garbage in a reference cycle (a replaced pool
    connection, a rebuilt client) is never collected, a leak bounded by the start-up heap."""
    gc.collect()
    gc.freeze()


def rounds_in_flight(nexus: Nexus, channel: str, concurrency: int | None = None) -> int:
    """How many push rounds of `channel` one process keeps in flight: `concurrency` (the
    command line), else `worker.concurrency`, else the channel's own `max_in_flight`."""
    configured = concurrency or nexus.settings.worker.concurrency
    return configured or nexus.channel(channel).driver.capabilities.max_in_flight


async def serve_forever(
    nexus: Nexus,
    *,
    web: bool,
    workers: bool,
    host: str,
    port: int,
    concurrency: int | None = None,
    metrics_port: int | None = None,
) -> None:
    """Run until SIGINT or SIGTERM; in-flight work finishes before the process exits."""
    async with running(
        nexus,
        web=web,
        workers=workers,
        host=host,
        port=port,
        concurrency=concurrency,
        metrics_port=metrics_port,
    ) as service:
        freeze_startup_heap()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, service.stop.set)
        log.info("nexus running", url=service.base_url, workers=workers)
        await service.stop.wait()
