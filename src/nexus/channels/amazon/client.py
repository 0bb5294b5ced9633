"""HTTP transport to the Selling Partner API: auth, one token bucket per operation, error mapping.

Every SP-API operation has a usage plan of its own (a token bucket: rate per second and burst),
so every operation takes from its own `ctx.limiter(operation, ...)` before each request and
re-syncs it from `x-amzn-RateLimit-Limit` after. A 429 (`QuotaExceeded`) stops that bucket for
Retry-After (or one token's refill time) and the same request is sent again, a bounded number of
times. A 401/403 for an expired token refreshes the LWA token once and retries.

Failures leave as nexus.errors: TransientChannelError (retry later) or TerminalChannelError.
Presigned document URLs (feed upload/download) are plain HTTPS to S3: no token, no bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from nexus.channels.amazon.auth import LwaTokens
from nexus.channels.wire import classify_status, is_transient_status
from nexus.drivers.contract import ChannelRateLimiter
from nexus.errors import TransientChannelError
from nexus.ratelimit.config import RateLimitConfig
from nexus.ratelimit.headers import amazon_rate_limit, apply, retry_after_seconds, round_trip

ACCESS_TOKEN_HEADER = "x-amz-access-token"
USER_AGENT = "nexus-sync (Language=Python)"

# Default usage plans (rate per second, burst) from the API models (listingsItems_2021-08-01.json,
# feeds_2021-06-30.json). An account may have more; x-amzn-RateLimit-Limit then raises the rate.
USAGE_PLANS: Mapping[str, RateLimitConfig] = {
    "patchListingsItem": RateLimitConfig(capacity=5, refill_per_second=5),
    "getListingsItem": RateLimitConfig(capacity=10, refill_per_second=5),
    "searchListingsItems": RateLimitConfig(capacity=5, refill_per_second=5),
    "createFeedDocument": RateLimitConfig(capacity=15, refill_per_second=0.5),
    "createFeed": RateLimitConfig(capacity=15, refill_per_second=0.0083),
    "getFeed": RateLimitConfig(capacity=15, refill_per_second=2),
    "getFeedDocument": RateLimitConfig(capacity=10, refill_per_second=0.0222),
}


class AmazonThrottledError(TransientChannelError):
    """Still QuotaExceeded after the bounded retries."""


@dataclass(frozen=True, slots=True)
class SpResponse:
    status: int
    payload: Any


class SpApiClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        tokens: LwaTokens,
        limiter_for: Callable[[str, RateLimitConfig], ChannelRateLimiter],
        max_throttle_retries: int,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._limiter_for = limiter_for
        self._max_throttle_retries = max_throttle_retries
        self._rates: dict[str, float] = {}  # the rate Amazon last reported per operation
        self.throttled_responses = 0

    def limiter(self, operation: str) -> ChannelRateLimiter:
        return self._limiter_for(operation, USAGE_PLANS[operation])

    async def call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        token_taken: bool = False,
    ) -> SpResponse:
        """One operation; `token_taken` when the caller already took its first bucket token."""
        limiter = self.limiter(operation)
        refreshed = False
        attempt = 0
        while True:
            if not token_taken:
                await limiter.acquire()
            token_taken = False
            access_token = await self.tokens.get()
            response = await self._send(method, path, params, json_body, access_token)
            observation = amazon_rate_limit(response.headers)
            if observation is not None and observation.refill_per_second:
                self._rates[operation] = observation.refill_per_second
            await apply(limiter, observation, round_trip=round_trip(response))
            payload = _json(response)
            if response.status_code == 429:
                self.throttled_responses += 1
                wait = retry_after_seconds(response.headers)
                if wait is None:
                    rate = self._rates.get(operation, USAGE_PLANS[operation].refill_per_second)
                    wait = 1.0 / rate
                await limiter.penalize(wait)
                attempt += 1
                if attempt > self._max_throttle_retries:
                    raise AmazonThrottledError(
                        f"SP-API {operation}: QuotaExceeded {attempt} times ({_describe(payload)})",
                        status=429,
                        retry_after=wait,
                        payload=payload,
                    )
                continue
            if response.status_code in (401, 403) and not refreshed and _token_refused(payload):
                refreshed = True
                await self.tokens.invalidate(access_token)
                continue
            return _result(operation, response, payload)

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        access_token: str,
    ) -> httpx.Response:
        headers = {
            ACCESS_TOKEN_HEADER: access_token,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            return await self._http.request(
                method, f"{self._base_url}{path}", params=params, json=json_body, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise TransientChannelError(f"SP-API request timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(f"SP-API connection failed: {type(exc).__name__}: {exc}") from exc

    async def upload(self, url: str, content: bytes, content_type: str) -> None:
        """PUT a feed document to its presigned URL, with the content type it was created with
        (the URL's signature covers it)."""
        try:
            response = await self._http.put(url, content=content, headers={"Content-Type": content_type})
        except httpx.TransportError as exc:
            raise TransientChannelError(f"feed document upload failed: {type(exc).__name__}") from exc
        status = response.status_code
        if status >= 300:
            raise classify_status(
                status,
                f"feed document upload: HTTP {status}"
                if is_transient_status(status)
                else f"feed document upload refused (HTTP {status}): {response.text[:200]}",
            )

    async def download(self, url: str) -> bytes:
        try:
            response = await self._http.get(url)
        except httpx.TransportError as exc:
            raise TransientChannelError(f"feed document download failed: {type(exc).__name__}") from exc
        if response.status_code != 200:
            # A presigned URL expires after five minutes: fetching a new one may succeed.
            raise TransientChannelError(f"feed document download: HTTP {response.status_code}")
        return response.content


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _errors(payload: Any) -> list[Mapping[str, Any]]:
    errors = payload.get("errors") if isinstance(payload, Mapping) else None
    return [e for e in errors if isinstance(e, Mapping)] if isinstance(errors, list) else []


def _describe(payload: Any) -> str:
    parts = []
    for error in _errors(payload):
        text = f"{error.get('code')}: {error.get('message')}"
        if error.get("details"):
            text += f" ({error.get('details')})"
        parts.append(text)
    return "; ".join(parts) or "no error detail"


def _token_refused(payload: Any) -> bool:
    """An expired or invalid access token, as opposed to a missing role (which a refresh cannot fix).

    The exact wording is *unconfirmed*; Amazon's 403 examples say "Unauthorized" with details
    such as "The access token you provided has expired."."""
    text = _describe(payload).lower()
    return "token" in text or "expired" in text


def _result(operation: str, response: httpx.Response, payload: Any) -> SpResponse:
    status = response.status_code
    if status >= 400:
        raise classify_status(
            status,
            f"SP-API {operation}: server error (HTTP {status}): {_describe(payload)}"
            if is_transient_status(status)
            else f"SP-API {operation} refused (HTTP {status}): {_describe(payload)}",
            retry_after=retry_after_seconds(response.headers),
            payload=payload,
        )
    if payload is None:
        raise TransientChannelError(f"SP-API {operation} answered HTTP {status} without JSON", status=status)
    return SpResponse(status=status, payload=payload)
