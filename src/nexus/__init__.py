"""Nexus: keep inventory in sync across sales channels.

nexus = Nexus.from_config()
await nexus.product("SKU-1").update_inventory(quantity=42).sync()
"""

from nexus.api import BatchStatus, SyncOutcome
from nexus.config import AllocationRule, ChannelConfig, NexusSettings
from nexus.domain.catalog import ImportReport, ItemSpec
from nexus.domain.vocabulary import MovementReason, Priority
from nexus.drivers import (
    DriverCapabilities,
    InventoryDriver,
    NexusInventoryUpdate,
    NexusProduct,
    NexusVariant,
    PushResult,
    PushStatus,
)
from nexus.engine import Nexus
from nexus.events import (
    AfterInventorySync,
    BatchCompleted,
    BeforeInventorySync,
    InventorySyncFailed,
    InventoryUpdated,
    WebhookReceived,
)

__all__ = [
    "AfterInventorySync",
    "AllocationRule",
    "BatchCompleted",
    "BatchStatus",
    "BeforeInventorySync",
    "ChannelConfig",
    "DriverCapabilities",
    "ImportReport",
    "InventoryDriver",
    "InventorySyncFailed",
    "InventoryUpdated",
    "ItemSpec",
    "MovementReason",
    "Nexus",
    "NexusInventoryUpdate",
    "NexusProduct",
    "NexusSettings",
    "NexusVariant",
    "Priority",
    "PushResult",
    "PushStatus",
    "SyncOutcome",
    "WebhookReceived",
]
