"""A local emulator of an Etsy shop's Open API v3 and its Standard Webhooks deliveries.

Module roles: `store` (listings, inventories, receipts, the PUT's rules), `oauth` (token
refresh and expiry), `limits` (QPS and rolling QPD), `webhooks` (signed delivery with Etsy's
retries), `app` (the ASGI app), `sandbox` (the facade).
"""

from nexus.sandbox.etsy.sandbox import ORDER_PAID, EtsySandbox
from nexus.sandbox.stats import SandboxStats

__all__ = ["ORDER_PAID", "EtsySandbox", "SandboxStats"]
