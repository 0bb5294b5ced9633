"""HTTP transport to the WooCommerce REST API v3 over the channel's shared httpx client.

Every request takes one token from the channel bucket first. WooCommerce itself has no rate limit
(the site is self-hosted), so there are no headers to re-sync the bucket from; a 429 comes from
the host or a proxy in front of it and stops the whole bucket for its Retry-After.

Errors leave as nexus.errors: TransientChannelError (429, 5xx, timeouts, a 2xx without JSON) or
TerminalChannelError (bad credentials, unknown route, any other 4xx). WordPress REST errors are
`{"code", "message", "data": {"status"}}`; the code is kept in the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from nexus.channels.wire import classify_status, is_transient_status
from nexus.drivers.contract import ChannelRateLimiter
from nexus.errors import ChannelAuthError, TerminalChannelError, TransientChannelError
from nexus.ratelimit.headers import retry_after_seconds, round_trip

API_PATH = "/wp-json/wc/v3"
AUTH_BASIC = "basic"
AUTH_QUERY = "query"
# Without a Retry-After, a 429 pauses the bucket this long.
DEFAULT_THROTTLE_WAIT = 1.0
BATCH_TOO_LARGE = "woocommerce_rest_request_entity_too_large"
_LIMIT_IN_MESSAGE = re.compile(r"more than (\d+) items")


class WooCommerceThrottledError(TransientChannelError):
    """HTTP 429 from the host or a proxy; the bucket is already paused for `retry_after`."""


class BatchTooLargeError(TerminalChannelError):
    """The store's batch limit (filter `woocommerce_rest_batch_items_limit`) is below our batch."""

    def __init__(self, message: str, *, limit: int | None, payload: object = None) -> None:
        super().__init__(message, status=413, payload=payload)
        self.limit = limit


@dataclass(frozen=True, slots=True)
class WooResponse:
    payload: Any
    headers: httpx.Headers


class WooCommerceClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        rate: ChannelRateLimiter,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        auth: str = AUTH_BASIC,
    ) -> None:
        self._http = http
        self._rate = rate
        self._key = consumer_key
        self._secret = consumer_secret
        self._auth = auth
        self.api_url = f"{base_url.rstrip('/')}{API_PATH}"
        self.throttled_responses = 0  # for tests and status pages

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> WooResponse:
        return await self._send("GET", path, params=params)

    async def post(self, path: str, body: Mapping[str, Any]) -> WooResponse:
        return await self._send("POST", path, body=body)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> WooResponse:
        query: dict[str, str | int] = dict(params or {})
        auth: httpx.BasicAuth | None = None
        if self._auth == AUTH_QUERY:
            # For hosts that strip the Authorization header before PHP sees it.
            query.update(consumer_key=self._key, consumer_secret=self._secret)
        else:
            auth = httpx.BasicAuth(self._key, self._secret)
        await self._rate.acquire(1.0)
        try:
            response = await self._http.request(
                method,
                f"{self.api_url}{path}",
                params=query or None,
                json=body,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/json"},
            )
        except httpx.TimeoutException as exc:
            raise TransientChannelError(f"WooCommerce request timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(
                f"WooCommerce connection failed: {type(exc).__name__}: {exc}"
            ) from exc
        await self._rate.observe(available=None, round_trip=round_trip(response))
        if response.status_code == 429:
            self.throttled_responses += 1
            wait = retry_after_seconds(response.headers)
            wait = DEFAULT_THROTTLE_WAIT if wait is None else wait
            await self._rate.penalize(wait)
            raise WooCommerceThrottledError(
                f"WooCommerce host answered 429 (Too Many Requests) to {method} {path}",
                status=429,
                retry_after=wait,
            )
        return _checked(method, path, response)


def _checked(method: str, path: str, response: httpx.Response) -> WooResponse:
    status = response.status_code
    payload = _json_or_none(response)
    where = f"{method} {path}"
    if status >= 400 and is_transient_status(status):
        raise classify_status(
            status,
            f"WooCommerce server error (HTTP {status}) on {where}: {describe_error(payload)}",
            retry_after=retry_after_seconds(response.headers),
            payload=payload,
        )
    if status == 413 and error_code(payload) == BATCH_TOO_LARGE:
        message = describe_error(payload)
        match = _LIMIT_IN_MESSAGE.search(message)
        raise BatchTooLargeError(
            f"WooCommerce refused the batch: {message}",
            limit=int(match.group(1)) if match else None,
            payload=payload,
        )
    if status in (401, 403):
        raise ChannelAuthError(
            f"WooCommerce refused the credentials (HTTP {status}) on {where}: {describe_error(payload)}",
            status=status,
            payload=payload,
        )
    if status >= 400:
        # 404 rest_no_route (wrong base URL, REST API off), 400 rest_invalid_param, ...
        raise classify_status(
            status,
            f"WooCommerce rejected {where} (HTTP {status}): {describe_error(payload)}",
            payload=payload,
        )
    if payload is None:
        # A 2xx page that is not JSON comes from something in between (cache, maintenance page).
        raise TransientChannelError(
            f"WooCommerce answered HTTP {status} without JSON on {where}", status=status
        )
    return WooResponse(payload=payload, headers=response.headers)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_code(payload: object) -> str | None:
    code = payload.get("code") if isinstance(payload, Mapping) else None
    return code if isinstance(code, str) else None


def describe_error(payload: object) -> str:
    """ "Consumer secret is invalid. [woocommerce_rest_authentication_error]" from a WP REST error."""
    if not isinstance(payload, Mapping):
        return "no error detail"
    message = payload.get("message")
    code = error_code(payload)
    text = str(message) if message else "no message"
    return f"{text} [{code}]" if code else text
