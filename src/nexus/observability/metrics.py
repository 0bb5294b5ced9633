"""`/nexus/metrics`: what a Nexus instance did and holds, in Prometheus's text format.

Every metric lives in a `CollectorRegistry` owned by the `Metrics` object of one `Nexus`
instance (never prometheus-client's global `REGISTRY`), so two engines in one process count
apart. Counters and histograms are fed as things happen (pushes, 429s, webhooks, reconciliation
findings); gauges of what the database holds (queue depth, oldest dirty listing, dead letters,
pending webhooks) and bucket levels are read at scrape time by `collect`, then rendered by a
custom collector.

    metrics = nexus.metrics
    body = await metrics.render()        # what GET /nexus/metrics answers
    metrics.channel_state("shop", "disconnected")

Labels are bounded: `channel` is a configured channel's name (a webhook for an unknown one counts
under "unknown"), `topic` is what a verified delivery declared.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from nexus.domain.vocabulary import DeadLetterStatus, WebhookStatus
from nexus.observability.logs import Once
from nexus.storage.models import DeadLetter, WebhookLog, utcnow

if TYPE_CHECKING:
    from nexus.engine import Nexus
    from nexus.sync.outcomes import PushRound
    from nexus.sync.readings import Difference

log = structlog.get_logger("nexus.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNKNOWN_CHANNEL = "unknown"
# What `channel_state` accepts (issue 11: channel health as state).
CHANNEL_STATES = ("connected", "throttled", "paused", "disconnected")

PUSH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0)


class Metrics:
    """The metrics of one Nexus instance. Built by `Nexus.__init__` as `nexus.metrics`."""

    def __init__(self, nexus: Nexus) -> None:
        self.nexus = nexus
        self.registry = CollectorRegistry()
        registry = self.registry
        self.pushes = Counter(
            "nexus_pushes",
            "Listings pushed, by what the channel answered (ok, stale: compare-and-set refused, vetoed)",
            ["channel", "result"],
            registry=registry,
        )
        self.push_failures = Counter(
            "nexus_push_failures",
            "Listing pushes that failed: retry (rescheduled) or dead_letter (gave up)",
            ["channel", "kind"],
            registry=registry,
        )
        self.push_latency = Histogram(
            "nexus_push_duration_seconds",
            "Duration of one push request round to the channel (a batch of listings)",
            ["channel"],
            buckets=PUSH_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            "nexus_rate_limited",
            "Requests the channel answered 429 (too many requests)",
            ["channel"],
            registry=registry,
        )
        self._received = _ReceivedTally()
        registry.register(self._received)
        self.webhooks_rejected = Counter(
            "nexus_webhooks_rejected",
            "Webhook deliveries refused at the door, by HTTP status (401 signature, 400 body, ...)",
            ["channel", "topic", "status"],
            registry=registry,
        )
        self.webhooks_processed = Counter(
            "nexus_webhooks_processed",
            "Stored webhook deliveries finished: processed, or failed (will not be tried again)",
            ["channel", "topic", "result"],
            registry=registry,
        )
        self.webhooks_unmatched = Counter(
            "nexus_webhooks_unmatched",
            "Listings named by processed webhooks that match no linked listing",
            ["channel", "topic"],
            registry=registry,
        )
        self.webhook_lag = Histogram(
            "nexus_webhook_processing_lag_seconds",
            "From a webhook delivery's arrival to the end of its processing",
            ["channel"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.reconcile_differences = Counter(
            "nexus_reconcile_differences",
            "Listings whose level read back differed from what Nexus believed, by finding",
            ["channel", "finding"],
            registry=registry,
        )
        self.database_errors = Counter(
            "nexus_database_errors",
            "Database errors a background loop survived (unreachable, connection lost) and retried",
            ["component"],
            registry=registry,
        )
        self.channel_states = Gauge(
            "nexus_channel_state",
            "1 for the channel's current state (connected, throttled, paused, disconnected), 0 otherwise",
            ["channel", "state"],
            registry=registry,
        )
        self._scraped = _ScrapeCollector()
        registry.register(self._scraped)
        # A webhook naming a listing Nexus does not know is warned of once an hour per listing.
        self.unmatched_warnings = Once(3600)

    # -- fed as things happen ---------------------------------------------------------------

    def push_round(self, outcome: PushRound, *, sent: bool) -> None:
        """A push round finished (`PushWorker.run_once`); `sent`: a request went to the channel."""
        channel = outcome.channel
        for result, count in (("ok", outcome.ok), ("stale", outcome.stale), ("vetoed", outcome.vetoed)):
            if count:
                self.pushes.labels(channel, result).inc(count)
        for kind, count in (("retry", outcome.retried), ("dead_letter", outcome.failed)):
            if count:
                self.push_failures.labels(channel, kind).inc(count)
        if sent:
            self.push_latency.labels(channel).observe(outcome.duration)

    def database_error(self, component: str) -> None:
        """A background loop (`push_worker`, `webhooks`) met an unreachable database and will
        try again after a backoff."""
        self.database_errors.labels(component).inc()

    def throttled(self, channel: str) -> None:
        """The channel answered 429 (`ChannelThrottleMonitor.throttled`)."""
        self.rate_limited.labels(channel).inc()

    def webhook_received(self, channel: str, topic: str | None, *, duplicate: bool = False) -> None:
        key = (channel, topic or "")
        counts = self._received.counts.get(key) or self._received.start(key)
        counts[0] += 1
        if duplicate:
            counts[1] += 1

    def webhook_rejected(self, channel: str, topic: str | None, status: int) -> None:
        label = channel if channel in self.nexus.settings.channels else UNKNOWN_CHANNEL
        self.webhooks_rejected.labels(label, topic or "", str(status)).inc()

    def webhook_finished(
        self,
        channel: str,
        topic: str | None,
        result: str,
        received_at: datetime | None,
        *,
        unmatched: int = 0,
    ) -> None:
        """A stored delivery reached a final state: `result` is "processed" or "failed"."""
        self.webhooks_processed.labels(channel, topic or "", result).inc()
        if unmatched:
            self.webhooks_unmatched.labels(channel, topic or "").inc(unmatched)
        if received_at is not None:
            self.webhook_lag.labels(channel).observe(max(0.0, (utcnow() - received_at).total_seconds()))

    def reconciled(self, channel: str, differences: Iterable[Difference]) -> None:
        """A reconciliation round's differences (`Reconciler.run_once`)."""
        for difference in differences:
            self.reconcile_differences.labels(channel, difference.finding.value).inc()

    def channel_state(self, channel: str, state: str) -> None:
        """Set `channel`'s state: `nexus_channel_state{state=...}` 1 for it, 0 for the others."""
        if state not in CHANNEL_STATES:
            raise ValueError(f"state must be one of {', '.join(CHANNEL_STATES)}; got {state!r}")
        for known in CHANNEL_STATES:
            self.channel_states.labels(channel, known).set(1 if known == state else 0)

    # -- read at scrape time ----------------------------------------------------------------

    async def collect(self) -> None:
        """Read what the database and the buckets hold now, for the next `generate`. A part that
        cannot be read is left out (and logged), the rest is still reported."""
        families: list[Metric] = []
        started = time.perf_counter()
        for part in (self._queue, self._dead_letters, self._pending_webhooks, self._buckets):
            try:
                families.extend(await part())
            except Exception as exc:
                log.warning(
                    "a metric could not be read", part=part.__name__.strip("_"), error=type(exc).__name__
                )
        scrape = GaugeMetricFamily(
            "nexus_metrics_collect_seconds", "Time spent reading the database and buckets for this scrape"
        )
        scrape.add_metric([], time.perf_counter() - started)
        families.append(scrape)
        self._scraped.families = families

    def generate(self) -> bytes:
        return generate_latest(self.registry)

    async def render(self) -> bytes:
        """What `GET /nexus/metrics` answers (Prometheus text format, `CONTENT_TYPE`)."""
        await self.collect()
        return self.generate()

    def _channels(self) -> list[str]:
        return self.nexus.channel_names()

    async def _queue(self) -> list[Metric]:
        counts = await self.nexus.queue.counts()
        backlog = await self.nexus.queue.backlog()
        now = utcnow()
        depth = GaugeMetricFamily(
            "nexus_queue_depth", "Listings waiting for a push (dirty, not dead-lettered)", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "nexus_queue_oldest_dirty_age_seconds",
            "Age of the oldest listing waiting for a push (0 when none waits)",
            labels=["channel"],
        )
        listings = GaugeMetricFamily("nexus_listings", "Linked listings", labels=["channel"])
        in_flight = GaugeMetricFamily(
            "nexus_listings_in_flight", "Listings leased by a push or a read right now", labels=["channel"]
        )
        failed = GaugeMetricFamily(
            "nexus_listings_dead_lettered",
            "Listings that stopped after their last attempt",
            labels=["channel"],
        )
        for channel in sorted(set(self._channels()) | set(counts) | set(backlog)):
            waiting, since = backlog.get(channel, (0, None))
            depth.add_metric([channel], waiting)
            oldest.add_metric([channel], max(0.0, (now - since).total_seconds()) if since else 0.0)
            row = counts.get(channel)
            listings.add_metric([channel], row.listings if row else 0)
            in_flight.add_metric([channel], row.in_flight if row else 0)
            failed.add_metric([channel], row.failed if row else 0)
        return [depth, oldest, listings, in_flight, failed]

    async def _dead_letters(self) -> list[Metric]:
        async with self.nexus.db.read() as session:
            rows = (
                await session.execute(
                    select(DeadLetter.channel, DeadLetter.status, func.count()).group_by(
                        DeadLetter.channel, DeadLetter.status
                    )
                )
            ).all()
        family = GaugeMetricFamily(
            "nexus_dead_letters", "Dead letters by channel and status", labels=["channel", "status"]
        )
        counts: dict[tuple[str, str], int] = {(str(c), str(s)): int(n) for c, s, n in rows}
        for channel in self._channels():  # every status of every channel, 0 included, for alerts
            for known in DeadLetterStatus:
                counts.setdefault((channel, known.value), 0)
        for labels, count in sorted(counts.items()):
            family.add_metric(list(labels), count)
        return [family]

    async def _pending_webhooks(self) -> list[Metric]:
        async with self.nexus.db.read() as session:
            rows = (
                await session.execute(
                    select(WebhookLog.channel, func.count(), func.min(WebhookLog.received_at))
                    .where(WebhookLog.status == WebhookStatus.RECEIVED)
                    .group_by(WebhookLog.channel)
                )
            ).all()
        now = utcnow()
        pending = GaugeMetricFamily(
            "nexus_webhooks_pending", "Stored webhook deliveries not processed yet", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "nexus_webhooks_oldest_pending_age_seconds",
            "Age of the oldest stored webhook delivery not processed yet",
            labels=["channel"],
        )
        for channel, count, since in rows:
            pending.add_metric([channel], int(count))
            oldest.add_metric([channel], _age(now, since))
        return [pending, oldest]

    async def _buckets(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "nexus_bucket_tokens",
            "Tokens left in the channel's rate-limit bucket (shared by every process with Redis)",
            labels=["channel"],
        )
        for channel in self._channels():
            try:
                level = await self.nexus.channel(channel).limiter.level()
            except Exception:  # a channel that cannot be built has no bucket to show
                continue
            family.add_metric([channel], level)
        return [family]


