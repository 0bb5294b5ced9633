"""A local emulator of a WooCommerce store's REST API v3 and webhooks.

    sandbox = WooCommerceSandbox(seed=1)
    sandbox.seed_catalog(100)
    async with serve_app(sandbox.app) as server:
        ...  # GET {server.base_url}/wp-json/wc/v3/products, basic auth consumer_key:consumer_secret
    await sandbox.aclose()

Module roles: `store` (products, variations, orders), `payloads` (REST v3 JSON shapes, PHP-style
JSON), `api` (the endpoints), `auth` (API keys), `host` (the host's 429s and 5xx in front of the
store), `webhooks` (ping and signed deliveries with WooCommerce's failure rule), `app` (the ASGI
app), `sandbox` (the facade).
"""

from nexus.sandbox.stats import SandboxStats
from nexus.sandbox.woocommerce.sandbox import ORDER_CREATED, PRODUCT_UPDATED, WooCommerceSandbox
from nexus.sandbox.woocommerce.webhooks import Webhook, sign

__all__ = [
    "ORDER_CREATED",
    "PRODUCT_UPDATED",
    "SandboxStats",
    "Webhook",
    "WooCommerceSandbox",
    "sign",
]
