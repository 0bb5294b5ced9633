"""HTTP transport to the Etsy Open API v3: auth headers, both rate-limit buckets, error mapping.

Every request takes a token from the daily bucket (QPD, a rolling 24 hours) and from the
per-second bucket (QPS), in that order: a spent daily quota raises `QuotaExhausted` (transient)
before any per-second token is taken. Answers re-sync both buckets from `x-limit-per-second`,
`x-remaining-this-second`, `x-limit-per-day` and `x-remaining-today`.

    429       headers may be missing: stop the per-second bucket for Retry-After (or a default),
              then send the same request again, at most `max_throttle_retries` times
    401       the access token was refused: refresh once (shared with concurrent callers), retry once;
              refused again (or the refresh refused: invalid_grant), ChannelAuthError
    403       ChannelAuthError (wrong API key, missing scope): the channel is disconnected
    404, other 4xx   TerminalChannelError (unknown listing, bad body)
    5xx, timeouts, connection errors   TransientChannelError
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from nexus.channels.etsy.auth import TokenManager
from nexus.channels.wire import classify_status, is_transient_status
from nexus.drivers.contract import ChannelRateLimiter
from nexus.errors import TerminalChannelError, TransientChannelError
from nexus.ratelimit.headers import apply, etsy_per_day, etsy_per_second, retry_after_seconds, round_trip


class EtsyNotFoundError(TerminalChannelError):
    """HTTP 404: the listing, receipt or shop does not exist (or is not this app's to see)."""


class EtsyClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        tokens: TokenManager,
        per_second: ChannelRateLimiter,
        per_day: ChannelRateLimiter,
        default_retry_after: float,
        max_throttle_retries: int,
    ) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.tokens = tokens
        self.per_second = per_second
        self.per_day = per_day
        self._default_retry_after = default_retry_after
        self._max_throttle_retries = max_throttle_retries
        self.throttled_responses = 0

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.request("GET", path, params=params)

    async def put(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self.request("PUT", path, content=json.dumps(body, separators=(",", ":")).encode())

    async def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, content: bytes | None = None
    ) -> Any:
        token = await self.tokens.access_token()
        refreshed = False
        throttled = 0
        while True:
            await self.per_day.acquire()
            await self.per_second.acquire()
            response = await self._send(method, path, token, params, content)
            await apply(self.per_second, etsy_per_second(response.headers), round_trip=round_trip(response))
            await apply(self.per_day, etsy_per_day(response.headers), round_trip=round_trip(response))
            if response.status_code == 429:
                self.throttled_responses += 1
                wait = retry_after_seconds(response.headers)
                wait = self._default_retry_after if wait is None else wait
                await self.per_second.penalize(wait)
                if throttled >= self._max_throttle_retries:
                    raise TransientChannelError(
                        f"Etsy rate limit hit (HTTP 429): {_describe(response)}",
                        status=429,
                        retry_after=wait,
                    )
                throttled += 1
                continue
            if response.status_code == 401 and not refreshed:
                refreshed = True
                token = await self.tokens.refreshed_after(token)
                continue
            return _result(response)

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, Any] | None,
        content: bytes | None,
    ) -> httpx.Response:
        headers = {
            "x-api-key": self._api_key,
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
        }
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            return await self._http.request(
                method, f"{self.base_url}{path}", params=dict(params or {}), content=content, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise TransientChannelError(f"Etsy request timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(f"Etsy connection failed: {type(exc).__name__}: {exc}") from exc


def _payload(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _describe(response: httpx.Response) -> str:
    payload = _payload(response)
    if isinstance(payload, Mapping):
        parts = [str(payload[k]) for k in ("error", "error_description") if payload.get(k)]
        if parts:
            return ": ".join(parts)
    return response.text[:200] or "no error detail"


def _result(response: httpx.Response) -> Any:
    status = response.status_code
    if 200 <= status < 300:
        payload = _payload(response)
        if payload is None:
            # A 2xx without JSON comes from something in between (proxy, maintenance page).
            raise TransientChannelError(f"Etsy answered HTTP {status} without a JSON body", status=status)
        return payload
    message = f"Etsy answered HTTP {status}: {_describe(response)}"
    if status == 404:
        raise EtsyNotFoundError(message, status=status, payload=_payload(response))
    if is_transient_status(status):
        raise classify_status(status, message, retry_after=retry_after_seconds(response.headers))
    raise classify_status(status, message, payload=_payload(response))
