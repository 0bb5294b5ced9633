"""The Shopify channel's keys, checked when a process starts and again when the driver is built.

base_url      the store, e.g. https://example.myshopify.com (required: without a scheme every
              request would fail as a "connection error" and be retried forever)
credentials   access_token (required), webhook_secret (to accept deliveries)
settings      api_version (default 2026-10), location_id (default: the store's first
              location), reason (default "correction"), max_throttle_retries (5),
              variants_per_product (a products page's variants per product, at least 1),
              capacity / refill_per_second (the store's bucket: 2000 points, 100 a second)
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from nexus.channels.shopify import queries
from nexus.channels.shopify.normalize import numeric_id
from nexus.config import ChannelSettings, HttpUrl, Number, OptionalSecret, Text, Whole, credential
from nexus.ratelimit.config import RateLimitConfig

DEFAULT_API_VERSION = "2026-10"
DEFAULT_REASON = "correction"
DEFAULT_MAX_THROTTLE_RETRIES = 5

DEFAULT_RATE_LIMIT = RateLimitConfig(
    capacity=2000, refill_per_second=100, cost_per_push=queries.MUTATION_COST
)


class ShopifySettings(ChannelSettings):
    """The channel's Shopify settings."""

    base_url: HttpUrl
    access_token: str = credential(min_length=1)
    webhook_secret: OptionalSecret = credential(None)
    api_version: Text = DEFAULT_API_VERSION
    location_id: str | None = None
    reason: Text = DEFAULT_REASON
    max_throttle_retries: Annotated[Whole, Field(ge=0)] = DEFAULT_MAX_THROTTLE_RETRIES
    variants_per_product: Annotated[Whole, Field(ge=0)] = queries.DEFAULT_VARIANTS_PER_PRODUCT
    capacity: Annotated[Number, Field(gt=0)] = DEFAULT_RATE_LIMIT.capacity
    refill_per_second: Annotated[Number, Field(gt=0)] = DEFAULT_RATE_LIMIT.refill_per_second

    @field_validator("location_id", mode="before")
    @classmethod
    def _location(cls, value: object) -> str | None:
        if value in (None, ""):
            return None
        try:
            return numeric_id(value)
        except ValueError:
            raise ValueError(f"not a Shopify location id: {value!r}") from None

    @field_validator("variants_per_product")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        return max(1, value)

    @property
    def rate_limit(self) -> RateLimitConfig:
        return RateLimitConfig(
            capacity=self.capacity,
            refill_per_second=self.refill_per_second,
            cost_per_push=DEFAULT_RATE_LIMIT.cost_per_push,
        )
