"""The Amazon channel's settings and credentials, checked at start-up and when the driver is built.

Credentials (secrets): `client_id`, `client_secret`, `refresh_token` (Login with Amazon).
Settings: `seller_id`, `marketplace_ids` (list, or a comma-separated string), and the optional
knobs below. The SP-API regional endpoint is the channel's `base_url`
(e.g. https://sellingpartnerapi-na.amazon.com).

Why the defaults:

- `feed_threshold` 50: below it a push patches SKU by SKU. 49 patches take about ten seconds on the
  default patchListingsItem plan (5/s, burst 5), far quicker than a feed, which sits in Amazon's
  queue for minutes; at and above it one feed costs four requests whatever its size and leaves
  the patch bucket to the urgent single-SKU pushes.
- `max_feed_messages` 2,500 (the engine's batch size: one push round): createFeed allows 0.0083
  requests/s, one feed every two minutes once its burst of 15 is spent, so throughput through
  feeds is the batch size / 120 s: 2,500 messages make 21 listings/s sustained, 4 times the patch
  path, after a burst of 37,500 listings. A round's listings are held in memory while its feed is
  built and processed: 10,000 per round took the Nexus process to 237 MiB peak at 10,000 SKUs on 4
  channels against 165 MiB with 2,500 (docs/benchmarks.md, memory). Raise it (Amazon's cap is
  25,000) for a first full sync of a large catalog, where the 2-minute feed window dominates.
- `feed_poll_interval` 10 s: getFeed allows 2/s, but processing takes minutes; polling faster
  only spends tokens other feeds may need.
- `feed_timeout` 900 s: how long one push waits for a feed to finish before it reports the
  listings for a retry (a later push sends the same levels again, which is harmless). Keep
  the worker's `lease_seconds` above it when several workers serve one Amazon account.
- `default_product_type` "PRODUCT": used when the imported listing did not record its
  productType. Amazon documents "PRODUCT" for offer-only updates (*unconfirmed* for every
  marketplace), so the import stores the real one in `channel_meta["product_type"]`.
- `sales_from` "both": quantity changes (LISTINGS_ITEM_MFN_QUANTITY_CHANGE, over SNS) book Amazon
  sales, and ORDER_CHANGE notifications, when they reach Nexus (an SQS-only notification, so
  forwarded), absorb what the quantities booked or book the sale a quantity could not tell from
  our own push's report (docs/consistency.md). With only SNS this is "levels" in effect;
  "levels" ignores orders; "orders" books orders only and verifies quantities.
- `sns_max_age` 3600 s: a validly signed notification whose SNS `Timestamp` is older is refused,
  so a captured message cannot be replayed later (SNS retries within about an hour).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from nexus.config import ChannelSettings, HttpUrl, Number, Strings, Text, Whole, credential

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
MAX_FEED_MESSAGES = 25_000  # Amazon's limit for one JSON_LISTINGS_FEED document
DEFAULT_FEED_THRESHOLD = 50
DEFAULT_MAX_FEED_MESSAGES = 2_500
DEFAULT_FEED_POLL_INTERVAL = 10.0
DEFAULT_FEED_TIMEOUT = 900.0
DEFAULT_FULFILLMENT_CHANNEL = "DEFAULT"
DEFAULT_PRODUCT_TYPE = "PRODUCT"
DEFAULT_ISSUE_LOCALE = "en_US"
DEFAULT_MAX_THROTTLE_RETRIES = 3
DEFAULT_SNS_MAX_AGE = 3600.0
SALES_FROM = ("both", "levels", "orders")


class AmazonSettings(ChannelSettings):
    base_url: HttpUrl = Field(description="the SP-API endpoint, e.g. https://sellingpartnerapi-na.amazon.com")
    client_id: str = credential(min_length=1, description="the LWA client id")
    client_secret: str = credential(min_length=1, description="the LWA client secret")
    refresh_token: str = credential(min_length=1, description="the LWA refresh token")
    seller_id: Text
    marketplace_ids: Annotated[Strings, Field(min_length=1)]
    token_url: HttpUrl = LWA_TOKEN_URL
    feed_threshold: Annotated[Whole, Field(ge=1)] = DEFAULT_FEED_THRESHOLD
    max_feed_messages: Annotated[Whole, Field(ge=1, le=MAX_FEED_MESSAGES)] = DEFAULT_MAX_FEED_MESSAGES
    feed_poll_interval: Annotated[Number, Field(gt=0)] = DEFAULT_FEED_POLL_INTERVAL
    feed_timeout: Annotated[Number, Field(gt=0)] = DEFAULT_FEED_TIMEOUT
    fulfillment_channel_code: Text = DEFAULT_FULFILLMENT_CHANNEL
    default_product_type: Text = DEFAULT_PRODUCT_TYPE
    issue_locale: Text = DEFAULT_ISSUE_LOCALE
    max_throttle_retries: Annotated[Whole, Field(ge=0)] = DEFAULT_MAX_THROTTLE_RETRIES
    sns_topic_arns: Strings = ()
    sales_from: Literal["both", "levels", "orders"] = "both"
    sns_max_age: Annotated[Number, Field(gt=0)] = DEFAULT_SNS_MAX_AGE

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def marketplace_id(self) -> str:
        """Listings Items 2021-08-01 takes exactly one marketplace per request (maxItems 1)."""
        return self.marketplace_ids[0]
