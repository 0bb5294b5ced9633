"""The `Nexus` instance: configuration, database, drivers, buckets and events, with nothing global,
so two engines can run side by side in one process (tests do)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from nexus.access.tokens import TokenStore
from nexus.api import BatchHandle, CatalogHandle, ProductHandle
from nexus.config import ChannelConfig, NexusSettings, load_settings, resolve_credentials, validate_channel
from nexus.domain.allocation import Allocator
from nexus.domain.belief import Semantics
from nexus.domain.catalog import ImportReport, ItemSpec, add_items, link_variants
from nexus.domain.stock import StockChange, StockChangeResult, apply_stock_change
from nexus.drivers.contract import ChannelContext, InventoryDriver
from nexus.drivers.pagination import iterate_products
from nexus.drivers.registry import DriverFactory, DriverRegistry, Normalizer
from nexus.errors import ConfigError, NexusError, UnknownChannelError
from nexus.events import EventBus
from nexus.observability.logs import safe_structlog_defaults
from nexus.observability.metrics import Metrics
from nexus.ratelimit.bucket import BoundLimiter, InProcessTokenBucket, TokenBucket
from nexus.ratelimit.config import RateLimitConfig
from nexus.status import ChannelStatus, channel_status
from nexus.storage.database import Database, describe
from nexus.sync.batches import BatchSettler
from nexus.sync.channel_state import ChannelStates
from nexus.sync.outcomes import OutcomeWriter
from nexus.sync.queue import ListingQueue
from nexus.sync.readings import ReadingWriter
from nexus.sync.reconciler import Reconciler
from nexus.sync.throttle import ChannelThrottleMonitor
from nexus.sync.worker import PushWorker

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from nexus.bridge import RedisBridge

log = structlog.get_logger("nexus")


@dataclass
class ChannelRuntime:
    """A configured channel with its driver and its bucket, built on first use."""

    name: str
    config: ChannelConfig
    driver: InventoryDriver
    limiter: BoundLimiter
    monitor: ChannelThrottleMonitor
    metrics: Metrics  # the instance's, for the worker and reconciler to count what they do

    @property
    def batch_size(self) -> int:
        maximum = self.driver.capabilities.max_batch_size
        return min(self.config.batch_size or maximum, maximum)

    @cached_property
    def semantics(self) -> Semantics:
        """What the channel's evidence can prove, for the rules of nexus.domain.belief."""
        capabilities = self.driver.capabilities
        return Semantics(
            compare_and_set=capabilities.compare_and_set,
            orders=capabilities.sales_from_orders,
            stamp_precision=timedelta(seconds=capabilities.stamp_precision),
            echo_wait=timedelta(seconds=self.config.echo_wait),
            levels=capabilities.levels_book_sales,
        )


