"""What every sandbox offers: the Protocol the demo and the shared `/_sandbox` control routes
(`nexus.sandbox.control`) program against, and the network latency every sandbox can add."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nexus.sandbox.delivery import DeliveryQueue
from nexus.sandbox.stats import SandboxStats


class NetworkLatency:
    """A fixed delay added to every HTTP request a sandbox serves: the round trip to a remote
    store, which loopback does not have. Half of it passes before the sandbox sees the request,
    half before its answer starts, so a change lands mid-way as on a real network. Requests are
    delayed each on their own (concurrent requests overlap their waits: it is latency, not a
    narrower pipe). `seconds` may be changed while serving (PUT /_sandbox/latency)."""

    def __init__(
        self, latency_ms: float = 0.0, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.seconds = 0.0
        self.set_ms(latency_ms)
        self.sleep = sleep  # how a request waits (tests swap in a gate they open themselves)

    @property
    def ms(self) -> float:
        return self.seconds * 1000.0

    def set_ms(self, latency_ms: float) -> None:
        if not latency_ms >= 0:  # also refuses NaN
            raise ValueError("latency_ms must be zero or more")
        self.seconds = latency_ms / 1000.0


class _Delayed:
    """The ASGI middleware that applies a `NetworkLatency` to HTTP requests (not to lifespan)."""

    def __init__(self, app: ASGIApp, latency: NetworkLatency) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        delay = self.latency.seconds
        if scope["type"] != "http" or delay <= 0:
            await self.app(scope, receive, send)
            return
        await self.latency.sleep(delay / 2)

        async def send_later(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self.latency.sleep(delay / 2)
            await send(message)

        await self.app(scope, receive, send_later)


def add_network_latency(app: Starlette, latency_ms: float = 0.0) -> NetworkLatency:
    """Wrap a sandbox's app (before it serves anything) in a `NetworkLatency` of `latency_ms`,
    returned so the sandbox can hold it as `sandbox.network`."""
    latency = NetworkLatency(latency_ms)
    app.add_middleware(_Delayed, latency=latency)
    return latency


class Sandbox(Protocol):
    """What the four sandboxes share: an ASGI app, counters, a merchant's and a buyer's actions,
    webhook subscriptions and their delivery."""

    @property
    def app(self) -> Any: ...
    @property
    def stats(self) -> SandboxStats: ...
    @property
    def network(self) -> NetworkLatency:
        """The fixed latency added to every request it serves (`latency_ms` when built)."""
        ...

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
