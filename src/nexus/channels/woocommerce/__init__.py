"""WooCommerce channel: REST API v3 batch writes for stock, signed webhooks for sales and levels.

create_driver(ctx)          entry point of the `nexus.drivers` group (name "woocommerce")
                            `create_driver.settings_model`: the settings model, checked at start-up
WooCommerceDriver           the InventoryDriver implementation
product_from_woocommerce    a REST v3 product (and its variations) as a NexusProduct; dto.py has
                            no `NexusProduct.from_woocommerce` hook, so this function is the API
"""

from nexus.channels.woocommerce.driver import WooCommerceDriver
from nexus.channels.woocommerce.normalize import product_from_woocommerce
from nexus.channels.woocommerce.settings import WooCommerceSettings
from nexus.config import settings_model
from nexus.drivers.contract import ChannelContext


@settings_model(WooCommerceSettings)
def create_driver(ctx: ChannelContext) -> WooCommerceDriver:
    """Build the driver for one channel connection; raises ConfigError for missing settings."""
    return WooCommerceDriver(ctx)


__all__ = ["WooCommerceDriver", "WooCommerceSettings", "create_driver", "product_from_woocommerce"]
