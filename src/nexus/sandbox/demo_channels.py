"""The sandboxes `nexus demo` can run, one `DemoChannel` per kind (`--channels`).

Each builds its sandbox with realistic limits (compressed by `time_scale` where the sandbox has
one), seeds the demo's SKUs, describes the Nexus channel that talks to it, subscribes Nexus to its
webhooks, and does whatever the driver needs once built (Amazon's certificate fetcher).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nexus.channels.amazon import AmazonDriver
from nexus.config import ChannelConfig
from nexus.engine import Nexus
from nexus.sandbox.amazon import MFN_QUANTITY_CHANGE, ORDER_CHANGE, AmazonSandbox
from nexus.sandbox.base import Sandbox
from nexus.sandbox.etsy import EtsySandbox
from nexus.sandbox.woocommerce import WooCommerceSandbox

# GraphQL Admin API restore rates per plan (shopify.dev, "GraphQL Admin API rate limits"); the
# bucket holds 20 seconds of restore, as the Standard plan's documented 2000 / 100 does.
PLANS = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0, "enterprise": 2000.0}
KINDS = ("shopify", "woocommerce", "amazon", "etsy")
PREFIX = "SKU-"


@dataclass(frozen=True)
class DemoSettings:
    skus: int
    seed: int
    plan: str = "plus"
    time_scale: float = 10.0
    latency_ms: float = 0.0  # network latency every sandbox adds per request (a remote store)


@dataclass
class DemoChannel:
    kind: str
    label: str
    sandbox: Sandbox
    topics: tuple[str, ...]
    config: Callable[[str], ChannelConfig]  # base URL of the served sandbox -> channel config
    extra_products: int = 0  # products on the channel that Nexus does not know (reported unmatched)

    @property
    def name(self) -> str:
        return f"{self.kind}-demo"

    def subscribe(self, address: str) -> None:
        for topic in self.topics:
            self.sandbox.subscribe(topic, address)

    def after_build(self, nexus: Nexus) -> None:
        """Amazon: certificates and SubscribeURLs of "sns.<region>.amazonaws.com" come from the
        sandbox, not from the internet."""
        if isinstance(self.sandbox, AmazonSandbox):
            driver = nexus.channel(self.name).driver
            assert isinstance(driver, AmazonDriver)
            driver.use_fetcher(self.sandbox.fetch)


def build(kind: str, demo: DemoSettings) -> DemoChannel:
    """The sandbox of `kind`, seeded with SKU-000001 .. the demo's SKU count."""
    return _BUILDERS[kind](demo)


def _shopify(demo: DemoSettings) -> DemoChannel:
    # Shopify retries a failed delivery after about a minute; the demo compresses that to seconds.
    # Shopify delivers webhooks in parallel and in no guaranteed order; so does the sandbox here.
    # Imported here: the Shopify sandbox needs the `sandbox` extra (graphql-core), the others do not.
    from nexus.sandbox.shopify import ShopifySandbox

    restore = PLANS[demo.plan]
    sandbox = ShopifySandbox(
        seed=demo.seed,
        maximum_available=restore * 20,
        restore_rate=restore,
        webhook_retry_base_seconds=0.5,
        webhook_concurrency=8,
        latency_ms=demo.latency_ms,
    )
    sandbox.seed_catalog(demo.skus, quantity=10, prefix=PREFIX)
    for n in range(3):  # products the merchant never created in Nexus: reported as unmatched
        sandbox.add_product(f"Unlisted gadget {n}", [{"sku": f"LEGACY-{n}", "price": "9.99", "quantity": 4}])

    def config(base_url: str) -> ChannelConfig:
        return ChannelConfig(
            driver="shopify",
            base_url=base_url,
            credentials={"access_token": sandbox.access_token, "webhook_secret": sandbox.webhook_secret},
            # The demo products have one variant each, so pages can hold many products.
            settings={"location_id": str(sandbox.location_id), "variants_per_product": 5},
        )

    return DemoChannel(
        "shopify",
        "Shopify sandbox",
        sandbox,
        ("orders/create", "inventory_levels/update"),
        config,
        extra_products=3,
    )