class Nexus:
    def __init__(
        self,
        settings: NexusSettings | None = None,
        *,
        source: str = "code",
        bucket: TokenBucket | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings or NexusSettings()
        self.source = source
        self.db = Database(self.settings.database_url, pool_size=self.settings.database_pool_size)
        self.queue = ListingQueue(self.db, lease_seconds=self.settings.worker.lease_seconds)
        self.events = EventBus()
        # Catalog batches' progress, settled in the background for every round of this process.
        self.batch_settler = BatchSettler(self.db, self.events.dispatch)
        self.drivers = DriverRegistry()
        self.metrics = Metrics(self)  # its own registry: never prometheus-client's global one
        self.channel_states = ChannelStates(self)  # connected, throttled, paused, disconnected
        self.tokens = TokenStore(self.db)  # who may use the API and the dashboard
        safe_structlog_defaults()  # no traceback with locals, even where nobody configured logs
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.redis: Redis | None = None
        self._bridge: RedisBridge | None = None
        if self.settings.redis_url is not None:
            self._connect_redis(self.settings.redis_url)
        self.bucket: TokenBucket = bucket or self._default_bucket()
        self.allocator = Allocator(
            {name: channel.allocation for name, channel in self.settings.channels.items()},
            self.settings.worker.low_stock_threshold,
        )
        self._http = http
        self._owns_http = http is None
        self._channels: dict[str, ChannelRuntime] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []

    # -- construction -----------------------------------------------------------------------

    def _connect_redis(self, url: str) -> None:
        from redis.asyncio import Redis

        from nexus.bridge import RedisBridge

        self.redis = Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
        self._bridge = RedisBridge(
            self.redis,
            self.settings.redis_namespace,
            self.instance_id,
            on_wake=self._wake_local,
            on_event=self.events.dispatch_local,
        )
        self.events.relay = self._bridge.publish_event

    def _default_bucket(self) -> TokenBucket:
        """Redis whenever a Redis URL is configured: every process then shares one bucket per key."""
        if self.redis is None:
            return InProcessTokenBucket()
        from nexus.ratelimit.redis_bucket import RedisTokenBucket

        return RedisTokenBucket(self.redis, self.settings.redis_namespace)

    async def connect(self) -> None:
        """Start listening for other processes' wake-ups and events (a no-op without Redis)."""
        if self._bridge is not None:
            await self._bridge.start()

    @classmethod
    def from_config(cls, path: str | Path | None = None, **overrides: Any) -> Nexus:
        """Build from `nexus.toml` (or `path`) and the `NEXUS_*` environment."""
        settings, source = load_settings(path, overrides=overrides or None)
        return cls(settings, source=source)

    def extend(self, name: str, factory: DriverFactory, *, normalizer: Normalizer | None = None) -> None:
        """Register a driver under `name` for this instance (`driver = "<name>"` in a channel),
        with the function normalising its product payloads if it has one."""
        self.drivers.register(name, factory, normalizer=normalizer)

    async def migrate(self) -> None:
        from nexus.storage.migrate import upgrade

        await upgrade(self.db)

    async def __aenter__(self) -> Nexus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Await `closer` first thing in `aclose`: work that uses the database (the web app's
        webhook processing) finishes before the database goes, however the app was run. A host
        that mounts the app in its own never runs the app's lifespan (Starlette runs only the
        outer app's), so the app cannot rely on its lifespan alone. Closers run together, and one
        that fails is logged without keeping the rest of `aclose` from releasing everything."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        closers, self._closers = self._closers, []
        try:
            outcomes = await asyncio.gather(*(closer() for closer in closers), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    log.error("a close hook failed", error=describe(outcome))
        finally:
            await self._release()

    async def _release(self) -> None:
        await self.batch_settler.drain()
        if self._bridge is not None:
            await self._bridge.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None
        await self.db.dispose()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
        return self._http

    # -- channels ---------------------------------------------------------------------------

    def channel_names(self, *, enabled_only: bool = True) -> list[str]:
        return [name for name, cfg in self.settings.channels.items() if cfg.enabled or not enabled_only]

    def check_channels(self) -> None:
        """Build every enabled channel now, so that a process refuses to start (rather than fail
        on every webhook and poll) when one cannot be built. Errors name the key and the file.

        First the channel's credentials are resolved and its keys validated against the settings
        model its driver factory declares (`factory.settings_model`, see `nexus.config`), so the
        error names `channels.<name>.settings.<key>` in the configuration file; then the driver
        is built, for what only it can check."""
        for name in self.channel_names():
            config = self.settings.channels[name]
            try:
                validate_channel(name, config, self.drivers.factory(config.driver), self.source)
                self.channel(name)
            except ConfigError as exc:
                key = (
                    exc.key
                    if exc.key is None or exc.key.startswith("channels.")
                    else f"channels.{name}.{exc.key}"
                )
                raise ConfigError(exc.reason, key=key, source=self.source) from None
            except NexusError:
                raise
            except Exception as exc:
                raise ConfigError(
                    f"channel {name!r} cannot be built: {type(exc).__name__}: {exc}",
                    key=f"channels.{name}",
                    source=self.source,
                ) from None

    def channel(self, name: str) -> ChannelRuntime:
        runtime = self._channels.get(name)
        if runtime is not None:
            return runtime
        config = self.settings.channels.get(name)
        if config is None:
            raise UnknownChannelError(f"no channel named {name!r} is configured")
        factory = self.drivers.factory(config.driver)
        # Buckets are keyed by account, not channel: two channels on one API key share a budget.
        account = config.rate_limit.account or name
        monitor = ChannelThrottleMonitor(self, name, account)
        limiters: dict[str, BoundLimiter] = {}

        def limiter_for(operation: str, limit: RateLimitConfig) -> BoundLimiter:
            if operation not in limiters:
                limiters[operation] = BoundLimiter(
                    self.bucket,
                    f"{account}:{operation}",
                    limit,
                    max_wait=self.settings.worker.max_rate_wait,
                    monitor=monitor,
                    headroom_seconds=config.rate_limit.headroom_seconds,
                )
            return limiters[operation]

        # The limiter needs the driver's defaults and the driver needs the limiter: bind late.
        limiter = limiter_for("default", RateLimitConfig(1, 1))
        context = ChannelContext(
            name=name,
            driver=config.driver,
            base_url=config.base_url,
            credentials=resolve_credentials(name, config, self.source),
            settings=config.settings,
            http=self.http,
            rate=limiter,
            limiter_for=limiter_for,
        )
        driver = factory(context)
        default = driver.rate_limit_config()
        limiter.limit = RateLimitConfig(
            capacity=config.rate_limit.capacity or default.capacity,
            refill_per_second=config.rate_limit.refill_per_second or default.refill_per_second,
            cost_per_push=default.cost_per_push,
        )
        runtime = self._channels[name] = ChannelRuntime(name, config, driver, limiter, monitor, self.metrics)
        return runtime

    def push_worker(
        self, channel: str, *, owner: str | None = None, rng: random.Random | None = None
    ) -> PushWorker:
        """A push worker for `channel`, holding leases as `owner` (unique per worker by default)."""
        runtime = self.channel(channel)
        owner = owner or f"{self.instance_id}:{channel}:{uuid.uuid4().hex[:6]}"
        outcomes = OutcomeWriter(
            self.db,
            self.allocator,
            self.settings.worker,
            channel=channel,
            driver=runtime.config.driver,
            semantics=runtime.semantics,
            owner=owner,
            rng=rng or random.Random(),
        )
        return PushWorker(
            runtime,
            queue=self.queue,
            outcomes=outcomes,
            events=self.events,
            signals=self,
            config=self.settings.worker,
            settler=self.batch_settler,
            states=self.channel_states,
        )

    def reconciler(self, channel: str, *, owner: str | None = None) -> Reconciler:
        """The read-back loop of `channel`, holding leases as `owner`."""
        runtime = self.channel(channel)
        config = runtime.config.reconcile
        writer = ReadingWriter(
            self.db,
            self.allocator,
            channel=channel,
            semantics=runtime.semantics,
            policy=config.policy,
            order_grace=timedelta(seconds=config.order_grace),
            owner=owner or f"{self.instance_id}:{channel}:reconcile:{uuid.uuid4().hex[:6]}",
        )
        return Reconciler(
            runtime, queue=self.queue, writer=writer, signals=self, config=config, states=self.channel_states
        )

    # -- wake-ups ---------------------------------------------------------------------------

    def wakeup(self, channel: str) -> asyncio.Event:
        return self._wakeups.setdefault(channel, asyncio.Event())

    def notify(self, channels: Iterable[str] | None = None) -> None:
        """Wake the workers of `channels` (default: all), here and, with Redis, in every process."""
        names = list(channels) if channels is not None else self.channel_names()
        self._wake_local(names)
        if self._bridge is not None:
            self._bridge.wake(names)

    def _wake_local(self, names: Iterable[str]) -> None:
        for name in names:
            self.wakeup(name).set()

    # -- the write path ---------------------------------------------------------------------

    async def apply(self, change: StockChange) -> StockChangeResult:
        """Apply one stock change in its own transaction, then fire events and wake workers."""
        # Webhook processing locks a listing before its item, this path the item first: when
        # PostgreSQL breaks such a deadlock by aborting this transaction, nothing of it was
        # written, and `Database.run` runs it again.
        result = await self.db.run(lambda session: apply_stock_change(session, change, self.allocator))
        await self.after_changes([result])
        return result

    async def after_changes(self, results: Sequence[StockChangeResult]) -> None:
        if any(result.dirty_listing_ids for result in results):
            self.notify()
        for result in results:
            for event in result.events:
                await self.events.dispatch(event)

    # -- the fluent API ---------------------------------------------------------------------

    def product(self, sku: str) -> ProductHandle:
        return ProductHandle(self, sku)

    def catalog(self, products: Iterable[Any] | None = None) -> CatalogHandle:
        return CatalogHandle(self, products)

    def batch(self, batch_id: str) -> BatchHandle:
        return BatchHandle(self, batch_id)

    # -- catalog ----------------------------------------------------------------------------

    async def add_items(self, items: Iterable[ItemSpec], *, chunk: int = 1000) -> int:
        """Create SKUs (existing ones are left alone); starting stock is booked in the ledger."""
        created = 0
        batch: list[ItemSpec] = []
        for spec in items:
            batch.append(spec)
            if len(batch) >= chunk:
                created += await self._add_items(batch)
                batch = []
        if batch:
            created += await self._add_items(batch)
        return created

    async def _add_items(self, batch: Sequence[ItemSpec]) -> int:
        async with self.db.transaction() as session:
            return await add_items(session, batch)

    async def import_channel(
        self, channel: str, *, on_page: Callable[[ImportReport], None] | None = None
    ) -> ImportReport:
        """Link the channel's products to local SKUs (by SKU, then barcode), page by page."""
        runtime = self.channel(channel)
        report = ImportReport(channel)
        async for products in iterate_products(runtime.driver):
            async with self.db.transaction() as session:
                await link_variants(session, channel, products, self.allocator, report)
            if on_page is not None:
                on_page(report)
        self.notify([channel])
        return report

    async def status(self) -> list[ChannelStatus]:
        return await channel_status(self)
