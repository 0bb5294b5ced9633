"""The driver contract: what a channel adapter implements and the data it exchanges."""

from nexus.drivers.contract import (
    ChannelContext,
    ChannelRateLimiter,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    ListingRef,
    ObservedLevel,
    SaleEvent,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import (
    NexusInventoryUpdate,
    NexusProduct,
    NexusVariant,
    Page,
    PushResult,
    PushStatus,
)
from nexus.drivers.pagination import iterate_products
from nexus.drivers.registry import DriverFactory, DriverRegistry, Normalizer
from nexus.ratelimit.config import RateLimitConfig

__all__ = [
    "ChannelContext",
    "ChannelRateLimiter",
    "DriverCapabilities",
    "DriverFactory",
    "DriverRegistry",
    "InboundEvent",
    "InventoryDriver",
    "ListingRef",
    "NexusInventoryUpdate",
    "NexusProduct",
    "NexusVariant",
    "Normalizer",
    "ObservedLevel",
    "Page",
    "PushResult",
    "PushStatus",
    "RateLimitConfig",
    "SaleEvent",
    "WebhookMeta",
    "WebhookRequest",
    "iterate_products",
]
