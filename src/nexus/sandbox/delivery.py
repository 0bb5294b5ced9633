"""The webhook delivery queue every sandbox sends through: at-least-once delivery over HTTP, a
channel's retry policy given as data, and injectable faults.

A channel subclasses `DeliveryQueue[T]` for its message type `T` and implements `render`: the
request to send for a message, built when each attempt runs (so a channel can stamp a fresh
timestamp and signature per attempt, or render a payload only when the background job runs, as
WooCommerce does). `render` may answer None: nothing to send any more, nothing is counted.
`settled` sees the outcome of every attempt (WooCommerce counts failures per webhook there).

What happens to a message, in order:

1. `put`: the drop fault may lose it (`webhooks_dropped`); otherwise it is pending.
2. Dispatch: with `concurrency` workers it waits in a FIFO queue (one worker keeps messages in
   emission order); with `concurrency=None` every message runs in its own task at once. The
   reorder fault sends each message after a random delay of up to `faults.reorder_window`
   seconds, concurrently, so messages can arrive out of order.
3. An attempt: `render`, POST, success when the status is in the request's `success` statuses
   (`webhooks_sent`); the duplicate fault then sends it once more (`webhooks_duplicated`).
4. A failed attempt (another status, or no answer in `policy.timeout` seconds) counts
   `webhook_attempts_failed`; the policy names the wait before the next attempt (divided by
   `time_scale`), or none left: the message is given up (`webhooks_failed`). A retry waits in a
   timer and then rejoins the queue (or, without workers or under reorder, is attempted at once).

Delivery starts lazily in whatever event loop first puts or drains (the tests use one loop per
test); a message put outside a loop waits in a backlog for the first call made inside one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import Collection, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from nexus.sandbox.stats import SandboxStats

T = TypeVar("T")
SUCCESS = range(200, 300)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a channel retries a failed delivery: after the n-th failed attempt it waits
    `delays[n - 1]` seconds (before `time_scale`) and tries again; after `len(delays)` failed
    retries it gives up. `timeout`: seconds an attempt waits for an answer."""

    delays: tuple[float, ...] = ()
    timeout: float = 15.0

    @classmethod
    def exponential(cls, first: float, retries: int, *, timeout: float = 15.0) -> RetryPolicy:
        """`retries` retries, the first after `first` seconds, each wait twice the one before."""
        return cls(tuple(first * 2**n for n in range(retries)), timeout)

    @classmethod
    def fixed(cls, delay: float, retries: int, *, timeout: float = 15.0) -> RetryPolicy:
        """`retries` retries, `delay` seconds apart."""
        return cls((delay,) * retries, timeout)

    @classmethod
    def schedule(cls, delays: Sequence[float], *, timeout: float = 15.0) -> RetryPolicy:
        return cls(tuple(delays), timeout)

    def delay(self, failures: int) -> float | None:
        """Seconds to wait after the `failures`-th failed attempt; None: give up."""
        return self.delays[failures - 1] if 1 <= failures <= len(self.delays) else None


