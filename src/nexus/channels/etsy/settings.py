"""The Etsy channel's configuration, checked once when the driver is built.

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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nexus.drivers.contract import ChannelContext
from nexus.errors import ConfigError

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


@dataclass(frozen=True, slots=True)
class EtsySettings:
    base_url: str
    token_url: str
    keystring: str
    shared_secret: str
    refresh_token: str
    shop_id: int
    access_token: str | None = None
    access_token_expires_at: float | None = None
    webhook_secret: str | None = None
    listing_states: tuple[str, ...] = ("active",)
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    max_quantity: int = DEFAULT_MAX_QUANTITY
    requests_per_second: float = DEFAULT_REQUESTS_PER_SECOND
    requests_per_day: float = DEFAULT_REQUESTS_PER_DAY
    webhook_tolerance_seconds: float = DEFAULT_WEBHOOK_TOLERANCE
    resource_hosts: tuple[str, ...] = ()
    default_retry_after: float = DEFAULT_RETRY_AFTER
    max_throttle_retries: int = DEFAULT_MAX_THROTTLE_RETRIES

    @property
    def api_key(self) -> str:
        """The `x-api-key` value: "keystring:shared_secret" (required by Etsy since early 2026)."""
        return f"{self.keystring}:{self.shared_secret}"

    @classmethod
    def from_context(cls, ctx: ChannelContext) -> EtsySettings:
        source = f"channel {ctx.name}"
        base_url = (ctx.base_url or DEFAULT_BASE_URL).rstrip("/")
        _url(base_url, "base_url", source)
        credentials = ctx.credentials

        def secret(key: str) -> str:
            value = credentials.get(key)
            if not value:
                raise ConfigError(f"the Etsy driver needs credentials.{key}", key=key, source=source)
            return value

        settings = ctx.settings
        token_url = _url(str(settings.get("token_url", DEFAULT_TOKEN_URL)), "token_url", source)
        base_host = urlsplit(base_url).netloc.lower()
        extra_hosts = _strings(settings, "resource_hosts", (), source)
        default_hosts = ETSY_RESOURCE_HOSTS if base_url == DEFAULT_BASE_URL else ()
        return cls(
            base_url=base_url,
            token_url=token_url,
            keystring=secret("keystring"),
            shared_secret=secret("shared_secret"),
            refresh_token=secret("refresh_token"),
            access_token=credentials.get("access_token") or None,
            webhook_secret=credentials.get("webhook_secret") or None,
            shop_id=int(_number(settings, "shop_id", None, source, minimum=1, whole=True)),
            access_token_expires_at=_optional_number(settings, "access_token_expires_at", source),
            listing_states=_strings(settings, "listing_states", ("active",), source) or ("active",),
            max_batch_size=int(
                _number(settings, "max_batch_size", DEFAULT_MAX_BATCH_SIZE, source, minimum=1, whole=True)
            ),
            concurrency=int(
                _number(settings, "concurrency", DEFAULT_CONCURRENCY, source, minimum=1, whole=True)
            ),
            max_quantity=int(
                _number(settings, "max_quantity", DEFAULT_MAX_QUANTITY, source, minimum=1, whole=True)
            ),
            requests_per_second=_number(settings, "requests_per_second", DEFAULT_REQUESTS_PER_SECOND, source),
            requests_per_day=_number(settings, "requests_per_day", DEFAULT_REQUESTS_PER_DAY, source),
            webhook_tolerance_seconds=_number(
                settings, "webhook_tolerance_seconds", DEFAULT_WEBHOOK_TOLERANCE, source
            ),
            resource_hosts=tuple(
                dict.fromkeys((base_host, *default_hosts, *(h.lower() for h in extra_hosts)))
            ),
            default_retry_after=_number(settings, "default_retry_after", DEFAULT_RETRY_AFTER, source),
            max_throttle_retries=int(
                _number(
                    settings,
                    "max_throttle_retries",
                    DEFAULT_MAX_THROTTLE_RETRIES,
                    source,
                    minimum=0,
                    whole=True,
                )
            ),
        )


def _url(value: str, key: str, source: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{key} must be an http(s) URL, got {value!r}", key=key, source=source)
    return value


def _number(
    settings: Mapping[str, Any],
    key: str,
    default: float | None,
    source: str,
    *,
    minimum: float | None = None,
    whole: bool = False,
) -> float:
    value = settings.get(key, default)
    if value is None:
        raise ConfigError(f"the Etsy driver needs settings.{key}", key=key, source=source)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a number, got {value!r}", key=key, source=source) from exc
    if isinstance(value, bool) or (whole and not number.is_integer()):
        raise ConfigError(f"{key} must be a whole number, got {value!r}", key=key, source=source)
    if (minimum is not None and number < minimum) or (minimum is None and number <= 0):
        raise ConfigError(f"{key} is out of range: {value!r}", key=key, source=source)
    return number


def _optional_number(settings: Mapping[str, Any], key: str, source: str) -> float | None:
    return None if settings.get(key) in (None, "") else _number(settings, key, None, source)


def _strings(settings: Mapping[str, Any], key: str, default: tuple[str, ...], source: str) -> tuple[str, ...]:
    value = settings.get(key, default)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{key} must be a list of strings", key=key, source=source)
    return tuple(value)
