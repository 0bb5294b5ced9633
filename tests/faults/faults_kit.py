"""Set-up shared by the fault tests: a Shopify sandbox on loopback linked to a Nexus, sales and
counter sales whose ground truth the test keeps, the checks every fault test ends with (converged,
ledger adds up), and servers of the test's own (a PostgreSQL and a Redis it may stop and start).

Importable as `tests.faults.faults_kit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.runtime import running
from nexus.sandbox.shopify import INVENTORY_LEVELS_UPDATE, ORDERS_CREATE, ShopifySandbox, ean13
from nexus.storage.models import ChannelMapping, DeadLetter, Item, StockMovement, WebhookLog
from nexus.web.server import serve_app

CHANNEL = "shop"
TOPICS = (ORDERS_CREATE, INVENTORY_LEVELS_UPDATE)


def unavailable(what: str) -> None:
    """As tests/conftest.py: skipped on a developer machine, FAILED under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{what}; CI requires it", pytrace=False)
    pytest.skip(what)


def fault_seeds() -> list[int]:
    """The seeds each fault test runs with: NEXUS_FAULT_SEEDS ("1-10", "3,5"), by default 1."""
    spec = os.environ.get("NEXUS_FAULT_SEEDS", "1")
    seeds: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shopify_channel(sandbox: ShopifySandbox, base_url: str, **overrides: Any) -> dict[str, Any]:
    """The channel's configuration; the background reconciler is off (a test runs its cycles)."""
    return {
        "driver": "shopify",
        "base_url": base_url,
        "credentials": {"access_token": sandbox.access_token, "webhook_secret": sandbox.webhook_secret},
        "settings": {"location_id": str(sandbox.location_id), "variants_per_product": 1},
        "reconcile": {"enabled": False},
        **overrides,
    }


# --- ground truth ------------------------------------------------------------------------------


@dataclass
class Truth:
    """What the test did: starting stock, counter sales and restocks in Nexus, units sold on the
    channel. Nexus's books must agree with it exactly."""

    initial: dict[str, int]
    rng: random.Random
    local: Counter[str] = field(default_factory=Counter)
    sold: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)  # counter operations per SKU

    @property
    def skus(self) -> list[str]:
        return list(self.initial)

    def expected(self) -> dict[str, int]:
        return {sku: n + self.local[sku] - self.sold[sku] for sku, n in self.initial.items()}

    async def sell(self, sandbox: ShopifySandbox, count: int) -> None:
        """`count` storefront orders of 1-2 units on random SKUs (refused ones sell nothing)."""
        for _ in range(count):
            sku = self.rng.choice(self.skus)
            quantity = self.rng.choice((1, 1, 2))
            if await sandbox.simulate_sale(sku, quantity) is not None:
                self.sold[sku] += quantity

    async def counter(self, nexus: Nexus, count: int) -> None:
        """`count` restocks and counter sales booked in Nexus."""
        for _ in range(count):
            sku = self.rng.choice(self.skus)
            units = self.rng.choice((-1, 3, 5))
            await nexus.product(sku).adjust(units, reason="restock" if units > 0 else "sale", reference="t")
            self.local[sku] += units
            self.changes[sku] += 1


def truth(skus: int, seed: int) -> Truth:
    rng = random.Random(seed)
    return Truth({f"SKU-{i:06d}": rng.randint(11, 40) for i in range(1, skus + 1)}, rng)


async def add_and_import(nexus: Nexus, known: Truth) -> None:
    await nexus.add_items(
        ItemSpec(sku, title=sku, barcode=ean13(i), on_hand=n)
        for i, (sku, n) in enumerate(known.initial.items(), start=1)
    )
    report = await nexus.import_channel(CHANNEL)
    assert report.linked == len(known.initial), report


# --- one process: the sandbox, Nexus and its service in the test's event loop --------------------


@dataclass
class Rig:
    nexus: Nexus
    sandbox: ShopifySandbox
    truth: Truth
    base_url: str  # the store


@contextlib.asynccontextmanager
async def shop_rig(
    make_nexus: Callable[..., Any],
    sandbox: ShopifySandbox,
    *,
    skus: int = 30,
    seed: int = 1,
    channel: dict[str, Any] | None = None,
    worker: dict[str, Any] | None = None,
    service: bool = True,
) -> AsyncIterator[Rig]:
    """The store on loopback, linked and (with `service`) served: push workers, the webhook
    processor and the web app that receives the store's signed webhooks."""
    sandbox.seed_catalog(skus, quantity=10)
    known = truth(skus, seed)
    async with serve_app(sandbox.app) as store:
        nexus: Nexus = await make_nexus(
            channels={CHANNEL: shopify_channel(sandbox, store.base_url, **(channel or {}))},
            worker={"poll_interval": 0.05, "backoff_base": 0.02, "backoff_max": 0.5, **(worker or {})},
        )
        await add_and_import(nexus, known)
        worker_ = nexus.push_worker(CHANNEL)  # the catalog's first push, before anyone listens
        while await worker_.run_once() is not None:
            pass
        rig = Rig(nexus, sandbox, known, store.base_url)
        try:
            if not service:
                yield rig
                return
            async with running(nexus, port=0) as served:
                address = f"{served.base_url}{nexus.settings.webhook_base_path}/{CHANNEL}"
                for topic in TOPICS:
                    sandbox.subscribe(topic, address)
                yield rig
        finally:
            await sandbox.aclose()


