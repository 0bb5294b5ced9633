"""`WooCommerceSandbox`: a local WooCommerce store speaking the REST API v3 and sending webhooks.

One object holds the store, the API key, the host in front of it (rate limit and failure knobs),
the webhook dispatcher and the ASGI app. Serve `sandbox.app` with
`nexus.web.server.serve_app`; webhook delivery starts in whichever loop first emits or drains.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from starlette.applications import Starlette

from nexus.ratelimit.config import RateLimitConfig
from nexus.sandbox.barcodes import ean13
from nexus.sandbox.base import add_network_latency
from nexus.sandbox.delivery import DeliveryQueue, Faults
from nexus.sandbox.stats import SandboxStats
from nexus.sandbox.woocommerce.api import RestApi
from nexus.sandbox.woocommerce.app import build_app
from nexus.sandbox.woocommerce.auth import READ_WRITE, ApiKey
from nexus.sandbox.woocommerce.host import HostGate
from nexus.sandbox.woocommerce.payloads import order_json, product_json
from nexus.sandbox.woocommerce.store import (
    SIMPLE,
    VARIABLE,
    VARIATION,
    LineItem,
    Order,
    Product,
    Store,
    utc_now,
)
from nexus.sandbox.woocommerce.webhooks import Webhook, WebhookDispatcher

ORDER_CREATED = "order.created"
PRODUCT_UPDATED = "product.updated"


class WooCommerceSandbox:
    def __init__(
        self,
        *,
        site_url: str = "https://nexus-demo.example",
        consumer_key: str = "ck_sandbox",
        consumer_secret: str = "cs_sandbox",
        webhook_secret: str = "sandbox-webhook-secret",
        key_permissions: str = READ_WRITE,
        https_only: bool = False,
        batch_limit: int = 100,
        host_rate_limit: RateLimitConfig | None = None,
        time_scale: float = 1.0,
        drop_rate: float = 0.0,
        webhook_concurrency: int = 1,
        webhook_timeout: float = 60.0,
        parent_sync_webhook: bool = True,
        seed: int | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        latency_ms: float = 0.0,
    ) -> None:
        """Knobs beyond the shared spec:

        key_permissions: "read", "write" or "read_write", as chosen when the key was made.
        https_only: refuse basic auth over plain HTTP, as real WooCommerce does.
        batch_limit: the `woocommerce_rest_batch_items_limit` filter (100 by default).
        host_rate_limit: a limiter in front of the store (WooCommerce has none): over it, 429 with
            Retry-After. None (default) never throttles; `throttle_next` forces 429s anyway.
        parent_sync_webhook: a variation's stock change also saves its parent (WooCommerce's
            deferred product sync), which sends the parent's product.updated too.
        webhook_timeout: seconds a delivery waits for an answer (WooCommerce: 60).
        clock / monotonic: the store's GMT clock and the host limiter's clock (tests pass fakes).
        """
        faults = Faults(drop_rate=drop_rate)
        if batch_limit < 1:
            raise ValueError("batch_limit must be at least 1")
        self.site_url = site_url.rstrip("/")
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.webhook_secret = webhook_secret
        self.batch_limit = batch_limit
        self.time_scale = time_scale
        self.parent_sync_webhook = parent_sync_webhook
        self.api_key = ApiKey(consumer_key, consumer_secret, key_permissions, https_only)
        self.stats = SandboxStats()
        self.store = Store(clock)
        self.host = HostGate(
            capacity=host_rate_limit.capacity if host_rate_limit else None,
            refill_per_second=host_rate_limit.refill_per_second if host_rate_limit else None,
            time_scale=time_scale,
            clock=monotonic,
        )
        # id -> (code, message, status) a batch update of that product or variation is answered with
        self.item_faults: dict[int, tuple[str, str, int]] = {}
        self.webhooks = WebhookDispatcher(
            source=f"{self.site_url}/",
            stats=self.stats,
            build=self._payload,
            rng=random.Random(seed),
            faults=faults,
            timeout=webhook_timeout,
            concurrency=webhook_concurrency,
        )
        self.api = RestApi(self)
        self.app: Starlette = build_app(self)
        # latency_ms: a fixed network delay per request (`nexus.sandbox.base.NetworkLatency`).
        self.network = add_network_latency(self.app, latency_ms)
        self._seeded = 0

    # --- catalogue ---------------------------------------------------------------------------

    def add_simple_product(
        self,
        name: str,
        *,
        sku: str = "",
        quantity: int | None = 10,
        price: str = "10.00",
        barcode: str = "",
        manage_stock: bool = True,
    ) -> Product:
        product = Product(
            id=self.store.next_post_id(),
            type=SIMPLE,
            name=name,
            sku=sku,
            price=price,
            global_unique_id=barcode,
            manage_stock=manage_stock,
            stock_quantity=quantity if manage_stock else None,
            date_created=self.store.now(),
            date_modified=self.store.now(),
        )
        return self.store.add(product)

    def add_variable_product(self, name: str, variations: Sequence[Mapping[str, Any]]) -> Product:
        """Variation dicts take sku, quantity, price, barcode, manage_stock and `attributes`
        ({"Size": "M"}). Returns the parent; its `children` are the variation ids."""
        now = self.store.now()
        parent = self.store.add(
            Product(
                id=self.store.next_post_id(), type=VARIABLE, name=name, date_created=now, date_modified=now
            )
        )
        for spec in variations:
            manage = bool(spec.get("manage_stock", True))
            attributes = dict(spec.get("attributes") or {"Option": spec.get("sku") or "default"})
            self.store.add(
                Product(
                    id=self.store.next_post_id(),
                    type=VARIATION,
                    name=f"{name} - {', '.join(str(v) for v in attributes.values())}",
                    sku=str(spec.get("sku") or ""),
                    price=str(spec.get("price", "10.00")),
                    global_unique_id=str(spec.get("barcode") or ""),
                    manage_stock=manage,
                    stock_quantity=int(spec.get("quantity", 10)) if manage else None,
                    parent_id=parent.id,
                    attributes=[{"name": k, "option": v} for k, v in attributes.items()],
                    date_created=now,
                    date_modified=now,
                )
            )
        return parent

    def seed_catalog(self, count: int, *, quantity: int = 10, prefix: str = "SKU-") -> None:
        """One simple product per SKU; numbering starts at 1 and continues across calls.

        SKU = f"{prefix}{i:06d}", GTIN (global_unique_id) = ean13(i), price = 10.00 + (i % 90)."""
        for i in range(self._seeded + 1, self._seeded + count + 1):
            self.add_simple_product(
                f"Demo product {i:06d}",
                sku=f"{prefix}{i:06d}",
                quantity=quantity,
                price=f"{10 + i % 90}.00",
                barcode=ean13(i),
            )
        self._seeded += count

    def product_id(self, sku: str) -> int:
        """The product or variation id of a SKU; KeyError when unknown."""
        return self.store.by_sku_or_raise(sku).id

    def delete_product(self, product_id: int) -> None:
        """A merchant deleting a product for good (variations go with their parent)."""
        self.store.delete(product_id)

    def available(self, sku: str) -> int | None:
        product = self.store.by_sku_or_raise(sku)
        return product.stock_quantity if product.manage_stock else None

    def levels(self) -> dict[str, int]:
        """{sku: stock_quantity} of every product and variation that manages its stock."""
        return {
            p.sku: p.stock_quantity
            for p in self.store.products.values()
            if p.sku and p.manage_stock and p.stock_quantity is not None
        }

    # --- faults ------------------------------------------------------------------------------

    def throttle_next(self, count: int = 1, retry_after: int = 1) -> None:
        """The next `count` requests get the host's 429 with this Retry-After (seconds)."""
        self.host.throttle_next(count, retry_after)

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        """The next `count` requests get this 5xx from the host."""
        self.host.fail_next(count, status)

    def fail_item(
        self,
        product_id: int,
        code: str = "woocommerce_rest_product_not_created",
        message: str = "Could not save the product.",
        status: int = 400,
    ) -> None:
        """Batch updates of this product or variation are answered with this item error."""
        self.item_faults[product_id] = (code, message, status)

    # --- shop activity -----------------------------------------------------------------------

    def subscribe(self, topic: str, address: str) -> Webhook:
        """Create an active webhook ("order.created", "product.updated", ...) signed with
        `webhook_secret`; WooCommerce pings the address first."""
        return self.webhooks.create(topic, address, self.webhook_secret)

    async def simulate_sale(self, sku: str, quantity: int = 1) -> dict[str, Any] | None:
        """A storefront checkout, paid: an order in "processing" and the stock reduced.

        Returns the order JSON (as order.created delivers it), or None when the product manages
        stock, allows no backorders and has fewer than `quantity`. Emits order.created, then
        product.updated for the product whose stock was reduced (and its parent)."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        product = self.store.by_sku_or_raise(sku)
        if product.manage_stock and product.backorders == "no" and (product.stock_quantity or 0) < quantity:
            return None
        now = self.store.now()
        order = Order(
            id=self.store.next_post_id(),
            status="processing",
            lines=[LineItem(self.store.next_line_id(), product, quantity)],
            date_created=now,
            order_key=f"wc_order_{secrets.token_hex(6)}",
        )
        self.store.orders[order.id] = order
        self.stats.orders += 1
        self.webhooks.emit(ORDER_CREATED, order.id)
        if product.manage_stock:
            product.stock_quantity = (product.stock_quantity or 0) - quantity
            self.store.touch(product)
            self.products_saved([product])
        return order_json(self.store, order, self.site_url)

    @property
    def deliveries(self) -> DeliveryQueue[Any]:
        return self.webhooks

    async def set_available(self, sku: str, quantity: int) -> None:
        """A merchant editing the stock quantity in the admin (product.updated follows)."""
        product = self.store.by_sku_or_raise(sku)
        product.manage_stock = True
        product.stock_quantity = quantity
        self.store.touch(product)
        self.products_saved([product])

    def products_saved(self, products: Iterable[Product]) -> None:
        """What saving products makes WooCommerce send: product.updated per product, then one per
        parent whose variations changed (the deferred sync runs once at the end of the request)."""
        parents: list[int] = []
        for product in products:
            self.webhooks.emit(PRODUCT_UPDATED, product.id)
            if self.parent_sync_webhook and product.parent_id and product.parent_id not in parents:
                parents.append(product.parent_id)
        for parent_id in parents:
            parent = self.store.products.get(parent_id)
            if parent is not None:
                self.store.touch(parent)
                self.webhooks.emit(PRODUCT_UPDATED, parent_id)

    async def drain_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery was attempted (TimeoutError after `timeout`)."""
        await self.webhooks.drain(timeout)

    async def aclose(self) -> None:
        await self.webhooks.aclose()

    # --- internals ---------------------------------------------------------------------------

    def _payload(self, resource: str, resource_id: int) -> dict[str, Any] | None:
        """The REST v3 body of a delivery, rendered when it runs (as WooCommerce's async job does)."""
        if resource == "order":
            order = self.store.orders.get(resource_id)
            return order_json(self.store, order, self.site_url) if order is not None else None
        product = self.store.products.get(resource_id)
        return product_json(self.store, product, self.site_url) if product is not None else None
