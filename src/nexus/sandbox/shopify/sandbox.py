"""`ShopifySandbox`: a local Shopify store that speaks the Admin GraphQL API and sends webhooks.

One object holds the shop (store), its point bucket, its webhook dispatcher and the ASGI app
that serves them. The demo and the tests serve `sandbox.app` with
`nexus.web.server.serve_app` in the same event loop as everything else; webhook delivery
starts lazily in whichever loop first emits or drains.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette

from nexus.sandbox.barcodes import ean13
from nexus.sandbox.base import add_network_latency
from nexus.sandbox.delivery import DeliveryQueue, Faults
from nexus.sandbox.shopify.api import AdminGraphQL
from nexus.sandbox.shopify.app import build_app
from nexus.sandbox.shopify.inventory import InventorySetter
from nexus.sandbox.shopify.payloads import inventory_level_update, order_created
from nexus.sandbox.shopify.store import InventoryLevel, Store, gid
from nexus.sandbox.shopify.throttle import LeakyBucket
from nexus.sandbox.shopify.webhooks import WebhookDispatcher, retry_policy
from nexus.sandbox.stats import SandboxStats

ORDERS_CREATE = "orders/create"
INVENTORY_LEVELS_UPDATE = "inventory_levels/update"


class ShopifySandbox:
    def __init__(
        self,
        *,
        shop_domain: str = "nexus-demo.myshopify.com",
        access_token: str = "shpat_sandbox",
        webhook_secret: str = "sandbox-webhook-secret",
        api_version: str = "2026-10",
        maximum_available: float = 2000,
        restore_rate: float = 100,
        time_scale: float = 1.0,
        throttled_status: int = 200,
        duplicate_rate: float = 0.0,
        reorder: bool = False,
        drop_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
        stale_field_path: bool = True,
        replay_idempotent: bool = True,
        webhook_retry_base_seconds: float = 60.0,
        webhook_concurrency: int = 1,
        response_latency: float = 0.0,
        latency_ms: float = 0.0,
    ) -> None:
        """Extra knobs beyond the shared spec:

        clock: the monotonic clock of the point bucket (tests pass a fake one).
        stale_field_path: False answers CHANGE_FROM_QUANTITY_STALE with `field: null`, as live
            2026-07 development stores were seen to do.
        replay_idempotent: False re-executes a retry with a known idempotency key instead of
            replaying the original result (also reported from a live shop).
        webhook_retry_base_seconds: first retry delay, doubled per retry, divided by time_scale.
        webhook_concurrency: delivery workers (1 keeps deliveries in emission order).
        response_latency: seconds between executing a GraphQL request and answering it (a slow
            network on the way back: the change is applied, the client does not know yet).
        """
        if throttled_status not in (200, 429):
            raise ValueError("throttled_status must be 200 or 429")
        faults = Faults(drop_rate=drop_rate, duplicate_rate=duplicate_rate, reorder=reorder)
        self.shop_domain = shop_domain
        self.access_token = access_token
        # False: every Admin API request is refused with 401, whatever token it carries
        # (`revoke_token`; POST /_sandbox/credentials {"valid": false}).
        self.credentials_valid = True
        self.webhook_secret = webhook_secret
        self.api_version = api_version
        self.time_scale = time_scale
        self.response_latency = response_latency
        self.stats = SandboxStats()
        self._rng = random.Random(seed)
        self._store = Store()
        self.bucket = LeakyBucket(
            maximum_available, restore_rate, time_scale=time_scale, clock=clock or time.monotonic
        )
        self._setter = InventorySetter(
            self._store, stale_field_path=stale_field_path, replay_idempotent=replay_idempotent
        )
        self.webhooks = WebhookDispatcher(
            shop_domain=shop_domain,
            secret=webhook_secret,
            api_version=api_version,
            stats=self.stats,
            rng=self._rng,
            time_scale=time_scale,
            faults=faults,
            policy=retry_policy(webhook_retry_base_seconds),
            concurrency=webhook_concurrency,
        )
        self.graphql = AdminGraphQL(self, self.bucket, self.stats, throttled_status=throttled_status)
        self.app: Starlette = build_app(self)
        # latency_ms: a fixed network delay per request (`nexus.sandbox.base.NetworkLatency`).
        self.network = add_network_latency(self.app, latency_ms)
        self._next_order_number = 1001
        self._seeded = 0
        self._failures: list[tuple[int, float | None]] = []  # refusals still to answer (fail_next)
        self._lost: list[int | None] = []  # each applied-then-lost answer still to come (lose_next)

    # --- fault knobs (not Shopify behaviour: a test breaks the store on purpose) ----------------

    def fail_next(self, count: int = 1, status: int = 503, *, retry_after: float | None = None) -> None:
        """The next `count` Admin API requests are answered `status` without running at all: an
        outage (a 5xx from Shopify or from something in front of it), or with 429 a storm of bare
        rate-limit refusals, with `Retry-After: retry_after` when given."""
        self._failures.extend([(status, retry_after)] * count)

    def lose_next(self, count: int = 1, status: int | None = 502) -> None:
        """The next `count` inventorySetQuantities calls that change something are APPLIED, and
        then their answer is lost: replaced by `status` (a 5xx from a proxy that gave up), or with
        `status=None` by a connection closed before any answer. The client cannot tell whether
        the change landed; the next read shows it did."""
        self._lost.extend([status] * count)

    def revoke_token(self) -> None:
        """The merchant uninstalled the app or rotated the token: every request is refused (401)."""
        self.credentials_valid = False

    def restore_token(self) -> None:
        """The token works again."""
        self.credentials_valid = True

    def heal(self) -> None:
        """The outage is over: forget what `fail_next` and `lose_next` still had queued."""
        self._failures.clear()
        self._lost.clear()

    def take_failure(self) -> tuple[int, float | None] | None:
        """(status, Retry-After) to refuse the current request with, if `fail_next` queued one."""
        if not self._failures:
            return None
        status, retry_after = self._failures.pop(0)
        if status == 429:
            self.stats.throttled += 1
        else:
            self.stats.failed += 1
        return status, retry_after

    def take_lost_answer(self, applied: bool) -> tuple[bool, int | None]:
        """(lose it, status or None for a dropped connection) for a request that just ran;
        only a request that applied quantities consumes a `lose_next`."""
        if not applied or not self._lost:
            return False, None
        self.stats.answers_lost += 1
        return True, self._lost.pop(0)

    # --- ShopBackend (used by the GraphQL resolvers) ----------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    def set_inventory_quantities(self, data: Mapping[str, Any], key: str) -> dict[str, Any]:
        outcome = self._setter.set_quantities(data, key)
        if outcome.replayed:
            self.stats.idempotent_replays += 1
            return outcome.payload
        self.stats.mutations += 1
        if outcome.payload["userErrors"]:
            self.stats.user_errors += 1
            return outcome.payload
        self.stats.quantities_set += len(data.get("quantities") or [])
        for sku in outcome.skus:
            self.stats.set_count_by_sku[sku] = self.stats.set_count_by_sku.get(sku, 0) + 1
        for level in outcome.changed_levels:
            self._level_changed(level)
        return outcome.payload

    # --- catalogue ---------------------------------------------------------------------------

    @property
    def location_id(self) -> int:
        """Numeric id of the primary (active) location."""
        return self._store.primary_location.id

    def add_product(self, title: str, variants: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Variant dicts take sku, barcode, price, quantity, inventory_policy ("deny"/"continue"), title."""
        product = self._store.add_product(title, variants)
        return {
            "id": product.id,
            "admin_graphql_api_id": gid("Product", product.id),
            "title": product.title,
            "handle": product.handle,
            "variants": [self._variant_json(vid) for vid in product.variant_ids],
        }

    def seed_catalog(self, count: int, *, quantity: int = 10, prefix: str = "SKU-") -> None:
        """One single-variant product per SKU; numbering starts at 1 and continues across calls.

        SKU = f"{prefix}{i:06d}", barcode = ean13(i), price = 10.00 + (i % 90).
        """
        for i in range(self._seeded + 1, self._seeded + count + 1):
            sku = f"{prefix}{i:06d}"
            self._store.add_product(
                f"Demo product {i:06d}",
                [{"sku": sku, "barcode": ean13(i), "price": 10 + i % 90, "quantity": quantity}],
            )
        self._seeded += count

    def variant_ids(self, sku: str) -> tuple[int, int]:
        """(variant id, inventory item id) of a SKU; KeyError when unknown."""
        variant = self._store.variant_by_sku(sku)
        return variant.id, variant.inventory_item_id

    def available(self, sku: str) -> int:
        return self._store.primary_level(self._store.variant_by_sku(sku)).available

    def levels(self) -> dict[str, int]:
        store = self._store
        return {sku: store.primary_level(store.variants[vid]).available for sku, vid in store.by_sku.items()}

    # --- shop activity -----------------------------------------------------------------------

    def subscribe(self, topic: str, address: str) -> None:
        """Deliver `topic` ("orders/create", "inventory_levels/update", ...) to an HTTP URL."""
        self.webhooks.subscribe(topic, address)

    async def simulate_sale(self, sku: str, quantity: int = 1) -> dict[str, Any] | None:
        """A storefront order for `quantity` of `sku` at the primary location.

        Returns the order JSON (as `orders/create` delivers it), or None when the variant's
        policy is "deny" and fewer than `quantity` are available. The sold units move from
        available to committed, as on Shopify until fulfilment.
        """
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        store = self._store
        variant = store.variant_by_sku(sku)
        level = store.primary_level(variant)
        if variant.inventory_policy == "DENY" and level.available < quantity:
            return None
        now = store.now()
        level.available -= quantity
        level.committed += quantity
        level.updated_at = now
        number = self._next_order_number
        self._next_order_number += 1
        order = order_created(
            order_id=store.next_id("Order"),
            number=number,
            line_id=store.next_id("LineItem"),
            variant=variant,
            product=store.products[variant.product_id],
            quantity=quantity,
            location_id=level.location_id,
            created_at=now,
        )
        self.webhooks.emit(ORDERS_CREATE, order)
        self._level_changed(level)
        return order

    @property
    def deliveries(self) -> DeliveryQueue[Any]:
        return self.webhooks

    async def set_available(self, sku: str, quantity: int) -> None:
        """A merchant editing the available quantity in the admin."""
        level = self._store.primary_level(self._store.variant_by_sku(sku))
        level.available = quantity
        level.updated_at = self._store.now()
        self._level_changed(level)

    async def drain_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every queued delivery was delivered or given up (TimeoutError after `timeout`)."""
        await self.webhooks.drain(timeout)

    async def aclose(self) -> None:
        """Stop the delivery tasks and close the HTTP client."""
        await self.webhooks.aclose()

    # --- internals ---------------------------------------------------------------------------

    def _level_changed(self, level: InventoryLevel) -> None:
        self.webhooks.emit(INVENTORY_LEVELS_UPDATE, inventory_level_update(level))

    def _variant_json(self, variant_id: int) -> dict[str, Any]:
        variant = self._store.variants[variant_id]
        return {
            "id": variant.id,
            "admin_graphql_api_id": gid("ProductVariant", variant.id),
            "sku": variant.sku,
            "barcode": variant.barcode,
            "price": variant.price,
            "inventory_item_id": variant.inventory_item_id,
            "inventory_quantity": self._store.primary_level(variant).available,
            "inventory_policy": variant.inventory_policy.lower(),
        }