# --- the end of every fault test -----------------------------------------------------------------


async def listings(nexus: Nexus) -> list[ChannelMapping]:
    async with nexus.db.read() as session:
        return list((await session.execute(select(ChannelMapping))).scalars())


async def unsettled(nexus: Nexus, sandbox: ShopifySandbox) -> list[str]:
    """Why the deployment is not converged yet (empty: converged)."""
    reasons = []
    levels = sandbox.levels()
    for row in await listings(nexus):
        if row.dirty_since is not None or row.lease_owner is not None:
            reasons.append(f"{row.sku} pending (attempts {row.attempts}, {row.last_error})")
        elif levels.get(row.sku) != row.desired_qty:
            shows, wanted, believed = levels.get(row.sku), row.desired_qty, row.remote_qty
            reasons.append(f"{row.sku}: channel {shows}, desired {wanted}, believed {believed}")
    async with nexus.db.read() as session:
        received = await session.scalar(
            select(func.count()).select_from(WebhookLog).where(WebhookLog.status == "received")
        )
    if received:
        reasons.append(f"{received} webhooks not processed yet")
    return reasons


async def converge(
    nexus: Nexus, sandbox: ShopifySandbox, *, timeout: float = 30.0, levels: bool = True
) -> None:
    """Until webhooks are delivered and processed, nothing is pending and (with `levels`) the
    store shows what Nexus wants, three looks in a row."""
    deadline = time.monotonic() + timeout
    quiet = 0
    reasons: list[str] = []
    while quiet < 2:
        if time.monotonic() > deadline:
            raise AssertionError(f"not converged after {timeout} s: {reasons[:10]}")
        with contextlib.suppress(TimeoutError):  # deliveries still being retried: look again
            await sandbox.drain_webhooks(timeout=1)
        reasons = [r for r in await unsettled(nexus, sandbox) if levels or ": channel " not in r]
        quiet = quiet + 1 if not reasons else 0
        await asyncio.sleep(0.1)


async def assert_converged_and_ledger_adds_up(nexus: Nexus, sandbox: ShopifySandbox, known: Truth) -> None:
    """Every channel shows what Nexus wants, every listing is clean, nothing is dead-lettered;
    every SKU's on_hand is the sum of its ledger movements (starting stock included) and equals
    what the test did: each sale on the channel counted once, nothing booked that did not happen."""
    rows = await listings(nexus)
    levels = sandbox.levels()
    assert {r.sku: r.desired_qty for r in rows} == {sku: levels[sku] for sku in known.skus}
    assert [r.sku for r in rows if r.verify_pending or r.dirty_since or r.lease_owner or r.failed_at] == []
    async with nexus.db.read() as session:
        on_hand: dict[str, int] = {sku: n for sku, n in await session.execute(select(Item.sku, Item.on_hand))}
        movements = list((await session.execute(select(StockMovement).order_by(StockMovement.id))).scalars())
        dead = await session.scalar(select(func.count()).select_from(DeadLetter))
    ledger: Counter[str] = Counter()
    for movement in movements:
        ledger[movement.sku] += movement.delta
    assert dead == 0
    assert {sku: ledger[sku] for sku in known.skus} == on_hand, "on_hand != sum of movements"
    wrong = {sku: (on_hand[sku], want) for sku, want in known.expected().items() if on_hand[sku] != want}
    if wrong:
        first = sorted(wrong)[0]
        history = [(m.reason, m.delta, m.channel, m.reference) for m in movements if m.sku == first]
        raise AssertionError(
            f"SKU: (Nexus, truth) {wrong}; {first} sold {known.sold[first]} on the store, "
            f"{known.local[first]} in Nexus; its movements: {history}"
        )


# --- servers of the test's own --------------------------------------------------------------------


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster on a port of its own, that a test may stop and start. Never the
    machine's server on 5432."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        command = [*_as_postgres(), "/usr/local/bin/pg_ctl", "-D", str(self.directory / "data"), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.directory / "log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "stop")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    for tool in ("/usr/local/bin/initdb", "/usr/local/bin/pg_ctl"):
        if not os.access(tool, os.X_OK):
            unavailable(f"{tool} is missing")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        unavailable("runuser is missing (postgres refuses to run as root)")
    directory = Path(tempfile.mkdtemp(prefix="nexus-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = PrivatePostgres(directory, free_port())
    initdb = [*_as_postgres(), "/usr/local/bin/initdb", "-D", str(directory / "data"), "-A", "trust"]
    subprocess.run([*initdb, "-U", "postgres", "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server on a port of its own, without persistence. Never the machine's 6379."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        assert executable is not None
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            if time.monotonic() > deadline:
                raise AssertionError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is missing")
    directory = Path(tempfile.mkdtemp(prefix="nexus-faults-redis-"))
    server = PrivateRedis(directory, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
