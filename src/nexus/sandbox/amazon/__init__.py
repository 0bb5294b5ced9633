"""A local emulator of an Amazon seller account: LWA tokens, Listings Items 2021-08-01, Feeds
2021-06-30 (JSON_LISTINGS_FEED) and SP-API notifications delivered as signed SNS messages.

See `AmazonSandbox` for usage; paths under `/_sandbox/` are not part of any Amazon API.
"""

from nexus.sandbox.amazon.sandbox import MFN_QUANTITY_CHANGE, ORDER_CHANGE, AmazonSandbox
from nexus.sandbox.amazon.store import Listing
from nexus.sandbox.stats import SandboxStats

__all__ = ["MFN_QUANTITY_CHANGE", "ORDER_CHANGE", "AmazonSandbox", "Listing", "SandboxStats"]
