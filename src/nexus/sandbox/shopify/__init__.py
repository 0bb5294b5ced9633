"""A local emulator of a Shopify store's Admin GraphQL API and webhooks.

    sandbox = ShopifySandbox(seed=1)
    sandbox.seed_catalog(100)
    async with serve_app(sandbox.app) as server:
        ...  # POST {server.base_url}/admin/api/2026-10/graphql.json
    await sandbox.aclose()

Module roles: `schema` (SDL subset), `store` (in-memory shop), `resolvers` (schema <-> store),
`inventory` (inventorySetQuantities), `throttle` (query cost + leaky bucket), `errors`
(Shopify-shaped GraphQL errors), `api` (one request end to end), `webhooks` (signed delivery
queue), `payloads` (REST-shaped webhook bodies), `app` (the ASGI app), `sandbox` (the facade).

The GraphQL schema runs on graphql-core, which comes with the `sandbox` extra.
"""

try:
    import graphql  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "the Shopify sandbox needs the 'sandbox' extra (graphql-core): pip install 'nexus-sync[sandbox]'"
    ) from exc

from nexus.sandbox.barcodes import ean13
from nexus.sandbox.shopify.sandbox import INVENTORY_LEVELS_UPDATE, ORDERS_CREATE, ShopifySandbox
from nexus.sandbox.shopify.webhooks import sign
from nexus.sandbox.stats import SandboxStats

__all__ = ["INVENTORY_LEVELS_UPDATE", "ORDERS_CREATE", "SandboxStats", "ShopifySandbox", "ean13", "sign"]
