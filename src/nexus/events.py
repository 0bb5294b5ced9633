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


@dataclass(frozen=True, slots=True)
class BatchProgressed:
    """A push round finished listings of a batch; sent once per round, not per listing."""

    batch_id: str
    total: int
    processed: int
    failed: int


@dataclass(frozen=True, slots=True)
class ChannelThrottled:
    """The channel answered `consecutive_429s` requests in a row with 429 (sent once per episode)."""

    channel: str
    consecutive_429s: int
    queued_listings: int


@dataclass(frozen=True, slots=True)
class ChannelRecovered:
    """Requests to a throttled channel succeed again."""

    channel: str
    consecutive_429s: int
    queued_listings: int


@dataclass(frozen=True, slots=True)
class ChannelDisconnected:
    """The channel refused the credentials (401/403 or the driver's own auth failure): pushes
    stop, its listings stay queued (no dead letters) until a probe finds the credentials working."""

    channel: str
    error: str
    queued_listings: int


@dataclass(frozen=True, slots=True)
class ChannelReconnected:
    """A probe of a disconnected channel succeeded: everything queued is pushed now."""

    channel: str
    queued_listings: int


@dataclass(frozen=True, slots=True)
class ChannelPaused:
    """Someone paused the channel (`nexus channels pause`): no process claims its listings."""

    channel: str
    reason: str | None
    actor: str


@dataclass(frozen=True, slots=True)
class ChannelResumed:
    """A paused channel was resumed: what queued up meanwhile is pushed now."""

    channel: str
    actor: str
    queued_listings: int


# Events that describe the deployment rather than one process's work: with Redis configured they
# are published to every process, so a listener anywhere sees them once.
SHARED_EVENTS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        BatchProgressed,
        BatchCompleted,
        ChannelThrottled,
        ChannelRecovered,
        ChannelDisconnected,
        ChannelReconnected,
        ChannelPaused,
        ChannelResumed,
    )
}

Relay = Callable[[object], Awaitable[None]]


@dataclass
class EventBus:
    """Listeners per event type; a failing listener is logged and never breaks the sync.

    `relay`, when set, receives every shared event after the local listeners ran: the Redis
    bridge publishes it, and the other processes hand it to `dispatch_local`.
    """

    _listeners: dict[type[Any], list[Listener[Any]]] = field(default_factory=lambda: defaultdict(list))
    relay: Relay | None = None

    def listen(self, event_type: type[E], listener: Listener[E]) -> None:
        self._listeners[event_type].append(listener)

    def forget(self, event_type: type[E], listener: Listener[E]) -> None:
        self._listeners[event_type].remove(listener)

    def has_listeners(self, event_type: type[Any]) -> bool:
        return bool(self._listeners.get(event_type))

    async def dispatch(self, event: object) -> None:
        await self.dispatch_local(event)
        if self.relay is not None and type(event).__name__ in SHARED_EVENTS:
            try:
                await self.relay(event)
            except Exception:
                log.exception("event relay failed", event=type(event).__name__)

    async def dispatch_local(self, event: object) -> None:
        for listener in list(self._listeners.get(type(event), ())):
            try:
                result = listener(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event listener failed", event=type(event).__name__)
