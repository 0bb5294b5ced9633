"""Webhook ingestion over real HTTP: verify, store durably, answer.

DESIGN target: "webhook ingestion (verify, store durably, answer) >= 2,000 deliveries/s on SQLite on
2 cores: group commit rather than one transaction per request, and never answer 200 before the
write is durable".

One repetition, per variant:

- server: a separate process (spawned) runs `create_app(nexus)` with a Shopify channel on a fresh
  SQLite file (WAL, synchronous=FULL, as Nexus configures it), served by uvicorn through
  `nexus.web.server.serve_app` on loopback, as `nexus serve` runs it: on the event loop
  `nexus.eventloop` chooses (uvloop where installed), with the start-up heap frozen
  (`nexus.runtime.freeze_startup_heap`).
- load: this process sends M Shopify-signed `inventory_levels/update` deliveries, each with its
  own X-Shopify-Webhook-Id and X-Shopify-Event-Id, from K concurrent clients (one keep-alive
  connection each). Bodies and signatures are made before the clock starts; a few deliveries warm
  the server up first. Every answer must be 200 "accepted", and the server must hold exactly one
  row per delivery afterwards.
- clients: `--client raw` (default) writes the same requests pre-encoded as HTTP/1.1 on asyncio
  streams, ~0.15 ms of CPU each; `--client httpx` uses one httpx.AsyncClient per connection, which
  costs several ms of CPU per request on a slow core and can become the bottleneck. The share of
  a core the load generator used is printed with every run.
- figures: deliveries/s over the whole burst (first send to last answer) and p50/p99 latency.

Variants, same run:

- nexus:    the app as shipped (WebhookReceiver's GroupWriter, up to 256 rows per transaction).
- baseline: the same app, with the receiver's GroupWriter replaced by one with max_batch=1, so
  every delivery is committed in a transaction of its own; everything else is identical.
- ceiling (a reference, not a baseline): the same server stack (uvicorn via serve_app, the
  app's `NexusApp` serving the same route path as a plain Starlette route) with an endpoint that
  only reads the body and answers 200: no verification, no database. What this machine's HTTP
  stack can do at best.
- minimal (a reference): the same stack and route with the least a verifying, durable receiver
  must do, written for this benchmark alone: check the Shopify HMAC, read the delivery id, queue
  the row for a group commit (stdlib sqlite3 in a worker thread, WAL, synchronous=FULL, a UNIQUE
  delivery id, every waiting row in one transaction) and answer 200 once it is committed. No
  parsing of the body, no headers kept, no metrics, no logging: the ceiling of a receiver that
  keeps the contract, on this stack.
- contract (a reference): `minimal` plus what Nexus's own receiver contract adds (README, "Webhooks:
  what the receiver guarantees"), written as plainly: the body read as a stream and refused with a
  413 once it is over the channel's default limit (never held whole; Content-Length believed
  first), the body parsed and checked before the 200 (a 400 for a body Shopify would never send),
  the topic and both ids (X-Shopify-Webhook-Id and X-Shopify-Event-Id, each UNIQUE per channel),
  the headers kept for audit with the signature masked, and the row in a table indexed as
  `nexus_webhook_logs` is (both unique ids, pending rows, time received). No metrics, no
  logging, no SQLAlchemy: the ceiling of Nexus's contract on this stack. (Until issue 13's
  eleventh session it read the whole body at once, without the 413.)
- drivers (a reference): `contract`, with its three inline steps (the HMAC check, the topic and
  ids read from the headers, the payload check) done instead by the channel's driver through the
  driver contract, as Nexus does them, with what serving channels by name takes: the channel's
  configuration looked up per delivery (404 unknown or disabled, its own body limit), its driver,
  a `WebhookRequest`, `verify_webhook`, `describe_webhook`, the ids' length, a body declared JSON
  decoded, `parse_webhook`, and each refusal answered with its error's status. Everything else
  is `contract`'s. So `drivers` over `contract` is what the driver contract costs, and `nexus`
  over `drivers` is what Nexus's own receiver costs beyond the least receiver built on the
  drivers (issue 13's fifteenth session).

Processing (turning stored rows into stock changes) is stopped by default: the app's
`processor.schedule` is replaced by a no-op, so the figure is ingestion only. With --processing the
route's processing task runs for every delivery (the level names an inventory item no listing
has, so each attempt is one small write transaction that marks the row processed).

    .venv/bin/python benchmarks/webhook_ingest.py                      # M = 5000, K = 64, 3 repetitions
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

if TYPE_CHECKING:
    from nexus.config import NexusSettings
    from nexus.engine import Nexus

CHANNEL = "shopify-bench"
SECRET = "benchmark-webhook-secret"
TOPIC = "inventory_levels/update"
SHOP = "nexus-bench.myshopify.com"
LOCATION_ID = 1
SIGNATURE = "x-shopify-hmac-sha256"
MAX_BYTES = 1_048_576  # the default `webhook_max_bytes`: the contract reference's 413


@dataclass(frozen=True, slots=True)
class Delivery:
    body: bytes
    headers: dict[str, str]


@dataclass
class Result:
    variant: str
    deliveries: int
    seconds: float
    latencies: list[float]
    stored: int
    client_cpu: float

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def make_deliveries(count: int, run: str) -> list[Delivery]:
    from nexus.channels.shopify.webhooks import compute_hmac

    deliveries = []
    for n in range(count):
        item_id = 40_000_000 + n
        body = json.dumps(
            {
                "inventory_item_id": item_id,
                "location_id": LOCATION_ID,
                "available": n % 50,
                "updated_at": "2026-01-01T00:00:00+00:00",
                "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{LOCATION_ID}?inventory_item_id={item_id}",
            },
            separators=(",", ":"),
        ).encode()
        deliveries.append(
            Delivery(
                body,
                {
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": TOPIC,
                    "X-Shopify-Hmac-Sha256": compute_hmac(SECRET, body),
                    "X-Shopify-Shop-Domain": SHOP,
                    "X-Shopify-API-Version": "2026-10",
                    "X-Shopify-Webhook-Id": f"{run}-{n}-{uuid.uuid4()}",
                    "X-Shopify-Event-Id": str(uuid.uuid4()),
                    "X-Shopify-Triggered-At": "2026-01-01T00:00:00.000000Z",
                },
            )
        )
    return deliveries


# -- the server process ---------------------------------------------------------------------------


def serve(
    variant: str, database: str, processing: bool, nodelay: bool, conn: Connection, profile: str | None = None
) -> None:
    """Entry point of the server process: send the port, serve until told to stop, send the row count."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from nexus import eventloop

    if profile is None:
        eventloop.run(_serve(variant, database, processing, nodelay, conn))
        return
    import cProfile

    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(eventloop.run, _serve(variant, database, processing, nodelay, conn))
    profiler.dump_stats(profile)