@dataclass(frozen=True, slots=True)
class Faults:
    """Injected delivery faults. Rates are probabilities drawn per message from the queue's rng."""

    drop_rate: float = 0.0  # a message is lost before its first attempt
    duplicate_rate: float = 0.0  # a delivered message is sent a second time
    reorder: bool = False  # messages are sent concurrently after a random delay
    reorder_window: float = 0.05  # the longest of those delays, in seconds

    def __post_init__(self) -> None:
        for name, rate in (("duplicate_rate", self.duplicate_rate), ("drop_rate", self.drop_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One HTTP POST of a message, and the statuses that count as delivered."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    success: Collection[int] = SUCCESS


@dataclass(slots=True)
class _Entry(Generic[T]):
    item: T
    counted: bool
    failures: int = 0


class DeliveryQueue(Generic[T]):
    def __init__(
        self,
        *,
        stats: SandboxStats,
        policy: RetryPolicy,
        faults: Faults | None = None,
        rng: random.Random | None = None,
        time_scale: float = 1.0,
        concurrency: int | None = 1,
    ) -> None:
        self._stats = stats
        self.policy = policy
        self.faults = faults or Faults()
        self._rng = rng or random.Random()
        self._time_scale = time_scale
        self._concurrency = None if concurrency is None else max(1, concurrency)
        self._backlog: list[_Entry[T]] = []
        self._queue: asyncio.Queue[_Entry[T]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None

    # --- what a channel implements ---------------------------------------------------------

    def render(self, item: T) -> Outgoing | None:
        """The request for one attempt at `item`; None: nothing to send (nothing is counted)."""
        raise NotImplementedError

    def settled(self, item: T, delivered: bool) -> None:
        """Called after every attempt that sent something."""

    # --- the queue ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def losing(self) -> Iterator[None]:
        """Every message queued inside the block is lost, as if the channel dropped it."""
        kept = self.faults
        self.faults = dataclasses.replace(kept, drop_rate=1.0)
        try:
            yield
        finally:
            self.faults = kept

    def put(self, item: T, *, counted: bool = True) -> bool:
        """Queue `item`; False when the drop fault lost it. `counted=False`: a side message (a
        creation ping) that no fault touches and no webhook counter counts."""
        if counted and self.faults.drop_rate and self._rng.random() < self.faults.drop_rate:
            self._stats.webhooks_dropped += 1
            return False
        self._backlog.append(_Entry(item, counted))
        self._ensure_started()
        return True

    @property
    def pending(self) -> int:
        """Messages not yet delivered or given up."""
        return self._pending + len(self._backlog)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued message was delivered or given up; TimeoutError otherwise."""
        self._ensure_started()
        if self._idle is None:
            return
        async with asyncio.timeout(timeout):
            while self._pending:
                await self._idle.wait()

    async def aclose(self) -> None:
        """Stop delivering: whatever was still queued is abandoned (a later drain does not wait)."""
        tasks = [*self._workers, *self._side_tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._side_tasks.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._queue = None
        self._loop = None
        self._pending = 0
        self._backlog.clear()
        if self._idle is not None:
            self._idle.set()

    # --- internals -------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the backlog is flushed by the first call made inside one
        if self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._idle = asyncio.Event()
            self._idle.set()
            self._workers = [loop.create_task(self._worker()) for _ in range(self._concurrency or 0)]
        assert self._idle is not None
        while self._backlog:
            entry = self._backlog.pop(0)
            self._pending += 1
            self._idle.clear()
            if self.faults.reorder and entry.counted:
                self._dispatch(entry, self._rng.uniform(0.0, self.faults.reorder_window))
            else:
                self._dispatch(entry, 0.0)

    def _dispatch(self, entry: _Entry[T], delay: float) -> None:
        """Attempt `entry` after `delay` seconds: through the workers, or in a task of its own."""
        direct = self._concurrency is None or (self.faults.reorder and entry.counted)
        if not direct and delay <= 0:
            assert self._queue is not None
            self._queue.put_nowait(entry)
        else:
            self._spawn(self._later(entry, delay, direct))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _later(self, entry: _Entry[T], delay: float, direct: bool) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        if direct:
            await self._attempt(entry)
        elif self._queue is not None:
            self._queue.put_nowait(entry)

    async def _worker(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            entry = await queue.get()
            try:
                await self._attempt(entry)
            finally:
                queue.task_done()

    async def _attempt(self, entry: _Entry[T]) -> None:
        delivered = await self._post(entry.item)
        if delivered is None:
            self._finish()
            return
        self.settled(entry.item, delivered)
        stats = self._stats
        if delivered:
            if entry.counted:
                stats.webhooks_sent += 1
                if self.faults.duplicate_rate and self._rng.random() < self.faults.duplicate_rate:
                    stats.webhooks_duplicated += 1
                    await self._post(entry.item)
            self._finish()
            return
        if entry.counted:
            stats.webhook_attempts_failed += 1
        entry.failures += 1
        delay = self.policy.delay(entry.failures)
        if delay is None:
            if entry.counted:
                stats.webhooks_failed += 1
            self._finish()
            return
        self._dispatch(entry, delay / self._time_scale)

    async def _post(self, item: T) -> bool | None:
        outgoing = self.render(item)
        if outgoing is None:
            return None
        if self._client is None:
            # trust_env=False: a proxy from the environment must not swallow loopback deliveries.
            self._client = httpx.AsyncClient(
                timeout=self.policy.timeout, trust_env=False, follow_redirects=False
            )
        try:
            response = await self._client.post(outgoing.url, content=outgoing.body, headers=outgoing.headers)
        except httpx.HTTPError:
            return False
        return response.status_code in outgoing.success

    def _finish(self) -> None:
        self._pending -= 1
        if self._pending == 0 and self._idle is not None:
            self._idle.set()


@dataclass
class Subscriptions:
    """Topic -> the addresses subscribed to it, each once, in subscription order."""

    by_topic: dict[str, list[str]] = field(default_factory=dict)

    def add(self, topic: str, address: str) -> None:
        addresses = self.by_topic.setdefault(topic, [])
        if address not in addresses:
            addresses.append(address)

    def addresses(self, topic: str) -> list[str]:
        return list(self.by_topic.get(topic, ()))
