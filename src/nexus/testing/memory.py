"""`MemoryChannel`: a whole channel held in memory, for tests and for trying Nexus without a shop.

It is a real `InventoryDriver` (it passes `DriverConformance`), so the engine treats it exactly like
Shopify or Etsy: batches, compare-and-set answers, reads, webhooks with signatures. What a test
needs on top is plain data and a few methods:

    memory = MemoryChannel.factory(max_batch_size=3)
    nexus.extend("memory", memory)              # [channels.shop] driver = "memory"
    shop = memory["shop"]                       # the channel built for `shop` (built on first use)

    shop.add_product("SKU-1", quantity=5)       # the catalogue list_products / fetch_product serve
    shop.levels["SKU-1"]                        # what the channel shows, by remote id
    shop.simulate_sale("SKU-1", 2)              # a buyer takes two units on the channel
    shop.fail_next_push(TransientChannelError("503", status=503))
    shop.fail_listing(QuotaExhausted("daily quota spent", retry_after=60), sku="SKU-1")
    request = shop.webhook(SaleEvent(ListingRef(remote_id="SKU-1"), 2, "order-1", "1"))

Pushes are recorded (`push_calls`, one list per request; `pushed`, every update), and so are
reads (`read_calls`). `gate`, `entered` and `during_push` let a test hold a push open or act
while it is in flight.

Webhooks: the body is JSON, `{"sales": [...], "levels": [...]}`, each entry naming its listing by
`remote_id`, `inventory_id` or `sku`, for the topic "stock" (the default); any other topic carries
nothing Nexus reads. `X-Memory-Signature` is base64(HMAC-SHA256(secret, raw body)); the topic,
delivery id and event id ride in `X-Memory-Topic`, `X-Memory-Delivery-Id` and `X-Memory-Event-Id`
(`header_prefix` names them). The secret is the `secret` option, else the channel's `secret`
credential, else `DEFAULT_SECRET`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    ListingRef,
    ObservedLevel,
    SaleEvent,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, NexusVariant, Page, PushResult
from nexus.errors import TerminalChannelError, WebhookPayloadError, WebhookSignatureError
from nexus.ratelimit.config import RateLimitConfig

DEFAULT_SECRET = "memory-secret"
STOCK_TOPIC = "stock"

Plan = Callable[[NexusInventoryUpdate], PushResult | None]
Channel = TypeVar("Channel", bound="MemoryChannel")


def sign(body: bytes, secret: str = DEFAULT_SECRET) -> str:
    """The signature a memory channel puts on `body`: base64(HMAC-SHA256(secret, body))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def encode_events(events: Sequence[InboundEvent]) -> dict[str, Any]:
    """The JSON body carrying `events` (absent fields are left out)."""
    sales: list[dict[str, Any]] = []
    levels: list[dict[str, Any]] = []
    for event in events:
        entry = _ref_fields(event.listing)
        entry["quantity"] = event.quantity
        if isinstance(event, SaleEvent):
            entry.update(order_id=event.order_id, line_id=event.line_id)
            if event.occurred_at is not None:
                entry["occurred_at"] = event.occurred_at.isoformat()
            sales.append(entry)
        else:
            if event.observed_at is not None:
                entry["observed_at"] = event.observed_at.isoformat()
            levels.append(entry)
    body: dict[str, Any] = {}
    if sales:
        body["sales"] = sales
    if levels:
        body["levels"] = levels
    return body


def signed_headers(
    body: bytes,
    *,
    secret: str = DEFAULT_SECRET,
    prefix: str = "X-Memory",
    topic: str | None = None,
    delivery_id: str | None = None,
    event_id: str | None = None,
    signature: str | None = None,
) -> dict[str, str]:
    """The headers a memory channel sends with `body` (`signature` replaces the real one)."""
    signed = signature if signature is not None else sign(body, secret)
    headers = {"Content-Type": "application/json", f"{prefix}-Signature": signed}
    for suffix, value in (("Topic", topic), ("Delivery-Id", delivery_id), ("Event-Id", event_id)):
        if value is not None:
            headers[f"{prefix}-{suffix}"] = value
    return headers


@dataclass
class _Failure:
    error: BaseException
    times: int | None  # None: until cleared
    raises: bool = False
    listing_id: int | None = None
    remote_id: str | None = None
    sku: str | None = None

    def matches(self, update: NexusInventoryUpdate) -> bool:
        return (
            (self.listing_id is None or self.listing_id == update.listing_id)
            and (self.remote_id is None or self.remote_id == update.remote_id)
            and (self.sku is None or self.sku == update.sku)
        )

    def use(self) -> BaseException:
        if self.times is not None:
            self.times -= 1
        return self.error


