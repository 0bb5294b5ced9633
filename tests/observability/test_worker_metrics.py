"""A `nexus worker` process serves its own counters with --metrics-port: pushes happen there, so a
scrape of the web nodes alone would never see them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from nexus.runtime import running
from nexus.testing import MemoryChannel


async def test_a_worker_serves_its_metrics_on_its_own_port(make_nexus: Callable[..., Any]) -> None:
    nexus = await make_nexus(channels={"m": {"driver": "memory"}})
    nexus.extend("memory", MemoryChannel.factory())
    async with running(nexus, web=False, metrics_port=0) as service:
        assert service.base_url is not None
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            answer = await client.get("/nexus/metrics")
            health = await client.get("/nexus/healthz")
        await asyncio.sleep(0)
    assert answer.status_code == 200 and health.status_code == 200
    names = {family.name for family in text_string_to_metric_families(answer.text)}
    assert "nexus_pushes" in names and "nexus_channel_state" in names