async def _serve(variant: str, database: str, processing: bool, nodelay: bool, conn: Connection) -> None:
    from sqlalchemy import func, select

    from nexus.engine import Nexus
    from nexus.runtime import freeze_startup_heap
    from nexus.storage.models import WebhookLog
    from nexus.web import create_app
    from nexus.web.server import serve_app
    from nexus.webhooks.receiver import GroupWriter, WebhookReceiver

    async with Nexus(settings_for(database), source="benchmark") as nexus:
        await nexus.migrate()
        minimal = reference_receiver(variant, f"{database}.{variant}", nexus)
        if minimal is not None:
            app = minimal.app()
        else:
            app = create_app(nexus) if variant != "ceiling" else _ceiling_app()
        if variant == "baseline":
            receiver = app.state.webhook_receiver
            if not isinstance(receiver, WebhookReceiver) or not isinstance(
                getattr(receiver, "_writer", None), GroupWriter
            ):
                raise RuntimeError(
                    "WebhookReceiver no longer has a GroupWriter in `_writer`: update the baseline"
                )
            receiver._writer = GroupWriter(nexus.db, max_batch=1)  # one transaction per delivery
        if not processing and variant in ("nexus", "baseline"):
            app.state.webhook_processor.schedule = lambda receipt: None
        freeze_startup_heap()  # as `nexus serve` does once started
        async with serve_app(app) as server:
            if nodelay:
                for listener in server.server.servers:
                    for sock in listener.sockets:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.send(server.port)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "stop"
        if processing and variant in ("nexus", "baseline"):
            await app.state.webhook_processor.drain()
        async with nexus.db.read() as session:
            stored = await session.scalar(select(func.count()).select_from(WebhookLog))
        if minimal is not None:
            stored = minimal.stored()
    conn.send(int(stored or 0))


