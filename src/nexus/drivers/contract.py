"""The contract every channel driver fulfils, and the inbound events a webhook turns into."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, Page, PushResult
from nexus.errors import WebhookPayloadError
from nexus.ratelimit.config import RateLimitConfig


@dataclass(frozen=True, slots=True)
class DriverCapabilities:
    """What the engine may rely on (docs/consistency.md says what each changes).

    compare_and_set: a push carries `change_from` and the channel refuses it, answering
        `PushResult.stale` with its current level, when it shows anything else.
    sales_from_orders: the channel reports every sale as an order (`SaleEvent`), and those are
        what the ledger books; False when its level reports are the only evidence of sales.
    stamp_precision: seconds; the resolution of the channel's own timestamps on levels,
        orders and push answers (1.0 for whole seconds).
    levels_book_sales: whether the channel's level reports book sales; None for the default
        (yes with compare-and-set or without orders; see nexus.domain.belief.Semantics).
    reads_levels: the driver implements `read_levels`. After a worker died mid-push the next
        one reads first and does not push again what the channel already shows; listings in
        doubt on a channel without compare-and-set are read back instead of overwritten; the
        reconciler reads every listing back in turn.
    read_batch_size: how many listings one `read_levels` request covers (Shopify 250 per
        query, WooCommerce 100 per `include=` page; 1 where each listing is its own request).
        The reconciler paces its reads by requests, within its share of the rate budget.
    max_in_flight: push rounds one process keeps in flight on this channel at once (each its
        own claim, so its own listings: a listing is never in two rounds). The next round is
        claimed while one is on the wire, so the database work of one round overlaps the
        channel's answer to another. The token bucket still paces every request, so this never
        raises the request rate above the channel's limit; it bounds how many requests may wait
        on the network side by side, where a channel limits that too (a WordPress host's PHP
        workers). `worker.concurrency`, when set, overrides it.

    The channel's default rate limit is not here: `InventoryDriver.rate_limit_config()` is its
    one source, because it may depend on the channel's settings (a Shopify plan, an Etsy key).
    """

    max_batch_size: int
    compare_and_set: bool = False
    sales_from_orders: bool = True
    stamp_precision: float = 1.0
    levels_book_sales: bool | None = None
    reads_levels: bool = False
    read_batch_size: int = 1
    max_in_flight: int = 1

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")


class _Decoded(enum.Enum):
    NOT_YET = enum.auto()  # an enum member: still itself after copy.deepcopy or pickle


_NOT_DECODED = _Decoded.NOT_YET


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An inbound delivery as it arrived: headers lower-cased, body untouched (signatures cover bytes)."""

    channel: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime
    _decoded: Any = field(default=_NOT_DECODED, init=False, repr=False, compare=False)

    def header(self, *names: str) -> str | None:
        for name in names:
            value = self.headers.get(name.lower())
            if value is not None:
                return value
        return None

    def json(self) -> Any:
        """The body decoded as JSON. Decoded once per request: the receiver's check and the
        driver's parse share it, so treat it as read-only. WebhookPayloadError when not JSON."""
        decoded = self._decoded
        if decoded is _NOT_DECODED:
            try:
                decoded = json.loads(self.body)
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # Recursion: nested too deep
                raise WebhookPayloadError(f"body is not valid JSON: {exc}") from exc
            object.__setattr__(self, "_decoded", decoded)
        return decoded


@dataclass(frozen=True, slots=True)
class WebhookMeta:
    """What the receiver needs before processing: the topic and the ids duplicates share."""

    topic: str
    delivery_id: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class ListingRef:
    """How an inbound event names a listing; the engine tries inventory id, remote id, then SKU."""

    remote_id: str | None = None
    inventory_id: str | None = None
    remote_sku: str | None = None


# Stock lives in 32-bit INTEGER columns (on hand, ledger deltas, listings' levels). No channel
# sells or shows more than that; a delivery that says so is refused with a 400 at ingest, here,
# for every driver at once, instead of failing later in processing.
MAX_QUANTITY = 2**31 - 1


