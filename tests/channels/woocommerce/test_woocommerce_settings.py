"""The driver is found through the entry point, fulfils the protocols, and names bad settings."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from woocommerce_testkit import make_context

from nexus.channels.woocommerce import WooCommerceDriver, create_driver
from nexus.drivers.contract import InventoryDriver
from nexus.errors import ConfigError


def test_entry_point_names_create_driver() -> None:
    (entry,) = [e for e in entry_points(group="nexus.drivers") if e.name == "woocommerce"]
    assert entry.load() is create_driver


def test_driver_satisfies_the_protocols_and_declares_woocommerce_limits() -> None:
    driver = create_driver(make_context(httpx.AsyncClient()))
    assert isinstance(driver, WooCommerceDriver)
    assert isinstance(driver, InventoryDriver) and driver.capabilities.reads_levels
    assert (driver.capabilities.max_batch_size, driver.capabilities.compare_and_set) == (100, False)
    assert (driver.rate_limit_config().capacity, driver.rate_limit_config().refill_per_second) == (100, 25)


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"base_url": "shop.example.com"}, "channels.woo.base_url"),
        ({"key": ""}, "channels.woo.credentials.consumer_key"),
        ({"secret": ""}, "channels.woo.credentials.consumer_secret"),
        ({"settings": {"auth": "oauth"}}, "channels.woo.settings.auth"),
        ({"settings": {"batch_limit": 101}}, "channels.woo.settings.batch_limit"),
        ({"settings": {"manage_stock": "yes"}}, "channels.woo.settings.manage_stock"),
        ({"settings": {"sale_statuses": "processing"}}, "channels.woo.settings.sale_statuses"),
    ],
)
def test_bad_settings_name_their_key(changes: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        create_driver(make_context(httpx.AsyncClient(), **changes))
    assert raised.value.key == key
