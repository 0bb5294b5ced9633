"""The driver is reachable the way the engine finds third-party drivers: the entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

import httpx
from shopify_testkit import make_context, mock_client

from nexus.channels.shopify import ShopifyDriver, create_driver
from nexus.drivers.contract import InventoryDriver


def test_entry_point_names_create_driver() -> None:
    (entry,) = [e for e in entry_points(group="nexus.drivers") if e.name == "shopify"]
    assert entry.load() is create_driver


def test_driver_satisfies_the_protocol() -> None:
    driver = create_driver(make_context(mock_client(lambda request: httpx.Response(599))))
    assert isinstance(driver, ShopifyDriver)
    assert isinstance(driver, InventoryDriver)
    assert driver.name == "shopify"
