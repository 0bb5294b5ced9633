"""`EtsySandbox`: a local Etsy shop that speaks the Open API v3 and sends signed webhooks.

    sandbox = EtsySandbox(seed=1)
    sandbox.seed_catalog(100)
    async with serve_app(sandbox.app) as server:
        config = ChannelConfig(driver="etsy", base_url=server.base_url,
                               credentials=sandbox.credentials(), settings=sandbox.settings(server.base_url))
    await sandbox.aclose()

Etsy has no listing or inventory webhook: a merchant's edit (`set_available`) changes the level
silently, and only sales announce themselves (`order.paid`, whose body points at the receipt).
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette

from nexus.sandbox.base import add_network_latency
from nexus.sandbox.delivery import DeliveryQueue, Faults
from nexus.sandbox.etsy.app import build_app
from nexus.sandbox.etsy.limits import RateLimits
from nexus.sandbox.etsy.oauth import OAuthServer
from nexus.sandbox.etsy.store import Listing, Store
from nexus.sandbox.etsy.webhooks import RETRY_SCHEDULE, StandardWebhookDispatcher
from nexus.sandbox.stats import SandboxStats

ORDER_PAID = "order.paid"
DEFAULT_BASE_URL = "https://openapi.etsy.com"


class EtsySandbox:
    def __init__(
        self,
        *,
        shop_id: int = 40_000_001,
        user_id: int = 12_345_678,
        keystring: str = "sandboxkeystring0000000000",
        shared_secret: str = "sandboxsharedsecret",
        refresh_token: str | None = None,
        webhook_secret: str | None = None,
        requests_per_second: int = 10,
        requests_per_day: int = 10_000,
        day_buckets: int = 24,
        time_scale: float = 1.0,
        access_token_ttl: float = 3600.0,
        rotate_refresh_tokens: bool = True,
        retry_after: bool = False,
        max_quantity: int = 999,
        error_rate: float = 0.0,
        response_latency: float = 0.0,
        webhook_retry_schedule: Sequence[float] = RETRY_SCHEDULE,
        drop_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        """Knobs beyond the shared ones:

        time_scale: compresses the daily window, access-token lifetimes and webhook retries.
        access_token_ttl: seconds an access token lives (Etsy: 3600), before time_scale.
        rotate_refresh_tokens: False keeps refresh tokens valid after use.
        retry_after: send a Retry-After header on 429 (Etsy's docs say a 429 carries none of
            the rate-limit headers; whether it carries Retry-After is unconfirmed).
        max_quantity: the highest offering quantity a PUT may set (999, unconfirmed).
        error_rate: share of API requests answered 500 {"error": "Server Error"}.
        clock: monotonic clock of the rate limits and token expiry (tests pass a fake one).
        """
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        faults = Faults(drop_rate=drop_rate, duplicate_rate=duplicate_rate)
        self.rng = random.Random(seed)
        self.shop_id = shop_id
        self.keystring = keystring
        self.shared_secret = shared_secret
        self.refresh_token = refresh_token or f"{user_id}.sandbox-refresh-{self.rng.getrandbits(64):016x}"
        self.webhook_secrets: list[str] = [webhook_secret or _new_secret(self.rng)]
        self.retry_after = retry_after
        self.error_rate = error_rate
        self.response_latency = response_latency
        self.resource_base_url: str | None = None
        monotonic = clock or time.monotonic
        self.stats = SandboxStats()
        self.store = Store(shop_id=shop_id, user_id=user_id, max_quantity=max_quantity)
        self.oauth = OAuthServer(
            client_id=keystring,
            user_id=user_id,
            refresh_token=self.refresh_token,
            access_token_ttl=access_token_ttl,
            time_scale=time_scale,
            rotate_refresh_tokens=rotate_refresh_tokens,
            clock=monotonic,
        )
        self.limits = RateLimits(
            per_second=requests_per_second,
            per_day=requests_per_day,
            day_buckets=day_buckets,
            time_scale=time_scale,
            clock=monotonic,
        )
        self.webhooks = StandardWebhookDispatcher(
            secrets_=lambda: self.webhook_secrets,
            stats=self.stats,
            rng=self.rng,
            time_scale=time_scale,
            retry_schedule=webhook_retry_schedule,
            faults=faults,
        )
        self.app: Starlette = build_app(self)
        # latency_ms: a fixed network delay per request (`nexus.sandbox.base.NetworkLatency`).
        self.network = add_network_latency(self.app, latency_ms)
        self._seeded = 0

    # --- configuration for a Nexus channel -----------------------------------------------------

    @property
    def webhook_secret(self) -> str:
        """The newest signing secret (what the merchant copies into Nexus)."""
        return self.webhook_secrets[-1]

    def credentials(self) -> dict[str, str]:
        return {
            "keystring": self.keystring,
            "shared_secret": self.shared_secret,
            "refresh_token": self.refresh_token,
            "webhook_secret": self.webhook_secret,
        }

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"shop_id": self.shop_id, "token_url": f"{base_url.rstrip('/')}/v3/public/oauth/token"}

    def rotate_webhook_secret(self) -> str:
        """Start a key rotation: deliveries carry a signature for the old and the new secret."""
        self.webhook_secrets.append(_new_secret(self.rng))
        return self.webhook_secret

    def finish_webhook_rotation(self) -> None:
        del self.webhook_secrets[:-1]

    def learn_base_url(self, url: str) -> None:
        """resource_url in webhooks points where the API was last reached, unless set."""
        if self.resource_base_url is None:
            self.resource_base_url = url.rstrip("/")

    # --- catalogue ---------------------------------------------------------------------------

    def seed_catalog(self, count: int, *, quantity: int = 10, prefix: str = "SKU-") -> None:
        """One single-product listing per SKU, numbered from 1 and on across calls.

        SKU = f"{prefix}{i:06d}", price = 10.00 + (i % 90). Etsy has no barcodes."""
        for i in range(self._seeded + 1, self._seeded + count + 1):
            self.store.add_listing(
                f"Demo product {i:06d}",
                [{"sku": f"{prefix}{i:06d}", "price": 10.0 + i % 90, "quantity": quantity}],
            )
        self._seeded += count

    def add_listing(
        self,
        title: str,
        products: list[Mapping[str, Any]],
        on_property: Mapping[str, list[int]] | None = None,
    ) -> dict[str, Any]:
        """A listing with variations: products take sku, quantity, price, property_values (as in
        a PUT), is_enabled, readiness_state_id. Returns the listing with its inventory."""
        listing = self.store.add_listing(title, products, on_property)
        return self.store.listing_json(listing, with_inventory=True)

    def listing_id(self, sku: str) -> int:
        return self.store.find_sku(sku)[0].listing_id

    def inventory(self, listing_id: int) -> dict[str, Any]:
        """The inventory exactly as GET returns it."""
        return self.store.inventory_json(self.store.listings[listing_id])

    def available(self, sku: str) -> int:
        return self.store.find_sku(sku)[1].stock.quantity

    def levels(self) -> dict[str, int]:
        return self.store.levels()

    def put_inventory(self, listing: Listing, body: object) -> None:
        """An inventory PUT as Etsy applies it (the app's handler; raises InventoryError)."""
        before = {p.sku or str(p.product_id): p.stock.quantity for p in listing.products}
        self.store.replace_inventory(listing, body)
        self.stats.inventory_puts += 1
        after = {p.sku or str(p.product_id): p.stock.quantity for p in listing.products}
        self.stats.products_deleted += max(0, len(before) - len(after))
        for sku, quantity in after.items():
            if sku in before and before[sku] != quantity:
                self.stats.set_count_by_sku[sku] = self.stats.set_count_by_sku.get(sku, 0) + 1

    # --- shop activity -----------------------------------------------------------------------

    def subscribe(self, event_type: str, address: str) -> None:
        """Deliver `event_type` ("order.paid") to an HTTP URL."""
        self.webhooks.subscribe(event_type, address)

    async def simulate_sale(self, sku: str, quantity: int = 1) -> dict[str, Any] | None:
        """A storefront purchase: lowers the quantity, books a paid receipt, sends order.paid.

        Returns the receipt, or None when fewer than `quantity` are in stock. A listing whose
        last unit sells becomes "sold_out", as on Etsy."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        listing, product = self.store.find_sku(sku)
        offering = product.stock
        if not offering.is_enabled or offering.quantity < quantity:
            return None
        offering.quantity -= quantity
        if not any(p.stock.is_enabled and p.stock.quantity > 0 for p in listing.products):
            listing.state = "sold_out"
        receipt = self.store.add_receipt(listing, product, quantity)
        base = self.resource_base_url or DEFAULT_BASE_URL
        path = f"/v3/application/shops/{self.shop_id}/receipts/{receipt['receipt_id']}"
        self.webhooks.emit(
            ORDER_PAID,
            {
                "event_type": ORDER_PAID,
                "resource_url": f"{base}{path}",
                "shop_id": self.shop_id,
            },
        )
        return receipt

    @property
    def deliveries(self) -> DeliveryQueue[Any]:
        return self.webhooks

    async def set_available(self, sku: str, quantity: int) -> None:
        """A merchant's edit in Shop Manager. Etsy sends no webhook for it."""
        self.store.find_sku(sku)[1].stock.quantity = quantity

    async def drain_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every message was delivered or given up (TimeoutError after `timeout`)."""
        await self.webhooks.drain(timeout)

    async def aclose(self) -> None:
        await self.webhooks.aclose()


def _new_secret(rng: random.Random) -> str:
    return "whsec_" + base64.b64encode(rng.randbytes(24)).decode()
