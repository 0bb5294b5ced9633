"""Shopify channel: Admin GraphQL API for stock, signed webhooks for sales and level changes.

create_driver(ctx)   entry point of the `nexus.drivers` group (name "shopify")
ShopifyDriver        the InventoryDriver implementation
"""

from nexus.channels.shopify.driver import ShopifyDriver, ShopifySettings
from nexus.drivers.contract import ChannelContext


def create_driver(ctx: ChannelContext) -> ShopifyDriver:
    """Build the driver for one channel connection; raises ConfigError for missing settings."""
    return ShopifyDriver(ctx)


__all__ = ["ShopifyDriver", "ShopifySettings", "create_driver"]
