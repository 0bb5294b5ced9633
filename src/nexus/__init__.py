"""Nexus: keep inventory in sync across sales channels.

nexus = Nexus.from_config()
await nexus.product("SKU-1").update_inventory(quantity=42).sync()

Every name in `__all__` is public and documented; everything else is internal and may change
without notice (README, "Public API"). Names are loaded on first use, so importing a light
part of Nexus (`nexus.drivers` for a driver author, `nexus.errors`) does not pull in the
engine, the database layer or any channel.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexus.api import BatchStatus, ListingState, ProductState, SyncOutcome
    from nexus.config import AllocationRule, ChannelConfig, NexusSettings
    from nexus.domain.catalog import ImportReport, ItemSpec
    from nexus.domain.vocabulary import BatchState, DeadLetterStatus, MovementReason, Priority, WebhookStatus
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
    from nexus.errors import (
        AddressInUseError,
        BatchStrandedError,
        ChannelAuthError,
        ChannelBlockedError,
        ChannelError,
        ConfigError,
        DeadLetterError,
        InvalidArgumentError,
        ListingBusyError,
        NexusError,
        QuotaExhausted,
        SchemaError,
        TerminalChannelError,
        TerminalError,
        TransientChannelError,
        TransientError,
        UnknownBatchError,
        UnknownChannelError,
        UnknownConflictError,
        UnknownDeadLetterError,
        UnknownDriverError,
        UnknownSkuError,
        WebhookError,
        WebhookPayloadError,
        WebhookSignatureError,
        WebhookTooLargeError,
    )
    from nexus.events import (
        AfterInventorySync,
        BatchCompleted,
        BatchProgressed,
        BeforeInventorySync,
        ChannelDisconnected,
        ChannelPaused,
        ChannelReconnected,
        ChannelRecovered,
        ChannelResumed,
        ChannelThrottled,
        InventorySyncFailed,
        InventoryUpdated,
        WebhookReceived,
    )
    from nexus.status import ChannelStatus

_HOMES: dict[str, tuple[str, ...]] = {
    "nexus.api": ("BatchStatus", "ListingState", "ProductState", "SyncOutcome"),
    "nexus.config": ("AllocationRule", "ChannelConfig", "NexusSettings"),
    "nexus.domain.catalog": ("ImportReport", "ItemSpec"),
    "nexus.domain.vocabulary": (
        "BatchState",
        "DeadLetterStatus",
        "MovementReason",
        "Priority",
        "WebhookStatus",
    ),
    "nexus.drivers": (
        "DriverCapabilities",
        "InventoryDriver",
        "NexusInventoryUpdate",
        "NexusProduct",
        "NexusVariant",
        "PushResult",
        "PushStatus",
    ),
    "nexus.engine": ("Nexus",),
    "nexus.errors": (
        "AddressInUseError",
        "BatchStrandedError",
        "ChannelAuthError",
        "ChannelBlockedError",
        "ChannelError",
        "ConfigError",
        "DeadLetterError",
        "InvalidArgumentError",
        "ListingBusyError",
        "NexusError",
        "QuotaExhausted",
        "SchemaError",
        "TerminalChannelError",
        "TerminalError",
        "TransientChannelError",
        "TransientError",
        "UnknownBatchError",
        "UnknownChannelError",
        "UnknownConflictError",
        "UnknownDeadLetterError",
        "UnknownDriverError",
        "UnknownSkuError",
        "WebhookError",
        "WebhookPayloadError",
        "WebhookSignatureError",
        "WebhookTooLargeError",
    ),
    "nexus.events": (
        "AfterInventorySync",
        "BatchCompleted",
        "BatchProgressed",
        "BeforeInventorySync",
        "ChannelDisconnected",
        "ChannelPaused",
        "ChannelReconnected",
        "ChannelRecovered",
        "ChannelResumed",
        "ChannelThrottled",
        "InventorySyncFailed",
        "InventoryUpdated",
        "WebhookReceived",
    ),
    "nexus.status": ("ChannelStatus",),
}
# Where each public name lives; tests/test_public_api.py holds it equal to __all__.
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

try:
    __version__ = version("nexus-sync")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "AddressInUseError",
    "AfterInventorySync",
    "AllocationRule",
    "BatchCompleted",
    "BatchProgressed",
    "BatchState",
    "BatchStatus",
    "BatchStrandedError",
    "BeforeInventorySync",
    "ChannelAuthError",
    "ChannelBlockedError",
    "ChannelConfig",
    "ChannelDisconnected",
    "ChannelError",
    "ChannelPaused",
    "ChannelReconnected",
    "ChannelRecovered",
    "ChannelResumed",
    "ChannelStatus",
    "ChannelThrottled",
    "ConfigError",
    "DeadLetterError",
    "DeadLetterStatus",
    "DriverCapabilities",
    "ImportReport",
    "InvalidArgumentError",
    "InventoryDriver",
    "InventorySyncFailed",
    "InventoryUpdated",
    "ItemSpec",
    "ListingBusyError",
    "ListingState",
    "MovementReason",
    "Nexus",
    "NexusError",
    "NexusInventoryUpdate",
    "NexusProduct",
    "NexusSettings",
    "NexusVariant",
    "Priority",
    "ProductState",
    "PushResult",
    "PushStatus",
    "QuotaExhausted",
    "SchemaError",
    "SyncOutcome",
    "TerminalChannelError",
    "TerminalError",
    "TransientChannelError",
    "TransientError",
    "UnknownBatchError",
    "UnknownChannelError",
    "UnknownConflictError",
    "UnknownDeadLetterError",
    "UnknownDriverError",
    "UnknownSkuError",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookReceived",
    "WebhookSignatureError",
    "WebhookStatus",
    "WebhookTooLargeError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'nexus' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