class MemoryChannel(InventoryDriver):
    """A channel held in dicts: a catalogue, the level each listing shows, and a script of failures.

    Options (keywords; `MemoryChannel.factory(**options)` passes them on):
      max_batch_size, compare_and_set, reads_levels, sales_from_orders, stamp_precision,
        levels_book_sales: the `DriverCapabilities` it declares, and honours (with
        compare_and_set off it never answers stale; a batch over the limit is refused).
      refuse_unknown: a push to a remote id neither in the catalogue nor in `levels` fails
        (terminal, alone), as on a real channel. Off by default: any listing is accepted.
      secret: the webhook signing secret (default: the `secret` credential, else DEFAULT_SECRET).
      rate_limit: what `rate_limit_config()` answers. Every push and read takes one token from
        the context's bucket when the channel was built with a context.
    """

    name = "memory"
    header_prefix = "X-Memory"

    def __init__(
        self,
        context: ChannelContext | None = None,
        *,
        max_batch_size: int = 50,
        compare_and_set: bool = True,
        reads_levels: bool = True,
        sales_from_orders: bool = True,
        stamp_precision: float = 1.0,
        levels_book_sales: bool | None = None,
        refuse_unknown: bool = False,
        secret: str | None = None,
        rate_limit: RateLimitConfig | None = None,
        max_in_flight: int = 1,
    ) -> None:
        self.context = context
        self.capabilities = DriverCapabilities(
            max_batch_size=max_batch_size,
            compare_and_set=compare_and_set,
            sales_from_orders=sales_from_orders,
            stamp_precision=stamp_precision,
            levels_book_sales=levels_book_sales,
            reads_levels=reads_levels,
            max_in_flight=max_in_flight,
        )
        self.refuse_unknown = refuse_unknown
        credential = context.credentials.get("secret") if context is not None else None
        self.secret = secret if secret is not None else (credential or DEFAULT_SECRET)
        self.rate_limit = rate_limit or RateLimitConfig(1_000, 1_000)
        # What the channel shows, by remote id. Tests read and write it directly.
        self.levels: dict[str, int] = {}
        # Products by product id, in the order they were added (variants' quantities come from `levels`).
        self.catalog: dict[str, NexusProduct] = {}
        # The channel's own timestamp on the quantities it acknowledges (None: it stamps nothing).
        self.stamp: datetime | None = None
        self.push_calls: list[list[NexusInventoryUpdate]] = []
        self.read_calls: list[list[int]] = []
        # Answers for an update instead of the channel (return None to let the channel answer).
        self.plan: Plan | None = None
        # Awaited once inside the next push, after it reached the channel and before the answer
        # is read (a sale while the push is in flight); `gate` holds every push open until set.
        self.during_push: Callable[[], Awaitable[None]] | None = None
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()  # set when a push reaches the channel
        self._call_failures: list[BaseException] = []
        self._listing_failures: list[_Failure] = []

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def factory(cls: type[Channel], **options: Any) -> MemoryChannelFactory[Channel]:
        """A driver factory for `Nexus.extend`, building one channel per configured channel name
        with `options`; index it by channel name to get the channel it built."""
        return MemoryChannelFactory(cls, options)

    # -- what a test sets -------------------------------------------------------------------

    def add_product(
        self,
        sku: str,
        quantity: int | None = None,
        *,
        remote_id: str | None = None,
        product_id: str | None = None,
        title: str | None = None,
        barcode: str | None = None,
    ) -> NexusVariant:
        """Put a variant in the catalogue (its remote id defaults to the SKU; a new product of its
        own unless `product_id` names one already there), showing `quantity` when given."""
        variant = NexusVariant(remote_id=remote_id or sku, sku=sku, title=title or sku, barcode=barcode)
        product_id = product_id or f"p-{variant.remote_id}"
        product = self.catalog.get(product_id)
        if product is None:
            self.catalog[product_id] = NexusProduct(product_id, title or sku, (variant,))
        else:
            self.catalog[product_id] = NexusProduct(product_id, product.title, (*product.variants, variant))
        if quantity is not None:
            self.levels[variant.remote_id] = quantity
        return variant

    def simulate_sale(self, remote_id: str, quantity: int = 1) -> int:
        """A buyer takes `quantity` units on the channel; returns the level it now shows."""
        self.levels[remote_id] = self.levels.get(remote_id, 0) - quantity
        return self.levels[remote_id]

    def fail_next_push(self, error: BaseException, *, times: int = 1) -> None:
        """The next `times` push requests raise `error` (nothing lands): a
        `TransientChannelError`, a `TerminalChannelError`, or any exception, as a driver bug."""
        self._call_failures.extend([error] * times)

    def fail_listing(
        self,
        error: BaseException,
        *,
        listing_id: int | None = None,
        remote_id: str | None = None,
        sku: str | None = None,
        times: int | None = 1,
        raises: bool = False,
    ) -> None:
        """The next `times` pushes (None: every one, until `clear_failures`) of the listings
        matching all the given keys fail with `error`: answered alone as
        `PushResult.from_error` (transient -> retry, `QuotaExhausted` -> retry using no attempt,
        terminal -> terminal), or, with `raises`, raised out of the whole request."""
        if listing_id is None and remote_id is None and sku is None:
            raise ValueError("name the listing: listing_id, remote_id or sku")
        self._listing_failures.append(_Failure(error, times, raises, listing_id, remote_id, sku))

    def clear_failures(self) -> None:
        self._call_failures.clear()
        self._listing_failures.clear()

    @property
    def pushed(self) -> list[NexusInventoryUpdate]:
        """Every update pushed, in order, across requests."""
        return [update for call in self.push_calls for update in call]

    # -- the driver contract ------------------------------------------------------------------

    def rate_limit_config(self) -> RateLimitConfig:
        return self.rate_limit

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        await self._take_token()
        self.push_calls.append(list(updates))
        self.entered.set()
        if self._call_failures:
            raise self._call_failures.pop(0)
        if len(updates) > self.capabilities.max_batch_size:
            raise TerminalChannelError(
                f"413 batch of {len(updates)} over the limit of {self.capabilities.max_batch_size}",
                status=413,
            )
        for update in updates:
            failure = self._failure_for(update, raising=True)
            if failure is not None:
                raise failure.use()
        results = [self._answer(update) for update in updates]
        self._listing_failures = [f for f in self._listing_failures if f.times is None or f.times > 0]
        if self.during_push is not None:
            hook, self.during_push = self.during_push, None
            await hook()
        if self.gate is not None:
            await self.gate.wait()
        return results

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        await self._take_token()
        self.read_calls.append([u.listing_id for u in updates])
        return {u.listing_id: self.levels[u.remote_id] for u in updates if u.remote_id in self.levels}

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        start = int(cursor or 0)
        products = list(self.catalog.values())[start : start + per_page]
        following = start + per_page
        return Page(
            items=[self._with_levels(p) for p in products],
            next_cursor=str(following) if following < len(self.catalog) else None,
        )

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        product = self.catalog.get(remote_id)
        if product is None:
            raise TerminalChannelError(f"404 no product {remote_id!r}", status=404)
        return self._with_levels(product)

    async def verify_webhook(self, request: WebhookRequest) -> None:
        header = f"{self.header_prefix}-Signature"
        received = request.header(header)
        if not received:
            raise WebhookSignatureError(f"missing {header} header")
        try:
            digest = base64.b64decode(received, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WebhookSignatureError(f"{header} is not base64") from exc
        expected = hmac.new(self.secret.encode(), request.body, hashlib.sha256).digest()
        if not self.secret or not hmac.compare_digest(digest, expected):
            raise WebhookSignatureError(f"{header} does not match the body")

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        prefix = self.header_prefix
        return WebhookMeta(
            topic=request.header(f"{prefix}-Topic") or STOCK_TOPIC,
            delivery_id=request.header(f"{prefix}-Delivery-Id"),
            event_id=request.header(f"{prefix}-Event-Id"),
        )

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        if self.describe_webhook(request).topic != STOCK_TOPIC:
            return []
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise WebhookPayloadError("body is not a JSON object")
            events: list[InboundEvent] = [
                SaleEvent(
                    listing=_ref(sale),
                    quantity=int(sale["quantity"]),
                    order_id=str(sale["order_id"]),
                    line_id=str(sale["line_id"]),
                    occurred_at=_stamp(sale.get("occurred_at")),
                )
                for sale in body.get("sales", [])
            ]
            events.extend(
                ObservedLevel(
                    listing=_ref(level),
                    quantity=int(level["quantity"]),
                    # unstamped in the body: stamped when the delivery was received
                    observed_at=_stamp(level.get("observed_at")) or request.received_at,
                )
                for level in body.get("levels", [])
            )
        except WebhookPayloadError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookPayloadError(f"not a memory channel body: {exc!r}") from exc
        return events

    # -- building deliveries ------------------------------------------------------------------

    def sign(self, body: bytes) -> str:
        return sign(body, self.secret)

    def headers(
        self,
        body: bytes,
        *,
        topic: str | None = None,
        delivery_id: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, str]:
        """The headers this channel sends with `body`, signed (as for an HTTP client)."""
        return signed_headers(
            body,
            secret=self.secret,
            prefix=self.header_prefix,
            topic=topic,
            delivery_id=delivery_id,
            event_id=event_id,
        )

    def webhook(
        self,
        *events: InboundEvent,
        topic: str | None = None,
        delivery_id: str | None = None,
        event_id: str | None = None,
        received_at: datetime | None = None,
        body: bytes | None = None,
    ) -> WebhookRequest:
        """A signed delivery carrying `events` (or the raw `body`), as the receiver gets it."""
        if body is None:
            body = json.dumps(encode_events(events)).encode()
        headers = self.headers(body, topic=topic, delivery_id=delivery_id, event_id=event_id)
        return WebhookRequest(
            channel=self.context.name if self.context is not None else self.name,
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
            received_at=received_at or datetime.now(UTC),
        )

    # -- inside -------------------------------------------------------------------------------

    async def _take_token(self) -> None:
        if self.context is not None:
            await self.context.rate.acquire(1)

    def _failure_for(self, update: NexusInventoryUpdate, *, raising: bool) -> _Failure | None:
        for failure in self._listing_failures:
            live = failure.times is None or failure.times > 0
            if live and failure.raises is raising and failure.matches(update):
                return failure
        return None

    def _answer(self, update: NexusInventoryUpdate) -> PushResult:
        failure = self._failure_for(update, raising=False)
        if failure is not None:
            error = failure.use()
            if not isinstance(error, Exception):
                raise error
            return PushResult.from_error(update.listing_id, error)
        planned = self.plan(update) if self.plan is not None else None
        if planned is not None:
            return planned
        current = self.levels.get(update.remote_id)
        if current is None and self.refuse_unknown and not self._in_catalog(update.remote_id):
            return PushResult.terminal(update.listing_id, f"404 unknown listing {update.remote_id!r}")
        if (
            self.capabilities.compare_and_set
            and update.change_from is not None
            and current is not None
            and current != update.change_from
        ):
            return PushResult.stale(update.listing_id, current)
        self.levels[update.remote_id] = update.quantity
        return PushResult.ok(update.listing_id, update.quantity, remote_updated_at=self.stamp)

    def _in_catalog(self, remote_id: str) -> bool:
        return any(v.remote_id == remote_id for p in self.catalog.values() for v in p.variants)

    def _with_levels(self, product: NexusProduct) -> NexusProduct:
        variants = tuple(
            NexusVariant(
                remote_id=v.remote_id,
                sku=v.sku,
                title=v.title,
                quantity=self.levels.get(v.remote_id),
                barcode=v.barcode,
            )
            for v in product.variants
        )
        return NexusProduct(product.remote_id, product.title, variants)


@dataclass
class MemoryChannelFactory(Generic[Channel]):
    """Builds a `MemoryChannel` (or subclass) per channel name and keeps them: `factory["shop"]`."""

    cls: type[Channel]
    options: Mapping[str, Any] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)

    def __call__(self, context: ChannelContext) -> Channel:
        channel = self.cls(context, **self.options)
        self.channels[context.name] = channel
        return channel

    def __getitem__(self, name: str) -> Channel:
        return self.channels[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.channels)


def _ref_fields(ref: ListingRef) -> dict[str, Any]:
    fields = {"remote_id": ref.remote_id, "inventory_id": ref.inventory_id, "sku": ref.remote_sku}
    return {key: value for key, value in fields.items() if value is not None}


def _ref(entry: Mapping[str, Any]) -> ListingRef:
    ref = ListingRef(
        remote_id=_text(entry.get("remote_id")),
        inventory_id=_text(entry.get("inventory_id")),
        remote_sku=_text(entry.get("sku")),
    )
    if ref == ListingRef():
        raise WebhookPayloadError("an entry names no listing (remote_id, inventory_id or sku)")
    return ref


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _stamp(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
