"""The contract every channel driver fulfils, and the inbound events a webhook turns into."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, Page, PushResult


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """One token bucket: `capacity` tokens, refilled at `refill_per_second`.

    `cost_per_push` is what one push request takes from the bucket (1 for request-counted APIs,
    the calculated query cost for Shopify GraphQL).
    """

    capacity: float
    refill_per_second: float
    cost_per_push: float = 1.0

    @classmethod
    def daily(cls, requests_per_day: float) -> RateLimitConfig:
        """A rolling daily quota (Etsy's QPD) as a bucket: the whole day's allowance, refilled evenly."""
        return cls(capacity=requests_per_day, refill_per_second=requests_per_day / 86_400)


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
    """

    max_batch_size: int
    compare_and_set: bool = False
    webhook_topics: tuple[str, ...] = ()
    default_rate_limit: RateLimitConfig = field(default_factory=lambda: RateLimitConfig(1, 1))
    sales_from_orders: bool = True
    stamp_precision: float = 1.0
    levels_book_sales: bool | None = None


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An inbound delivery as it arrived: headers lower-cased, body untouched (signatures cover bytes)."""

    channel: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime

    def header(self, *names: str) -> str | None:
        for name in names:
            value = self.headers.get(name.lower())
            if value is not None:
                return value
        return None


@dataclass(frozen=True, slots=True)
class WebhookMeta:
    """What the receiver needs before processing: the topic and the ids duplicates share."""

    topic: str
    delivery_id: str | None = None
    event_id: str | None = None
    triggered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListingRef:
    """How an inbound event names a listing; the engine tries inventory id, remote id, then SKU."""

    remote_id: str | None = None
    inventory_id: str | None = None
    remote_sku: str | None = None


@dataclass(frozen=True, slots=True)
class SaleEvent:
    """Units sold on the channel. The channel already took them off its own level."""

    listing: ListingRef
    quantity: int
    order_id: str
    line_id: str
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ObservedLevel:
    """The channel reports an absolute level for a listing, stamped with the channel's own clock."""

    listing: ListingRef
    quantity: int
    observed_at: datetime | None = None


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
    ) -> None:
        """Re-sync the bucket from the channel's own figures (headers, GraphQL throttleStatus;
        see `nexus.ratelimit.headers`). `available=None`: the channel gave only its rates."""
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
    name: str
    capabilities: DriverCapabilities

    async def fetch_product(self, remote_id: str) -> NexusProduct: ...

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]: ...

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]: ...

    def verify_webhook(self, request: WebhookRequest) -> Awaitable[None] | None:
        """Raise WebhookSignatureError (or another WebhookError) unless the delivery is authentic.

        May be a coroutine (Amazon SNS fetches, and caches, the signing certificate)."""
        ...

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta: ...

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        """Raise WebhookPayloadError for a body the channel would never send."""
        ...

    def rate_limit_config(self) -> RateLimitConfig: ...


@runtime_checkable
class LevelReader(Protocol):
    """Optional: a driver that can read current levels. After a worker died mid-push, the next
    worker reads first and does not push again what the channel already shows."""

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        """The channel's current quantity per listing id; a listing it cannot read is left out."""
        ...


@runtime_checkable
class WebhookResolver(Protocol):
    """Optional: a driver whose deliveries do not carry everything (Etsy's `order.paid` holds only
    a `resource_url`; an SNS SubscriptionConfirmation must be confirmed by a fetch). The
    processor calls this, not `parse_webhook`, when it processes a stored delivery; the receiver
    still calls `parse_webhook` at ingest to refuse malformed bodies without any network call."""

    async def resolve_webhook(self, request: WebhookRequest) -> list[InboundEvent]: ...
