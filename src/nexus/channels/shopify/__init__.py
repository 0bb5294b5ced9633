"""Shopify channel: Admin GraphQL API for stock, signed webhooks for sales and level changes.

create_driver(ctx)   entry point of the `nexus.drivers` group (name "shopify")
                     `create_driver.settings_model`: the settings model, checked at start-up
ShopifyDriver        the InventoryDriver implementation
"""

from nexus.channels.shopify.driver import ShopifyDriver
from nexus.channels.shopify.settings import ShopifySettings
from nexus.config import settings_model
from nexus.drivers.contract import ChannelContext


@settings_model(ShopifySettings)
def create_driver(ctx: ChannelContext) -> ShopifyDriver:
    """Build the driver for one channel connection; raises ConfigError for missing settings."""
    return ShopifyDriver(ctx)


__all__ = ["ShopifyDriver", "ShopifySettings", "create_driver"]
