"""Events and the in-process event bus.

Payloads are frozen dataclasses, except `BeforeInventorySync`, whose listeners may change the
quantity or veto the push. Listeners run after the transaction that caused the event committed,
so a listener never sees, or acts on, a change that was rolled back.
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("nexus.events")

E = TypeVar("E")
Listener = Callable[[E], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class InventoryUpdated:
    sku: str
    previous_on_hand: int
    on_hand: int
    delta: int
    reason: str
    channel: str | None = None
    reference: str | None = None


@dataclass(slots=True)
class BeforeInventorySync:
    """Fired before a listing is pushed. Set `quantity` to push something else, or call `veto()`."""

    channel: str
    sku: str
    quantity: int
    remote_quantity: int | None
    vetoed: bool = False
    veto_reason: str | None = None

    def veto(self, reason: str = "vetoed by listener") -> None:
        self.vetoed = True
        self.veto_reason = reason


@dataclass(frozen=True, slots=True)
class AfterInventorySync:
    channel: str
    sku: str
    quantity: int
    batch_id: str | None = None


@dataclass(frozen=True, slots=True)
class InventorySyncFailed:
    channel: str
    sku: str
    quantity: int
    error: str
    dead_letter_id: int | None = None


@dataclass(frozen=True, slots=True)
class WebhookReceived:
    channel: str
    topic: str | None
    delivery_id: str | None
    event_id: str | None
    webhook_log_id: int


@dataclass(frozen=True, slots=True)
class BatchCompleted:
    batch_id: str
    total: int
    processed: int
    failed: int


@dataclass
class EventBus:
    """Listeners per event type; a failing listener is logged and never breaks the sync."""

    _listeners: dict[type[Any], list[Listener[Any]]] = field(default_factory=lambda: defaultdict(list))

    def listen(self, event_type: type[E], listener: Listener[E]) -> None:
        self._listeners[event_type].append(listener)

    def forget(self, event_type: type[E], listener: Listener[E]) -> None:
        self._listeners[event_type].remove(listener)

    def has_listeners(self, event_type: type[Any]) -> bool:
        return bool(self._listeners.get(event_type))

    async def dispatch(self, event: object) -> None:
        for listener in list(self._listeners.get(type(event), ())):
            try:
                result = listener(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event listener failed", event=type(event).__name__)
