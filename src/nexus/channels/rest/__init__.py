"""The generic REST channel (`driver = "rest"`): endpoints, JSON paths, auth and webhook signing
all come from configuration. See `nexus.channels.rest.settings` for every key.

create_driver(ctx)   entry point of the `nexus.drivers` group (name "rest")
                     `create_driver.settings_model`: the settings model, checked at start-up
"""

from nexus.channels.rest.driver import RestDriver
from nexus.channels.rest.settings import RestSettings, WebhookSettings
from nexus.config import settings_model
from nexus.drivers.contract import ChannelContext


@settings_model(RestSettings)
def create_driver(ctx: ChannelContext) -> RestDriver:
    return RestDriver(ctx)


__all__ = ["RestDriver", "RestSettings", "WebhookSettings", "create_driver"]
