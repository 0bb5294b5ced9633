"""The channel's WooCommerce settings, checked at start-up and when the driver is built.

    credentials: consumer_key, consumer_secret (required), webhook_secret (to accept deliveries)
    settings:    auth            "basic" (default; Authorization header) or "query"
                                 (consumer_key/consumer_secret query parameters, for hosts that
                                 strip the Authorization header)
                 batch_limit     items per batch request, 1..100 (default 100; lower it when the
                                 store filters `woocommerce_rest_batch_items_limit`)
                 manage_stock    send `manage_stock: true` with every write (default true), so a
                                 product that did not track stock starts to
                 sale_statuses   order statuses whose order.created counts as a sale
                                 (default processing, completed, on-hold)

The bucket (default 25 requests/s, burst 100) is set with the channel's `rate_limit`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from nexus.channels.woocommerce.webhooks import DEFAULT_SALE_STATUSES
from nexus.config import ChannelSettings, HttpUrl, OptionalSecret, Whole, credential

MAX_BATCH_SIZE = 100  # WooCommerce's default batch limit (create + update + delete together)


class WooCommerceSettings(ChannelSettings):
    base_url: HttpUrl = Field(description="the store URL, e.g. https://shop.example.com")
    consumer_key: str = credential(min_length=1)
    consumer_secret: str = credential(min_length=1)
    webhook_secret: OptionalSecret = credential(None)
    auth: Literal["basic", "query"] = "basic"  # AUTH_BASIC; "query" is AUTH_QUERY
    batch_limit: Annotated[Whole, Field(strict=True, ge=1, le=MAX_BATCH_SIZE)] = MAX_BATCH_SIZE
    manage_stock: Annotated[bool, Field(strict=True)] = True
    sale_statuses: tuple[str, ...] = DEFAULT_SALE_STATUSES

    @field_validator("sale_statuses", mode="before")
    @classmethod
    def _statuses(cls, value: object) -> tuple[str, ...]:
        if (
            isinstance(value, str)
            or not isinstance(value, list | tuple)
            or not value
            or not all(isinstance(s, str) and s.strip() for s in value)
        ):
            raise ValueError('must be a list of order statuses, e.g. ["processing", "completed"]')
        return tuple(s.strip() for s in value)
