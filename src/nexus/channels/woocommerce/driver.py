"""The WooCommerce driver: stock through the batch endpoints, imports, webhooks.

Push semantics: `{"update": [{"id", "manage_stock": true, "stock_quantity"}]}` to
`POST /products/batch` for simple products, and to `POST /products/{parent}/variations/batch` for
the variations of each parent, at most 100 objects per request. So one push fans out into one
request per endpoint and chunk. A batch is not all-or-nothing: each `update[]` entry is the saved
product or `{"id", "error": {"code", "message", "data": {"status"}}}`, and each listing gets its
own result. Writes are absolute quantities, so re-sending one is harmless; WooCommerce has no
compare-and-set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nexus.channels.wire import parse_timestamp
from nexus.channels.woocommerce import webhooks
from nexus.channels.woocommerce.client import BatchTooLargeError, WooCommerceClient
from nexus.channels.woocommerce.normalize import (
    SUPPORTED_TYPES,
    VARIABLE,
    VARIATION,
    managed_quantity,
    product_from_woocommerce,
    woo_id,
)
from nexus.channels.woocommerce.settings import WooCommerceSettings
from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, Page, PushResult
from nexus.errors import ChannelError, TerminalChannelError, TransientChannelError
from nexus.ratelimit.config import RateLimitConfig

# No limit is built into WooCommerce; this is Nexus's polite default for a self-hosted shop.
DEFAULT_RATE_LIMIT = RateLimitConfig(capacity=100, refill_per_second=25)
PER_PAGE_MAX = 100
PRODUCTS_BATCH = "/products/batch"
# Item errors worth another try: the store failed, or the item was locked by a concurrent save.
_RETRYABLE_ITEM_STATUSES = frozenset({408, 409, 423, 425, 429})

Indexes = list[int]


class WooCommerceDriver(InventoryDriver):
    name = "woocommerce"

    def __init__(self, ctx: ChannelContext, settings: WooCommerceSettings | None = None) -> None:
        self.settings = settings or WooCommerceSettings.from_context(ctx)
        self.capabilities = DriverCapabilities(
            max_batch_size=self.settings.batch_limit,
            compare_and_set=False,
            reads_levels=True,
            read_batch_size=PER_PAGE_MAX,
            # A modest number: each batch request holds one of the shop's PHP workers for
            # seconds, and a small WordPress host has few.
            max_in_flight=2,
        )
        self.client = WooCommerceClient(
            http=ctx.http,
            rate=ctx.rate,
            base_url=self.settings.base_url,
            consumer_key=self.settings.consumer_key,
            consumer_secret=self.settings.consumer_secret,
            auth=self.settings.auth,
        )
        # Lowered when the store answers 413 (its batch limit filter is below ours).
        self.batch_limit = self.settings.batch_limit

    def rate_limit_config(self) -> RateLimitConfig:
        return DEFAULT_RATE_LIMIT

    # -- products ---------------------------------------------------------------------------------

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        """One page of products (oldest id first, so new products do not shift the pages).

        Grouped and external products (no stock) and variable products without variations are left
        out; each variable product costs extra requests for its variations."""
        page = _page_number(cursor)
        size = max(1, min(per_page, PER_PAGE_MAX))
        response = await self.client.get(
            "/products", {"page": page, "per_page": size, "orderby": "id", "order": "asc"}
        )
        items = response.payload if isinstance(response.payload, list) else None
        if items is None:
            raise TransientChannelError("WooCommerce products answer is not a list")
        products: list[NexusProduct] = []
        for item in items:
            if not isinstance(item, Mapping) or item.get("type") not in SUPPORTED_TYPES:
                continue
            product = await self._normalized(item)
            if product is not None:
                products.append(product)
        total_pages = _total_pages(response.headers)
        has_next = page < total_pages if total_pages is not None else len(items) == size
        return Page(items=products, next_cursor=str(page + 1) if has_next else None)

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        """A product by its id; a variation id fetches its parent product."""
        item = await self._get_product(remote_id)
        if item.get("type") == VARIATION:
            item = await self._get_product(str(item.get("parent_id")))
        if item.get("type") not in SUPPORTED_TYPES:
            raise TerminalChannelError(
                f"WooCommerce product {remote_id} is {item.get('type')!r}: it holds no stock", payload=item
            )
        product = await self._normalized(item)
        if product is None:
            raise TerminalChannelError(f"variable WooCommerce product {remote_id} has no variations")
        return product

    async def _get_product(self, remote_id: str) -> Mapping[str, Any]:
        try:
            path = f"/products/{woo_id(remote_id)}"
        except ValueError as exc:
            raise TerminalChannelError(f"not a WooCommerce product id: {remote_id!r}") from exc
        response = await self.client.get(path)
        if not isinstance(response.payload, Mapping):
            raise TransientChannelError(f"WooCommerce answered GET {path} without a product")
        return response.payload

    async def _normalized(self, item: Mapping[str, Any]) -> NexusProduct | None:
        try:
            if item.get("type") != VARIABLE:
                return product_from_woocommerce(item)
            variations = await self._variations(woo_id(item.get("id")))
            return product_from_woocommerce(item, variations) if variations else None
        except ValueError as exc:
            raise TerminalChannelError(
                f"WooCommerce sent a product Nexus cannot read: {exc}", payload=item
            ) from exc

    async def _variations(
        self, product_id: str, include: Sequence[str] | None = None
    ) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        page = 1
        while True:
            params: dict[str, str | int] = {
                "page": page,
                "per_page": PER_PAGE_MAX,
                "orderby": "id",
                "order": "asc",
            }
            if include:
                params["include"] = ",".join(include)
            response = await self.client.get(f"/products/{product_id}/variations", params)
            items = response.payload if isinstance(response.payload, list) else []
            found.extend(v for v in items if isinstance(v, Mapping))
            total_pages = _total_pages(response.headers)
            if (total_pages is not None and page >= total_pages) or (
                total_pages is None and len(items) < PER_PAGE_MAX
            ):
                return found
            page += 1

    # -- pushing ----------------------------------------------------------------------------------

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        """One result per update, same order. Channel failures become results, never exceptions."""
        results: dict[int, PushResult] = {}
        groups: dict[str, Indexes] = {}  # endpoint path -> indexes into `updates`
        seen: set[str] = set()
        for index, update in enumerate(updates):
            try:
                remote_id = woo_id(update.remote_id)
                path = _batch_path(_parent_id(update.channel_meta))
            except ValueError as exc:
                results[index] = PushResult.terminal(
                    update.listing_id,
                    f"listing cannot be written to WooCommerce: {exc}",
                    detail={"remote_id": update.remote_id, "channel_meta": dict(update.channel_meta)},
                )
                continue
            if remote_id in seen:
                results[index] = PushResult.terminal(
                    update.listing_id,
                    "the same WooCommerce product appears twice in one push",
                    detail={"remote_id": remote_id},
                )
                continue
            seen.add(remote_id)
            groups.setdefault(path, []).append(index)
        for path, indexes in groups.items():
            for start in range(0, len(indexes), self.batch_limit):
                results.update(
                    await self._send_batch(path, updates, indexes[start : start + self.batch_limit])
                )
        return [results[i] for i in range(len(updates))]

    async def _send_batch(
        self, path: str, updates: Sequence[NexusInventoryUpdate], indexes: Indexes
    ) -> dict[int, PushResult]:
        body = {"update": [self._item(updates[i]) for i in indexes]}
        try:
            response = await self.client.post(path, body)
        except BatchTooLargeError as exc:
            return await self._resend_smaller(path, updates, indexes, exc)
        except ChannelError as exc:
            return {i: PushResult.from_error(updates[i].listing_id, exc) for i in indexes}
        entries = response.payload.get("update") if isinstance(response.payload, Mapping) else None
        by_id: dict[str, Mapping[str, Any]] = {}
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, Mapping) and entry.get("id") is not None:
                by_id[str(entry.get("id"))] = entry
        results: dict[int, PushResult] = {}
        for index in indexes:
            update = updates[index]
            entry = by_id.get(woo_id(update.remote_id))
            if entry is None:
                results[index] = PushResult.retry(
                    update.listing_id, f"WooCommerce answered {path} without this item"
                )
            elif isinstance(entry.get("error"), Mapping):
                results[index] = _item_error(update, entry["error"])
            else:
                results[index] = _item_saved(update, entry)
        return results

    async def _resend_smaller(
        self, path: str, updates: Sequence[NexusInventoryUpdate], indexes: Indexes, error: BatchTooLargeError
    ) -> dict[int, PushResult]:
        limit = error.limit if error.limit is not None else len(indexes) // 2
        if not 1 <= limit < len(indexes):
            return {i: PushResult.from_error(updates[i].listing_id, error) for i in indexes}
        self.batch_limit = limit  # remembered: later pushes use the store's limit from the start
        results: dict[int, PushResult] = {}
        for start in range(0, len(indexes), limit):
            results.update(await self._send_batch(path, updates, indexes[start : start + limit]))
        return results

    def _item(self, update: NexusInventoryUpdate) -> dict[str, Any]:
        item: dict[str, Any] = {"id": int(woo_id(update.remote_id)), "stock_quantity": update.quantity}
        if self.settings.manage_stock:
            # WooCommerce drops stock_quantity unless the product manages stock.
            item["manage_stock"] = True
        return item

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        """Current stock per listing id, read with `include=` (100 per request)."""
        by_parent: dict[str | None, dict[str, int]] = {}  # parent id -> remote id -> listing id
        for update in updates:
            try:
                parent = _parent_id(update.channel_meta)
                by_parent.setdefault(parent, {})[woo_id(update.remote_id)] = update.listing_id
            except ValueError:
                continue
        found: dict[int, int] = {}
        for parent, listings in by_parent.items():
            ids = list(listings)
            for start in range(0, len(ids), PER_PAGE_MAX):
                chunk = ids[start : start + PER_PAGE_MAX]
                if parent is None:
                    response = await self.client.get(
                        "/products", {"include": ",".join(chunk), "per_page": PER_PAGE_MAX}
                    )
                    items = response.payload if isinstance(response.payload, list) else []
                else:
                    items = await self._variations(parent, include=chunk)
                for item in items:
                    quantity = managed_quantity(item) if isinstance(item, Mapping) else None
                    listing = listings.get(str(item.get("id"))) if isinstance(item, Mapping) else None
                    if quantity is not None and listing is not None:
                        found[listing] = quantity
        return found

    # -- webhooks ---------------------------------------------------------------------------------

    async def verify_webhook(self, request: WebhookRequest) -> None:
        webhooks.verify(request, self.settings.webhook_secret)

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        return webhooks.describe(request)

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        return webhooks.parse(request, sale_statuses=self.settings.sale_statuses)


def _parent_id(channel_meta: Mapping[str, Any]) -> str | None:
    """The parent product of a variation listing (set at import); None for a simple product."""
    parent = channel_meta.get("parent_id")
    return None if parent in (None, "", 0) else woo_id(parent)


def _batch_path(parent_id: str | None) -> str:
    """Variations are written through their parent's endpoint; everything else through products."""
    return PRODUCTS_BATCH if parent_id is None else f"/products/{parent_id}/variations/batch"