_RECEIVED_LABELS = ("channel", "topic")


class _ReceivedTally(Collector):
    """`nexus_webhooks_received` and `nexus_webhooks_duplicate` by (channel, topic), kept as
    plain numbers and rendered at scrape time. The receiver counts every delivery: the `inc` of
    a prometheus-client counter (a lock and four calls) cost 7,800 instructions a delivery, 1.3 %
    of ingestion (docs/benchmarks.md, section 2). Counted on the event loop's thread only."""

    HELP_RECEIVED = "Webhook deliveries accepted (verified and stored), duplicates included"
    HELP_DUPLICATE = (
        "Webhook deliveries already stored (same delivery or event id): answered 200, not stored again"
    )

    def __init__(self) -> None:
        # (channel, topic) -> [received, duplicates, created (epoch seconds)]
        self.counts: dict[tuple[str, str], list[float]] = {}

    def start(self, key: tuple[str, str]) -> list[float]:
        counts = self.counts[key] = [0, 0, time.time()]
        return counts

    def collect(self) -> Iterator[Metric]:
        received, duplicate = self._families()
        # As prometheus-client's own counters do: no `_created` series once they are turned off
        # (PROMETHEUS_DISABLE_CREATED_SERIES, or `disable_created_metrics()`).
        with_created = getattr(prometheus_metrics, "_use_created", True)
        for key, (count, duplicates, created) in list(self.counts.items()):
            stamp = created if with_created else None
            received.add_metric(key, count, created=stamp)
            duplicate.add_metric(key, duplicates, created=stamp)
        yield received
        yield duplicate

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())  # its names, for the registry's check for clashes

    def _families(self) -> tuple[CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily("nexus_webhooks_received", self.HELP_RECEIVED, labels=_RECEIVED_LABELS),
            CounterMetricFamily("nexus_webhooks_duplicate", self.HELP_DUPLICATE, labels=_RECEIVED_LABELS),
        )


class _ScrapeCollector(Collector):
    """Yields what `Metrics.collect` read last (prometheus-client collects synchronously)."""

    def __init__(self) -> None:
        self.families: Sequence[Metric] = ()

    def collect(self) -> Iterator[Metric]:
        yield from self.families

    def describe(self) -> Iterator[Metric]:
        return iter(())  # its families vary: never checked for clashes at registration


def _age(now: datetime, since: datetime | str | None) -> float:
    if since is None:
        return 0.0
    if isinstance(since, str):  # SQLite's MIN() returns text, not the column's type
        since = datetime.fromisoformat(since)
    if since.tzinfo is None:
        since = since.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - since).total_seconds())
