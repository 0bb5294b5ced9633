"""What every sandbox offers: the Protocol the demo and the shared `/_sandbox` control routes
(`nexus.sandbox.control`) program against."""

from __future__ import annotations

from typing import Any, Protocol

from nexus.sandbox.delivery import DeliveryQueue
from nexus.sandbox.stats import SandboxStats


class Sandbox(Protocol):
    """What the four sandboxes share: an ASGI app, counters, a merchant's and a buyer's actions,
    webhook subscriptions and their delivery."""

    @property
    def app(self) -> Any: ...
    @property
    def stats(self) -> SandboxStats: ...
    def subscribe(self, topic: str, address: str, /) -> object: ...
    async def simulate_sale(self, sku: str, quantity: int = 1) -> dict[str, Any] | None:
        """A buyer's purchase; None when the channel refuses it for want of stock."""
        ...

    @property
    def deliveries(self) -> DeliveryQueue[Any]:
        """Its webhook (or SNS) delivery queue, whose fault knobs tests and the control surface turn."""
        ...

    async def set_available(self, sku: str, quantity: int, /) -> None:
        """A merchant's edit of the quantity in the channel's admin; KeyError for an unknown SKU."""
        ...

    def available(self, sku: str, /) -> int | None: ...
    def levels(self) -> dict[str, int]: ...
    async def drain_webhooks(self, timeout: float = ...) -> None: ...
    async def aclose(self) -> None: ...