def _woocommerce(demo: DemoSettings) -> DemoChannel:
    # WooCommerce itself has no rate limit (host_rate_limit None, as on most hosts).
    sandbox = WooCommerceSandbox(
        seed=demo.seed, time_scale=demo.time_scale, webhook_concurrency=4, latency_ms=demo.latency_ms
    )
    sandbox.seed_catalog(demo.skus, quantity=10, prefix=PREFIX)

    def config(base_url: str) -> ChannelConfig:
        return ChannelConfig(
            driver="woocommerce",
            base_url=base_url,
            credentials={
                "consumer_key": sandbox.consumer_key,
                "consumer_secret": sandbox.consumer_secret,
                "webhook_secret": sandbox.webhook_secret,
            },
        )

    return DemoChannel(
        "woocommerce", "WooCommerce sandbox", sandbox, ("order.created", "product.updated"), config
    )


def _amazon(demo: DemoSettings) -> DemoChannel:
    # Documented SP-API usage plans, run `time_scale` times faster; feeds process in seconds.
    sandbox = AmazonSandbox(
        seed=demo.seed,
        time_scale=demo.time_scale,
        feed_processing_seconds=5.0,
        sns_retry_delay=5.0,
        latency_ms=demo.latency_ms,
    )
    sandbox.seed_catalog(demo.skus, quantity=10, prefix=PREFIX)

    def config(base_url: str) -> ChannelConfig:
        return ChannelConfig(
            driver="amazon",
            base_url=base_url,
            credentials=sandbox.credentials(),
            settings={**sandbox.channel_settings(base_url), "feed_poll_interval": 0.5},
        )

    return DemoChannel("amazon", "Amazon sandbox", sandbox, (MFN_QUANTITY_CHANGE, ORDER_CHANGE), config)


def _etsy(demo: DemoSettings) -> DemoChannel:
    """Etsy refuses an inventory whose offerings are all at 0, so a one-product listing could
    never show a sold-out SKU. Each demo listing also sells a gift-wrapped variant that Nexus
    does not manage (it stays unmatched), so the demo SKU's own product can go to 0."""
    sandbox = EtsySandbox(
        seed=demo.seed,
        time_scale=demo.time_scale,
        webhook_retry_schedule=(0.5, 1.0, 2.0, 4.0, 8.0),
        latency_ms=demo.latency_ms,
    )
    for i in range(1, demo.skus + 1):
        sku = f"{PREFIX}{i:06d}"
        sandbox.add_listing(
            f"Demo product {i:06d}",
            [
                {"sku": sku, "price": 10.0 + i % 90, "quantity": 10, "property_values": [_wrap("No")]},
                {
                    "sku": f"{sku}-GIFT",
                    "price": 14.0 + i % 90,
                    "quantity": 5,
                    "property_values": [_wrap("Yes")],
                },
            ],
            {"price_on_property": [513], "quantity_on_property": [513], "sku_on_property": [513]},
        )

    def config(base_url: str) -> ChannelConfig:
        return ChannelConfig(
            driver="etsy",
            base_url=base_url,
            credentials=sandbox.credentials(),
            settings=sandbox.settings(base_url),
        )

    return DemoChannel("etsy", "Etsy sandbox", sandbox, ("order.paid",), config, extra_products=demo.skus)


def _wrap(answer: str) -> dict[str, Any]:
    value_id = {"No": 9001, "Yes": 9002}[answer]
    return {
        "property_id": 513,
        "property_name": "Gift wrap",
        "scale_id": None,
        "value_ids": [value_id],
        "values": [answer],
    }


_BUILDERS: dict[str, Callable[[DemoSettings], DemoChannel]] = {
    "shopify": _shopify,
    "woocommerce": _woocommerce,
    "amazon": _amazon,
    "etsy": _etsy,
}
