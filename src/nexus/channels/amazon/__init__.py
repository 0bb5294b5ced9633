"""Amazon channel: Selling Partner API listings (patch per SKU, JSON_LISTINGS_FEED for large pushes),
Login with Amazon tokens, SP-API notifications delivered over SNS.

create_driver(ctx)     entry point of the `nexus.drivers` group (name "amazon")
                       `create_driver.settings_model`: the settings model, checked at start-up
AmazonDriver           the InventoryDriver implementation (reads levels; confirms SNS subscriptions)
product_from_amazon    a listings item as a NexusProduct (what `NexusProduct.from_amazon` would be)
"""

from nexus.channels.amazon.driver import AmazonDriver
from nexus.channels.amazon.normalize import product_from_amazon
from nexus.channels.amazon.settings import AmazonSettings
from nexus.config import settings_model
from nexus.drivers.contract import ChannelContext


@settings_model(AmazonSettings)
def create_driver(ctx: ChannelContext) -> AmazonDriver:
    """Build the driver for one channel connection; raises ConfigError for missing settings."""
    return AmazonDriver(ctx)


__all__ = ["AmazonDriver", "AmazonSettings", "create_driver", "product_from_amazon"]
