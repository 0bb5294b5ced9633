"""Etsy channel: Open API v3 listing inventories, OAuth 2 tokens, Standard Webhooks.

create_driver(ctx)    entry point of the `nexus.drivers` group (name "etsy")
                      `create_driver.settings_model`: the settings model, checked at start-up
EtsyDriver            the InventoryDriver (reads levels; resolves order.paid receipts)
product_from_etsy     listing + inventory JSON -> NexusProduct (the `from_etsy` normaliser)
"""

from nexus.channels.etsy.driver import EtsyDriver
from nexus.channels.etsy.normalize import product_from_etsy
from nexus.channels.etsy.settings import EtsySettings
from nexus.config import settings_model
from nexus.drivers.contract import ChannelContext


@settings_model(EtsySettings)
def create_driver(ctx: ChannelContext) -> EtsyDriver:
    """Build the driver for one channel connection; raises ConfigError for missing settings."""
    return EtsyDriver(ctx)


__all__ = ["EtsyDriver", "EtsySettings", "create_driver", "product_from_etsy"]
