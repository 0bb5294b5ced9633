"""The Etsy channel's configuration, checked at start-up and when the driver is built.

credentials  keystring, shared_secret, refresh_token        required
             access_token                                   optional (else refreshed first)
             webhook_secret                                 "whsec_..." (Standard Webhooks)
settings     shop_id                                        required
             token_url, access_token_expires_at, listing_states, max_batch_size,
             concurrency, max_quantity, requests_per_second, requests_per_day,
             webhook_tolerance_seconds, resource_hosts, default_retry_after,
             max_throttle_retries
base_url     default https://openapi.etsy.com
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from nexus.config import ChannelSettings, HttpUrl, Number, OptionalSecret, Strings, Whole, credential

DEFAULT_BASE_URL = "https://openapi.etsy.com"
DEFAULT_TOKEN_URL = "https://api.etsy.com/v3/public/oauth/token"
# Etsy's own examples name resource_url on both hosts (docs: api.etsy.com; live deliveries:
# openapi.etsy.com); both are Etsy's. A configured base URL adds its own host.
ETSY_RESOURCE_HOSTS = ("openapi.etsy.com", "api.etsy.com")
DEFAULT_REQUESTS_PER_SECOND = 10.0  # Etsy's default QPS for a new app (developer portal)
DEFAULT_REQUESTS_PER_DAY = 10_000.0  # Etsy's default QPD, a rolling 24-hour window
# A push of N listings costs 2N requests (GET + PUT each): 25 SKUs from 25 listings is
# 50 requests, five seconds at the default 10 QPS, well inside a worker's lease.
DEFAULT_MAX_BATCH_SIZE = 25
DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_QUANTITY = 999  # Etsy refuses offering quantities above 999 (unconfirmed: configurable)
DEFAULT_WEBHOOK_TOLERANCE = 300.0  # Standard Webhooks: five minutes either way
DEFAULT_RETRY_AFTER = 1.0  # a 429 without Retry-After: the per-second window is over by then
DEFAULT_MAX_THROTTLE_RETRIES = 2


class EtsySettings(ChannelSettings):
    base_url: HttpUrl = DEFAULT_BASE_URL
    token_url: HttpUrl = DEFAULT_TOKEN_URL
    keystring: str = credential(min_length=1)
    shared_secret: str = credential(min_length=1)
    refresh_token: str = credential(min_length=1)
    access_token: OptionalSecret = credential(None)
    webhook_secret: OptionalSecret = credential(None)
    shop_id: Annotated[Whole, Field(ge=1)]
    access_token_expires_at: Annotated[Number, Field(gt=0)] | None = None
    listing_states: Strings = ("active",)
    max_batch_size: Annotated[Whole, Field(ge=1)] = DEFAULT_MAX_BATCH_SIZE
    concurrency: Annotated[Whole, Field(ge=1)] = DEFAULT_CONCURRENCY
    max_quantity: Annotated[Whole, Field(ge=1)] = DEFAULT_MAX_QUANTITY
    requests_per_second: Annotated[Number, Field(gt=0)] = DEFAULT_REQUESTS_PER_SECOND
    requests_per_day: Annotated[Number, Field(gt=0)] = DEFAULT_REQUESTS_PER_DAY
    webhook_tolerance_seconds: Annotated[Number, Field(gt=0)] = DEFAULT_WEBHOOK_TOLERANCE
    extra_resource_hosts: Strings = Field(default=(), alias="resource_hosts")
    default_retry_after: Annotated[Number, Field(gt=0)] = DEFAULT_RETRY_AFTER
    max_throttle_retries: Annotated[Whole, Field(ge=0)] = DEFAULT_MAX_THROTTLE_RETRIES

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("access_token_expires_at", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("listing_states")
    @classmethod
    def _active_by_default(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return value or ("active",)

    @property
    def resource_hosts(self) -> tuple[str, ...]:
        """Hosts a webhook's `resource_url` may name: the base URL's, Etsy's own when the base
        URL is Etsy's, and the configured `resource_hosts`."""
        default_hosts = ETSY_RESOURCE_HOSTS if self.base_url == DEFAULT_BASE_URL else ()
        base_host = urlsplit(self.base_url).netloc.lower()
        extra = (host.lower() for host in self.extra_resource_hosts)
        return tuple(dict.fromkeys((base_host, *default_hosts, *extra)))

    @property
    def api_key(self) -> str:
        """The `x-api-key` value: "keystring:shared_secret" (required by Etsy since early 2026)."""
        return f"{self.keystring}:{self.shared_secret}"
