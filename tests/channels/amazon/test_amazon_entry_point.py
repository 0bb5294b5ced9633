"""The driver is reachable the way the engine finds drivers: the `nexus.drivers` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

import httpx
from amazon_testkit import make_context

from nexus.channels.amazon import AmazonDriver, create_driver
from nexus.drivers.contract import InventoryDriver
from nexus.sandbox.amazon import AmazonSandbox


def test_entry_point_names_create_driver() -> None:
    (entry,) = [e for e in entry_points(group="nexus.drivers") if e.name == "amazon"]
    assert entry.load() is create_driver


async def test_driver_satisfies_the_protocols() -> None:
    async with httpx.AsyncClient() as http:
        driver = create_driver(make_context(http, AmazonSandbox(), "https://sellingpartnerapi-na.amazon.com"))
    assert isinstance(driver, AmazonDriver)
    assert isinstance(driver, InventoryDriver)
    # The processor confirms SNS subscriptions through its own resolve_webhook, not the default.
    assert type(driver).resolve_webhook is not InventoryDriver.resolve_webhook
    assert driver.capabilities.reads_levels
    assert driver.capabilities.max_batch_size == 2_500  # one push round: a feed of at most 2,500
    assert not driver.capabilities.compare_and_set
