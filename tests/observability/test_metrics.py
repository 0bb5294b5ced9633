"""GET /nexus/metrics: Prometheus text format, one registry per Nexus instance, the named
families after a push, a 429, a webhook (accepted and forged) and a reconciliation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, disable_created_metrics, enable_created_metrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from nexus.engine import Nexus
from nexus.sync.queue import ListingQueue
from nexus.web import create_app
from nexus.web.server import serve_app
from tests.observability.obs_kit import CHANNEL, SKUS, linked_store, push_all

pytest.importorskip("nexus.sandbox.shopify")

FAMILIES = {
    "nexus_pushes": "counter",
    "nexus_push_failures": "counter",
    "nexus_push_duration_seconds": "histogram",
    "nexus_rate_limited": "counter",
    "nexus_queue_depth": "gauge",
    "nexus_queue_oldest_dirty_age_seconds": "gauge",
    "nexus_bucket_tokens": "gauge",
    "nexus_webhooks_received": "counter",
    "nexus_webhooks_rejected": "counter",
    "nexus_webhooks_processed": "counter",
    "nexus_webhook_processing_lag_seconds": "histogram",
    "nexus_webhooks_pending": "gauge",
    "nexus_dead_letters": "gauge",
    "nexus_reconcile_differences": "counter",
    "nexus_channel_state": "gauge",
}


async def scrape(client: httpx.AsyncClient, base_url: str) -> dict[str, list[Sample]]:
    answer = await client.get(f"{base_url}/nexus/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    for name, kind in FAMILIES.items():
        assert name in families, name
        assert families[name].type == kind, name
    return {name: family.samples for name, family in families.items()}


def value(samples: dict[str, list[Sample]], family: str, sample: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples[family]
        if s.name == sample and all(s.labels.get(key) == wanted for key, wanted in labels.items())
    )


async def test_metrics_after_a_push_a_webhook_and_a_reconciliation(make_nexus: Callable[..., Any]) -> None:
    async with linked_store(make_nexus) as store:
        nexus, sandbox = store.nexus, store.sandbox
        app = create_app(nexus)
        async with serve_app(app) as served, httpx.AsyncClient() as client:
            sandbox.subscribe("orders/create", f"{served.base_url}/nexus/webhooks/{CHANNEL}")
            await sandbox.simulate_sale(SKUS[0], 2)  # a signed webhook: received, processed
            await sandbox.drain_webhooks(timeout=10)
            await app.state.webhook_processor.drain()
            forged = await client.post(
                f"{served.base_url}/nexus/webhooks/{CHANNEL}",
                content=b"{}",
                headers={"Content-Type": "application/json", "X-Shopify-Topic": "orders/create"},
            )
            assert forged.status_code == 401
            await nexus.product(SKUS[2]).adjust(-1)
            sandbox.fail_next(1, status=429, retry_after=0.01)
            await push_all(nexus)  # a 429 (the driver waits and retries)
            await asyncio.sleep(0.1)
            await push_all(nexus)  # pushed
            await sandbox.set_available(SKUS[1], 25)  # an admin edit the reconciler finds
            await nexus.reconciler(CHANNEL).cycle()
            await push_all(nexus)  # Nexus wins: pushed back
            nexus.metrics.channel_state(CHANNEL, "throttled")
            await nexus.product(SKUS[0]).adjust(-1)  # left waiting: the queue's depth
            samples = await scrape(client, served.base_url)

    assert value(samples, "nexus_pushes", "nexus_pushes_total", channel=CHANNEL, result="ok") == 2
    assert value(samples, "nexus_push_duration_seconds", "nexus_push_duration_seconds_count") >= 2
    assert value(samples, "nexus_rate_limited", "nexus_rate_limited_total", channel=CHANNEL) == 1
    received = value(
        samples, "nexus_webhooks_received", "nexus_webhooks_received_total", topic="orders/create"
    )
    assert received == 1
    assert value(samples, "nexus_webhooks_rejected", "nexus_webhooks_rejected_total", status="401") == 1
    processed = value(
        samples,
        "nexus_webhooks_processed",
        "nexus_webhooks_processed_total",
        channel=CHANNEL,
        result="processed",
    )
    assert processed == 1
    assert (
        value(samples, "nexus_webhook_processing_lag_seconds", "nexus_webhook_processing_lag_seconds_count")
        == 1
    )
    assert (
        value(samples, "nexus_reconcile_differences", "nexus_reconcile_differences_total", finding="pushed")
        == 1
    )
    assert value(samples, "nexus_queue_depth", "nexus_queue_depth", channel=CHANNEL) == 1
    assert value(samples, "nexus_queue_oldest_dirty_age_seconds", "nexus_queue_oldest_dirty_age_seconds") >= 0
    assert [s.labels["status"] for s in samples["nexus_dead_letters"]] == ["failed", "replaying", "resolved"]
    assert value(samples, "nexus_channel_state", "nexus_channel_state", state="throttled") == 1
    assert value(samples, "nexus_channel_state", "nexus_channel_state", state="connected") == 0
    assert len(samples["nexus_bucket_tokens"]) == 1


async def test_each_instance_counts_in_its_own_registry(make_nexus: Callable[..., Any]) -> None:
    first: Nexus = await make_nexus()
    second: Nexus = await make_nexus()
    first.metrics.throttled("shop")
    assert first.metrics.registry is not second.metrics.registry
    assert first.metrics.registry is not REGISTRY
    assert first.metrics.registry.get_sample_value("nexus_rate_limited_total", {"channel": "shop"}) == 1
    assert second.metrics.registry.get_sample_value("nexus_rate_limited_total", {"channel": "shop"}) is None
    assert REGISTRY.get_sample_value("nexus_rate_limited_total", {"channel": "shop"}) is None
    with pytest.raises(ValueError, match="connected, throttled, paused, disconnected"):
        first.metrics.channel_state("shop", "asleep")


async def test_a_part_that_cannot_be_read_leaves_the_others(
    make_nexus: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    nexus: Nexus = await make_nexus()
    nexus.metrics.throttled("shop")

    async def broken(self: ListingQueue) -> Any:
        raise RuntimeError("database down")

    monkeypatch.setattr(ListingQueue, "counts", broken)
    text = (await nexus.metrics.render()).decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    assert "nexus_rate_limited" in families and "nexus_queue_depth" not in families


async def test_received_and_duplicate_webhooks_count_per_channel_and_topic(
    make_nexus: Callable[..., Any],
) -> None:
    nexus: Nexus = await make_nexus()
    metrics, registry = nexus.metrics, nexus.metrics.registry
    for _ in range(3):
        metrics.webhook_received("shop", "orders/create")
    metrics.webhook_received("shop", "orders/create", duplicate=True)
    metrics.webhook_received("shop", "inventory_levels/update", duplicate=True)
    metrics.webhook_received("other", None)

    def sample(name: str, channel: str, topic: str) -> float | None:
        return registry.get_sample_value(name, {"channel": channel, "topic": topic})

    assert sample("nexus_webhooks_received_total", "shop", "orders/create") == 4
    assert sample("nexus_webhooks_duplicate_total", "shop", "orders/create") == 1
    assert sample("nexus_webhooks_received_total", "shop", "inventory_levels/update") == 1
    assert sample("nexus_webhooks_duplicate_total", "shop", "inventory_levels/update") == 1
    assert sample("nexus_webhooks_received_total", "other", "") == 1
    assert sample("nexus_webhooks_duplicate_total", "other", "") == 0


@pytest.mark.parametrize("created", [True, False])
async def test_received_webhooks_follow_the_created_series_setting_as_every_counter_does(
    make_nexus: Callable[..., Any], created: bool
) -> None:
    nexus: Nexus = await make_nexus()
    nexus.metrics.webhook_received("shop", "orders/create")
    nexus.metrics.throttled("shop")  # an ordinary prometheus-client counter, beside the tally
    if not created:
        disable_created_metrics()
    try:
        names = {sample.name for family in nexus.metrics.registry.collect() for sample in family.samples}
    finally:
        enable_created_metrics()
    expected = {"nexus_rate_limited_total", "nexus_webhooks_received_total", "nexus_webhooks_duplicate_total"}
    if created:
        expected |= {
            "nexus_rate_limited_created",
            "nexus_webhooks_received_created",
            "nexus_webhooks_duplicate_created",
        }
    assert expected <= names
    assert {name for name in names if name.endswith("_created")} <= expected
