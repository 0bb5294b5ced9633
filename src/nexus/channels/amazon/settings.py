"""The Amazon channel's settings and credentials, checked once when the driver is built.

Credentials (secrets): `client_id`, `client_secret`, `refresh_token` (Login with Amazon).
Settings: `seller_id`, `marketplace_ids` (list, or a comma-separated string), and the optional
knobs below. The SP-API regional endpoint is the channel's `base_url`
(e.g. https://sellingpartnerapi-na.amazon.com).

Why the defaults:

- `feed_threshold` 50: below it a push patches SKU by SKU. 49 patches take about ten seconds on the
  default patchListingsItem plan (5/s, burst 5), far quicker than a feed, which sits in Amazon's
  queue for minutes; at and above it one feed costs four requests whatever its size and leaves
  the patch bucket to the urgent single-SKU pushes.
- `max_feed_messages` 10,000 (the engine's batch size): createFeed allows 0.0083 requests/s, one
  feed every two minutes once its burst of 15 is spent, so throughput through feeds is the batch
  size / 120 s. 10,000 messages make 83 listings/s, 16 times the patch path, while the document
  stays a few MB. Amazon's own cap is 25,000 messages per feed.
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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nexus.drivers.contract import ChannelContext
from nexus.errors import ConfigError

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
MAX_FEED_MESSAGES = 25_000  # Amazon's limit for one JSON_LISTINGS_FEED document
DEFAULT_FEED_THRESHOLD = 50
DEFAULT_MAX_FEED_MESSAGES = 10_000
DEFAULT_FEED_POLL_INTERVAL = 10.0
DEFAULT_FEED_TIMEOUT = 900.0
DEFAULT_FULFILLMENT_CHANNEL = "DEFAULT"
DEFAULT_PRODUCT_TYPE = "PRODUCT"
DEFAULT_ISSUE_LOCALE = "en_US"
DEFAULT_MAX_THROTTLE_RETRIES = 3
DEFAULT_SNS_MAX_AGE = 3600.0
SALES_FROM = ("both", "levels", "orders")


@dataclass(frozen=True, slots=True)
class AmazonSettings:
    base_url: str
    client_id: str
    client_secret: str
    refresh_token: str
    seller_id: str
    marketplace_ids: tuple[str, ...]
    token_url: str = LWA_TOKEN_URL
    feed_threshold: int = DEFAULT_FEED_THRESHOLD
    max_feed_messages: int = DEFAULT_MAX_FEED_MESSAGES
    feed_poll_interval: float = DEFAULT_FEED_POLL_INTERVAL
    feed_timeout: float = DEFAULT_FEED_TIMEOUT
    fulfillment_channel_code: str = DEFAULT_FULFILLMENT_CHANNEL
    default_product_type: str = DEFAULT_PRODUCT_TYPE
    issue_locale: str = DEFAULT_ISSUE_LOCALE
    max_throttle_retries: int = DEFAULT_MAX_THROTTLE_RETRIES
    sns_topic_arns: tuple[str, ...] = ()
    sales_from: str = "both"
    sns_max_age: float = DEFAULT_SNS_MAX_AGE

    @property
    def marketplace_id(self) -> str:
        """Listings Items 2021-08-01 takes exactly one marketplace per request (maxItems 1)."""
        return self.marketplace_ids[0]

    @classmethod
    def from_context(cls, ctx: ChannelContext) -> AmazonSettings:
        source = f"channel {ctx.name}"
        if not ctx.base_url or not ctx.base_url.startswith(("https://", "http://")):
            raise ConfigError(
                "the Amazon driver needs the SP-API endpoint, e.g. https://sellingpartnerapi-na.amazon.com",
                key="base_url",
                source=source,
            )
        secrets = {}
        for key in ("client_id", "client_secret", "refresh_token"):
            value = ctx.credentials.get(key)
            if not value:
                raise ConfigError(f"the Amazon driver needs the LWA {key}", key=key, source=source)
            secrets[key] = value
        settings = ctx.settings
        seller_id = settings.get("seller_id")
        if not isinstance(seller_id, str) or not seller_id.strip():
            raise ConfigError("the Amazon driver needs the seller_id", key="seller_id", source=source)
        threshold = _count(settings, "feed_threshold", DEFAULT_FEED_THRESHOLD, source, minimum=1)
        max_messages = _count(settings, "max_feed_messages", DEFAULT_MAX_FEED_MESSAGES, source, minimum=1)
        if max_messages > MAX_FEED_MESSAGES:
            raise ConfigError(
                f"max_feed_messages must be at most {MAX_FEED_MESSAGES}",
                key="max_feed_messages",
                source=source,
            )
        token_url = _text(settings, "token_url", LWA_TOKEN_URL, source)
        if not token_url.startswith(("https://", "http://")):
            raise ConfigError("token_url must be an http(s) URL", key="token_url", source=source)
        return cls(
            base_url=ctx.base_url.rstrip("/"),
            client_id=secrets["client_id"],
            client_secret=secrets["client_secret"],
            refresh_token=secrets["refresh_token"],
            seller_id=seller_id.strip(),
            marketplace_ids=_list(settings, "marketplace_ids", source, required=True),
            token_url=token_url,
            feed_threshold=threshold,
            max_feed_messages=max_messages,
            feed_poll_interval=_positive(settings, "feed_poll_interval", DEFAULT_FEED_POLL_INTERVAL, source),
            feed_timeout=_positive(settings, "feed_timeout", DEFAULT_FEED_TIMEOUT, source),
            fulfillment_channel_code=_text(
                settings, "fulfillment_channel_code", DEFAULT_FULFILLMENT_CHANNEL, source
            ),
            default_product_type=_text(settings, "default_product_type", DEFAULT_PRODUCT_TYPE, source),
            issue_locale=_text(settings, "issue_locale", DEFAULT_ISSUE_LOCALE, source),
            max_throttle_retries=_count(
                settings, "max_throttle_retries", DEFAULT_MAX_THROTTLE_RETRIES, source, minimum=0
            ),
            sns_topic_arns=_list(settings, "sns_topic_arns", source, required=False),
            sales_from=_choice(settings, "sales_from", SALES_FROM, source),
            sns_max_age=_positive(settings, "sns_max_age", DEFAULT_SNS_MAX_AGE, source),
        )


def _text(settings: Mapping[str, Any], key: str, default: str, source: str) -> str:
    value = settings.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string", key=key, source=source)
    return value.strip()


def _choice(settings: Mapping[str, Any], key: str, choices: tuple[str, ...], source: str) -> str:
    value = settings.get(key, choices[0])
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}", key=key, source=source)
    return str(value)


def _list(settings: Mapping[str, Any], key: str, source: str, *, required: bool) -> tuple[str, ...]:
    value = settings.get(key)
    if value is None and not required:
        return ()
    items: Sequence[Any]
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ConfigError(f"{key} must be a list of strings", key=key, source=source)
    cleaned = tuple(item.strip() for item in items if isinstance(item, str) and item.strip())
    if len(cleaned) != len(items) or (required and not cleaned):
        raise ConfigError(f"{key} must be a non-empty list of strings", key=key, source=source)
    return cleaned


def _count(settings: Mapping[str, Any], key: str, default: int, source: str, *, minimum: int) -> int:
    value = settings.get(key, default)
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a whole number", key=key, source=source)
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a whole number", key=key, source=source) from exc
    if number < minimum:
        raise ConfigError(f"{key} must be >= {minimum}", key=key, source=source)
    return number


def _positive(settings: Mapping[str, Any], key: str, default: float, source: str) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number", key=key, source=source)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a number", key=key, source=source) from exc
    if number <= 0:
        raise ConfigError(f"{key} must be > 0", key=key, source=source)
    return number