def _item_saved(update: NexusInventoryUpdate, entry: Mapping[str, Any]) -> PushResult:
    quantity = managed_quantity(entry)
    if quantity is None:
        return PushResult.terminal(
            update.listing_id,
            "WooCommerce saved the product but does not manage its stock (manage_stock is off)",
            detail={"manage_stock": entry.get("manage_stock"), "stock_quantity": entry.get("stock_quantity")},
        )
    return PushResult.ok(
        update.listing_id, quantity, remote_updated_at=parse_timestamp(entry.get("date_modified_gmt"))
    )


def _item_error(update: NexusInventoryUpdate, error: Mapping[str, Any]) -> PushResult:
    data = error.get("data")
    status = data.get("status") if isinstance(data, Mapping) else None
    code = str(error.get("code") or "unknown_error")
    message = f"{code}: {error.get('message') or 'no message'}"
    if isinstance(status, int) and (status >= 500 or status in _RETRYABLE_ITEM_STATUSES):
        return PushResult.retry(update.listing_id, message)
    # Invalid id (deleted product, variation of another parent), invalid value ...: the same
    # write would be refused again.
    return PushResult.terminal(update.listing_id, message, detail={"error": dict(error)})


def _page_number(cursor: str | None) -> int:
    if cursor is None:
        return 1
    if not cursor.isdigit() or int(cursor) < 1:
        raise TerminalChannelError(f"not a WooCommerce page cursor: {cursor!r}")
    return int(cursor)


def _total_pages(headers: Mapping[str, str]) -> int | None:
    value = headers.get("X-WP-TotalPages")
    return int(value) if value is not None and value.strip().isdigit() else None