def settings_for(database: str) -> NexusSettings:
    """Nexus on the SQLite file `database`, with the one Shopify channel the deliveries are for."""
    from nexus.config import ChannelConfig, NexusSettings

    return NexusSettings(
        database_url=f"sqlite+aiosqlite:///{database}",
        channels={
            CHANNEL: ChannelConfig(
                driver="shopify",
                base_url="http://127.0.0.1:9",  # never called: only webhooks arrive
                credentials={"access_token": "unused", "webhook_secret": SECRET},
                settings={"location_id": str(LOCATION_ID)},
            )
        },
    )


def _ceiling_app() -> FastAPI:
    """The same stack as the app's webhook route: `NexusApp` answering a plain Starlette route
    ahead of FastAPI's per-request machinery, with an endpoint that only reads the body."""
    from starlette.routing import Route

    from nexus.web.app import NexusApp

    async def receive_webhook(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "accepted", "id": 0})

    app = NexusApp()
    app.webhook_route = Route("/nexus/webhooks/{channel}", receive_webhook, methods=["POST"])
    return app


def reference_receiver(variant: str, path: str, nexus: Nexus) -> _MinimalReceiver | None:
    """The reference receiver `variant` names, on the SQLite file `path`; None for Nexus's own app
    and the empty route."""
    if variant not in ("minimal", "contract", "drivers"):
        return None
    drivers = nexus if variant == "drivers" else None
    return _MinimalReceiver(path, contract=variant != "minimal", drivers=drivers)


