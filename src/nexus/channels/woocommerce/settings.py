"""The channel's WooCommerce settings, checked once when the driver is built.

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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nexus.channels.woocommerce.client import AUTH_BASIC, AUTH_QUERY
from nexus.channels.woocommerce.webhooks import DEFAULT_SALE_STATUSES
from nexus.drivers.contract import ChannelContext
from nexus.errors import ConfigError

MAX_BATCH_SIZE = 100  # WooCommerce's default batch limit (create + update + delete together)


@dataclass(frozen=True, slots=True)
class WooCommerceSettings:
    base_url: str
    consumer_key: str
    consumer_secret: str
    webhook_secret: str | None = None
    auth: str = AUTH_BASIC
    batch_limit: int = MAX_BATCH_SIZE
    manage_stock: bool = True
    sale_statuses: tuple[str, ...] = DEFAULT_SALE_STATUSES

    @classmethod
    def from_context(cls, ctx: ChannelContext) -> WooCommerceSettings:
        source = f"channel {ctx.name}"
        if not ctx.base_url or not ctx.base_url.startswith(("https://", "http://")):
            raise ConfigError(
                "the WooCommerce driver needs the store URL, e.g. https://shop.example.com",
                key="base_url",
                source=source,
            )
        key = ctx.credentials.get("consumer_key")
        if not key:
            raise ConfigError(
                "the WooCommerce driver needs a consumer key", key="consumer_key", source=source
            )
        secret = ctx.credentials.get("consumer_secret")
        if not secret:
            raise ConfigError(
                "the WooCommerce driver needs a consumer secret", key="consumer_secret", source=source
            )
        settings = ctx.settings
        auth = settings.get("auth", AUTH_BASIC)
        if auth not in (AUTH_BASIC, AUTH_QUERY):
            raise ConfigError(f'auth must be "{AUTH_BASIC}" or "{AUTH_QUERY}"', key="auth", source=source)
        return cls(
            base_url=ctx.base_url,
            consumer_key=key,
            consumer_secret=secret,
            webhook_secret=ctx.credentials.get("webhook_secret") or None,
            auth=auth,
            batch_limit=_batch_limit(settings, source),
            manage_stock=_flag(settings, "manage_stock", True, source),
            sale_statuses=_statuses(settings, source),
        )


def _batch_limit(settings: Mapping[str, Any], source: str) -> int:
    value = settings.get("batch_limit", MAX_BATCH_SIZE)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BATCH_SIZE:
        raise ConfigError(
            f"batch_limit must be a whole number from 1 to {MAX_BATCH_SIZE}", key="batch_limit", source=source
        )
    return value


def _flag(settings: Mapping[str, Any], key: str, default: bool, source: str) -> bool:
    value = settings.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false", key=key, source=source)
    return value


def _statuses(settings: Mapping[str, Any], source: str) -> tuple[str, ...]:
    value = settings.get("sale_statuses", DEFAULT_SALE_STATUSES)
    if (
        isinstance(value, str)
        or not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(s, str) and s.strip() for s in value)
    ):
        raise ConfigError(
            'sale_statuses must be a list of order statuses, e.g. ["processing", "completed"]',
            key="sale_statuses",
            source=source,
        )
    return tuple(s.strip() for s in value)