def _checked_quantity(event: str, quantity: int) -> None:
    if abs(quantity) > MAX_QUANTITY:
        raise WebhookPayloadError(f"{event} quantity {quantity} is beyond what a stock level can hold")


@dataclass(frozen=True, slots=True)
class SaleEvent:
    """Units sold on the channel. The channel already took them off its own level."""

    listing: ListingRef
    quantity: int
    order_id: str
    line_id: str
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        _checked_quantity("a sale's", self.quantity)


@dataclass(frozen=True, slots=True)
class ObservedLevel:
    """The channel reports an absolute level for a listing, stamped with the channel's own clock."""

    listing: ListingRef
    quantity: int
    observed_at: datetime | None = None

    def __post_init__(self) -> None:
        _checked_quantity("a level's", self.quantity)


InboundEvent = SaleEvent | ObservedLevel


class ChannelRateLimiter(Protocol):
    """The channel's token bucket, as a driver sees it: take before every request, report after."""

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait until `cost` tokens are available, then take them."""
        ...

    async def observe(
        self,
        *,
        available: float | None,
        capacity: float | None = None,
        refill_per_second: float | None = None,
        round_trip: float | None = None,
    ) -> None:
        """Re-sync the bucket from the channel's own figures (headers, GraphQL throttleStatus;
        see `nexus.ratelimit.headers`). `available=None`: the channel gave only its rates.
        `round_trip`: the request's seconds on the wire (`headers.round_trip(response)`), which
        size the margin kept for requests in flight."""
        ...

    async def penalize(self, seconds: float) -> None:
        """Stop every request on this bucket for `seconds`. Call it on every 429 (with its
        Retry-After): it also counts towards the engine's `ChannelThrottled` event."""
        ...

    async def refund(self, tokens: float) -> None:
        """Give back tokens taken but not spent (Shopify refunds requested minus actual cost)."""
        ...


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """Everything a driver factory gets: no globals, so engines can run side by side."""

    name: str
    driver: str
    base_url: str | None
    credentials: Mapping[str, str]
    settings: Mapping[str, Any]
    http: httpx.AsyncClient
    rate: ChannelRateLimiter
    limiter_for: Callable[[str, RateLimitConfig], ChannelRateLimiter] | None = None

    def limiter(self, operation: str, limit: RateLimitConfig) -> ChannelRateLimiter:
        """A bucket of its own for one operation class (SP-API rates differ per operation; Etsy
        has a per-second and a daily bucket), shared by every process using the same account."""
        if self.limiter_for is None:
            return self.rate
        return self.limiter_for(operation, limit)


@runtime_checkable
class InventoryDriver(Protocol):
    """What a channel driver implements. Explicit subclasses inherit the optional methods'
    defaults (`read_levels`, `resolve_webhook`); what a driver can do beyond the required
    methods is declared in its `capabilities`, never discovered by inspecting the object."""

    name: str
    capabilities: DriverCapabilities

    async def fetch_product(self, remote_id: str) -> NexusProduct: ...

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]: ...

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]: ...

    async def verify_webhook(self, request: WebhookRequest) -> None:
        """Raise WebhookSignatureError (or another WebhookError) unless the delivery is authentic.

        A coroutine for every driver: some must fetch (and cache) a signing certificate first."""
        ...

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta: ...

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        """Raise WebhookPayloadError for a body the channel would never send. Called at ingest,
        with no network call, to refuse malformed bodies before they are stored."""
        ...

    async def resolve_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        """The events of a stored delivery, when it is processed. A driver whose deliveries do
        not carry everything (Etsy's `order.paid` holds only a `resource_url`; an SNS
        SubscriptionConfirmation must be confirmed by a fetch) fetches the rest here."""
        return self.parse_webhook(request)

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        """The channel's current quantity per listing id; a listing it cannot read is left out
        (so this default reads nothing). Called only when `capabilities.reads_levels` is declared."""
        return {}

    def rate_limit_config(self) -> RateLimitConfig: ...