class _MinimalReceiver:
    """The least a verifying receiver that is durable before its 200 can do (the `minimal`
    variant); with `contract`, the least that keeps Nexus's receiver contract (`contract`); with
    `drivers`, the same for every channel `drivers` configures, through each one's driver (`drivers`)."""

    def __init__(self, path: str, *, contract: bool = False, drivers: Nexus | None = None) -> None:
        import sqlite3

        self.contract = contract
        self.drivers = drivers
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        if contract:
            self.db.execute(
                "CREATE TABLE delivery (id INTEGER PRIMARY KEY, channel TEXT, topic TEXT, delivery_id TEXT,"
                " event_id TEXT, status TEXT, headers TEXT, body BLOB, received_at TEXT,"
                " UNIQUE (channel, delivery_id), UNIQUE (channel, event_id))"
            )
            self.db.execute("CREATE INDEX delivery_pending ON delivery (status)")
            self.db.execute("CREATE INDEX delivery_received ON delivery (received_at)")
            self.insert = (
                "INSERT INTO delivery (channel, topic, delivery_id, event_id, status, headers, body,"
                " received_at) VALUES (?, ?, ?, ?, 'received', ?, ?, ?) ON CONFLICT DO NOTHING"
            )
        else:
            self.db.execute(
                "CREATE TABLE delivery (id INTEGER PRIMARY KEY, delivery_id TEXT UNIQUE, body BLOB)"
            )
            self.insert = "INSERT INTO delivery (delivery_id, body) VALUES (?, ?) ON CONFLICT DO NOTHING"
        self.waiting: list[tuple[tuple[Any, ...], asyncio.Future[bool]]] = []
        self.wake = asyncio.Event()
        self.writer: asyncio.Task[None] | None = None

    def app(self) -> FastAPI:
        import base64
        import hashlib
        import hmac
        from datetime import UTC, datetime

        from starlette.routing import Route

        from nexus.drivers.contract import WebhookRequest
        from nexus.errors import WebhookError
        from nexus.web.app import NexusApp
        from nexus.webhooks.receiver import ID_MAX_LENGTH, TOPIC_MAX_LENGTH

        key = SECRET.encode()

        def row(request: Request, body: bytes) -> tuple[Any, ...] | None:
            """The row to store, or None for a body Shopify would never send (a 400)."""
            headers = request.headers
            if not self.contract:
                return (headers["x-shopify-webhook-id"], body)
            try:
                level = json.loads(body)
            except ValueError:
                return None
            fields = ("inventory_item_id", "location_id", "available")
            if not isinstance(level, dict) or not all(isinstance(level.get(name), int) for name in fields):
                return None
            kept = {name: "***" if name == SIGNATURE else value for name, value in headers.items()}
            return (
                request.path_params["channel"],
                headers["x-shopify-topic"],
                headers["x-shopify-webhook-id"],
                headers["x-shopify-event-id"],
                json.dumps(kept),
                body,
                datetime.now(UTC).isoformat(),
            )

        async def bounded_body(request: Request, limit: int = MAX_BYTES) -> bytes | None:
            """The body, or None when it is over the limit (a 413): never more than the limit
            plus one chunk held, as the contract's 413 requires of a receiver."""
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                return None
            parts: list[bytes] = []
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return None
                parts.append(chunk)
            return b"".join(parts)

        async def receive_through_driver(request: Request, nexus: Nexus) -> Response:
            """What any receiver serving channels through the driver contract does: the channel
            found by name (a 404 when unknown or disabled), its body limit, its driver's verify,
            describe and parse, the ids' length and a body declared JSON checked, each refusal
            with the status the driver's error carries."""
            channel = request.path_params["channel"]
            config = nexus.settings.channels.get(channel)
            if config is None or not config.enabled:
                return JSONResponse({"error": "no such channel"}, status_code=404)
            if (body := await bounded_body(request, config.webhook_max_bytes)) is None:
                return JSONResponse({"error": "too large"}, status_code=413)
            driver = nexus.channel(channel).driver
            headers = dict(request.headers.items())  # ASGI names are lower-case already
            received_at = datetime.now(UTC)
            delivery = WebhookRequest(channel=channel, headers=headers, body=body, received_at=received_at)
            try:
                await driver.verify_webhook(delivery)
                meta = driver.describe_webhook(delivery)
                if any(len(key) > ID_MAX_LENGTH for key in (meta.delivery_id or "", meta.event_id or "")):
                    return JSONResponse({"error": "id too long"}, status_code=400)
                if headers.get("content-type", "").startswith("application/json"):
                    delivery.json()
                driver.parse_webhook(delivery)
            except WebhookError as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
            kept = {name: "***" if name == SIGNATURE else value for name, value in headers.items()}
            values = (
                channel,
                meta.topic[:TOPIC_MAX_LENGTH],
                meta.delivery_id,
                meta.event_id,
                json.dumps(kept),
                body,
                received_at.isoformat(),
            )
            return await stored_response(values)

        async def stored_response(values: tuple[Any, ...]) -> Response:
            stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self.waiting.append((values, stored))
            self.wake.set()
            if self.writer is None:
                self.writer = asyncio.create_task(self._write())
            new = await stored
            return JSONResponse({"status": "accepted" if new else "duplicate", "id": 0})

        async def receive_webhook(request: Request) -> Response:
            if self.drivers is not None:
                return await receive_through_driver(request, self.drivers)
            if not self.contract:
                body = await request.body()
            elif (bounded := await bounded_body(request)) is None:
                return JSONResponse({"error": "too large"}, status_code=413)
            else:
                body = bounded
            expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(expected, request.headers.get("x-shopify-hmac-sha256", "")):
                return JSONResponse({"error": "signature"}, status_code=401)
            values = row(request, body)
            if values is None:
                return JSONResponse({"error": "payload"}, status_code=400)
            return await stored_response(values)

        app = NexusApp()
        app.webhook_route = Route("/nexus/webhooks/{channel}", receive_webhook, methods=["POST"])
        return app

    def _commit(self, rows: list[tuple[Any, ...]]) -> list[bool]:
        self.db.execute("BEGIN IMMEDIATE")
        stored = [self.db.execute(self.insert, row).rowcount == 1 for row in rows]
        self.db.execute("COMMIT")
        return stored

    async def _write(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            group, self.waiting = self.waiting, []
            if not group:
                continue
            stored = await asyncio.to_thread(self._commit, [values for values, _ in group])
            for (_, future), new in zip(group, stored, strict=True):
                future.set_result(new)

    def stored(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM delivery").fetchone()[0])


# -- the load generator ---------------------------------------------------------------------------


async def fire(url: str, deliveries: list[Delivery], clients: int, kind: str) -> tuple[float, list[float]]:
    """Send every delivery through `clients` keep-alive connections; (seconds, latencies)."""
    send = _httpx_clients if kind == "httpx" else _raw_clients
    return await send(url, deliveries, clients)


def _check(status: int, body: bytes) -> None:
    if status != 200 or json.loads(body).get("status") != "accepted":
        raise RuntimeError(f"delivery refused: {status} {body[:200]!r}")


async def _httpx_clients(url: str, deliveries: list[Delivery], clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    pending = iter(deliveries)

    async def client(http: httpx.AsyncClient) -> None:
        for delivery in pending:
            sent = time.perf_counter()
            response = await http.post(url, content=delivery.body, headers=delivery.headers)
            latencies.append(time.perf_counter() - sent)
            _check(response.status_code, response.content)

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    https = [httpx.AsyncClient(limits=limits, timeout=60.0, trust_env=False) for _ in range(clients)]
    try:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for http in https))
        return time.perf_counter() - started, latencies
    finally:
        for http in https:
            await http.aclose()


async def _raw_clients(url: str, deliveries: list[Delivery], clients: int) -> tuple[float, list[float]]:
    """The same requests, pre-encoded as HTTP/1.1 and written on plain asyncio streams: a load
    generator that costs a few microseconds per request, so the figure is the server's."""
    parsed = httpx.URL(url)
    host, port, path = parsed.host, parsed.port or 80, parsed.raw_path.decode()
    requests = [_encode(host, port, path, delivery) for delivery in deliveries]
    latencies: list[float] = []
    pending = iter(requests)

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for request in pending:
                sent = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                latencies.append(time.perf_counter() - sent)
                _check(status, body)
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


def _encode(host: str, port: int, path: str, delivery: Delivery) -> bytes:
    headers = {"Host": f"{host}:{port}", "Content-Length": str(len(delivery.body)), **delivery.headers}
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + delivery.body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding":
            raise RuntimeError("chunked answers are not expected from this route")
    return status, await reader.readexactly(length)


def run_variant(
    variant: str,
    deliveries: int,
    clients: int,
    processing: bool,
    nodelay: bool,
    kind: str,
    run: str,
    warmup_count: int,
    profile: str | None = None,
) -> Result:
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
        ours, theirs = context.Pipe()
        process = context.Process(
            target=serve,
            args=(variant, str(Path(tmp) / "nexus.db"), processing, nodelay, theirs, profile),
            daemon=True,
        )
        process.start()
        try:
            if not ours.poll(60):
                raise RuntimeError("the server process did not start")
            port = ours.recv()
            url = f"http://127.0.0.1:{port}/nexus/webhooks/{CHANNEL}"
            warmup = make_deliveries(warmup_count, f"{run}-{variant}-warmup")
            batch = make_deliveries(deliveries, f"{run}-{variant}")
            if warmup:
                asyncio.run(fire(url, warmup, min(clients, len(warmup)), kind))
            cpu = time.process_time()
            seconds, latencies = asyncio.run(fire(url, batch, clients, kind))
            cpu = time.process_time() - cpu
            ours.send("stop")
            if not ours.poll(120):
                raise RuntimeError("the server process did not report")
            stored = ours.recv()
        finally:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
    if variant != "ceiling" and stored != deliveries + warmup_count:
        raise RuntimeError(f"{variant}: {stored} rows stored for {deliveries + warmup_count} deliveries")
    return Result(variant, deliveries, seconds, latencies, stored, cpu)


LABELS = {
    "nexus": "nexus (group commit)",
    "baseline": "baseline (one transaction per delivery)",
    "ceiling": "ceiling (same HTTP stack, empty route)",
    "minimal": "minimal (HMAC + group commit, nothing else)",
    "contract": "contract (minimal + Nexus's contract)",
    "drivers": "drivers (contract through the drivers)",
}


# (variant, reference, summary key, sentence): one variant's throughput as a share of another's.
SHARES = (
    ("nexus", "ceiling", "share_of_ceiling", "nexus reaches {share:.0%} of the empty route's throughput"),
    (
        "minimal",
        "ceiling",
        "minimal_share_of_ceiling",
        "the minimal durable receiver reaches {share:.0%} of the empty route's throughput",
    ),
    (
        "contract",
        "minimal",
        "contract_share_of_minimal",
        "the contract reference reaches {share:.0%} of the minimal durable receiver's throughput",
    ),
    (
        "nexus",
        "contract",
        "share_of_contract",
        "nexus reaches {share:.0%} of the contract reference's throughput",
    ),
    (
        "drivers",
        "contract",
        "drivers_share_of_contract",
        "the drivers reference reaches {share:.0%} of the contract reference's throughput",
    ),
    (
        "nexus",
        "drivers",
        "share_of_drivers",
        "nexus reaches {share:.0%} of the drivers reference's throughput",
    ),
    (
        "nexus",
        "minimal",
        "share_of_minimal",
        "nexus reaches {share:.0%} of the minimal durable receiver's throughput",
    ),
)


def report(results: dict[str, list[Result]], args: argparse.Namespace) -> dict[str, Any]:
    median = statistics.median
    print(
        f"webhook ingest: {args.deliveries} signed {TOPIC} deliveries, {args.clients} concurrent "
        f"{args.client} clients, server in its own process, SQLite WAL synchronous=FULL, processing "
        + ("running" if args.processing else "stopped")
        + ("; TCP_NODELAY workaround on" if args.tcp_nodelay else "; serve_app as shipped")
    )
    summary: dict[str, Any] = {
        "deliveries": args.deliveries,
        "clients": args.clients,
        "client": args.client,
        "repeat": args.repeat,
        "processing": args.processing,
        "tcp_nodelay": args.tcp_nodelay,
    }
    for variant, runs in results.items():
        for n, r in enumerate(runs, start=1):
            print(
                f"  {variant:8s} run {n}: {r.per_second:7,.0f} deliveries/s, "
                f"p50 {r.percentile(0.5) * 1000:6.1f} ms, p99 {r.percentile(0.99) * 1000:6.1f} ms, "
                f"load-generator CPU {r.client_cpu / r.seconds:4.0%} of one core"
            )
        summary[variant] = {
            "per_second": median(r.per_second for r in runs),
            "p50_ms": median(r.percentile(0.5) for r in runs) * 1000,
            "p99_ms": median(r.percentile(0.99) for r in runs) * 1000,
        }
    print(f"median of {args.repeat}:")
    width = max(len(LABELS[variant]) for variant in results)
    for variant in results:
        figures = summary[variant]
        print(
            f"  {LABELS[variant]:{width}s} {figures['per_second']:7,.0f} deliveries/s, "
            f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms"
        )
    if "nexus" in summary and "baseline" in summary:
        summary["ratio"] = summary["nexus"]["per_second"] / summary["baseline"]["per_second"]
        print(f"  ratio nexus / baseline throughput = {summary['ratio']:.2f}x")
    for variant, reference, key, sentence in SHARES:
        if variant in summary and reference in summary:
            share = summary[variant]["per_second"] / summary[reference]["per_second"]
            summary[key] = share
            print(f"  {sentence.format(share=share)}")
    if "nexus" in summary:
        met = summary["nexus"]["per_second"] >= 2000
        print(f"  DESIGN target >= 2,000 deliveries/s: {'met' if met else 'not met'}")
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=5000, help="deliveries per variant (M)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients, one connection each (K)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--warmup", type=int, default=64, help="deliveries sent before the clock starts")
    parser.add_argument(
        "--processing", action="store_true", help="let the route process each stored delivery too"
    )
    parser.add_argument(
        "--tcp-nodelay",
        action="store_true",
        help="set TCP_NODELAY on the listener (serve_app's socket lacks it); default: as shipped",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="load generator: pre-encoded HTTP/1.1 on asyncio streams (default), or httpx.AsyncClient",
    )
    parser.add_argument(
        "--variants",
        default="nexus,baseline,ceiling",
        help="comma-separated, from nexus, baseline, ceiling, minimal, contract (default: the first three)",
    )
    parser.add_argument(
        "--profile",
        help="write a cProfile (CPU time) of each variant's server process to PROFILE.<variant>",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(LABELS)
    if unknown or not variants:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown)) or '(none given)'}")
    results: dict[str, list[Result]] = {variant: [] for variant in variants}
    for repetition in range(args.repeat):
        # Alternate the order so that a slow patch of a shared machine does not favour one variant.
        order = variants if repetition % 2 == 0 else variants[::-1]
        for variant in order:
            results[variant].append(
                run_variant(
                    variant,
                    args.deliveries,
                    args.clients,
                    args.processing,
                    args.tcp_nodelay,
                    args.client,
                    str(repetition),
                    args.warmup,
                    None if args.profile is None else f"{args.profile}.{variant}",
                )
            )
    return report(results, args)


if __name__ == "__main__":
    main(sys.argv[1:])
