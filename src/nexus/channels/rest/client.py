"""HTTP for the generic REST channel: the base URL, the auth header formatted from the credentials,
the timeout, and the one status classification (`nexus.channels.wire.classify_status`).

A 429 pauses the channel's bucket for Retry-After (default one second) before it is reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from nexus.channels.rest.settings import RestSettings
from nexus.channels.wire import classify_status, is_transient_status
from nexus.drivers.contract import ChannelRateLimiter
from nexus.errors import ConfigError, TransientChannelError
from nexus.ratelimit.headers import retry_after_seconds, round_trip

DEFAULT_RETRY_AFTER = 1.0


def auth_headers(channel: str, settings: RestSettings, credentials: Mapping[str, str]) -> dict[str, str]:
    """`{auth_header: auth_template formatted with the credentials}`, or none when either is unset."""
    header, template = settings.auth_header, settings.auth_template
    if not header or not template:
        return {}
    try:
        return {header: template.format(**credentials)}
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"auth_template names a credential that is not configured: {exc}",
            key=f"channels.{channel}.settings.auth_template",
        ) from None


class RestClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        rate: ChannelRateLimiter,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
    ) -> None:
        self._http = http
        self._rate = rate
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = timeout

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer (None for an empty body); failures as Transient/TerminalChannelError."""
        await self._rate.acquire(1)
        try:
            response = await self._http.request(
                method,
                f"{self.base_url}{path}",
                json=body,
                headers={**self._headers, "Accept": "application/json"},
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise TransientChannelError(f"{method} {path} timed out") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc
        await self._rate.observe(available=None, round_trip=round_trip(response))
        status = response.status_code
        if status == 429:
            wait = retry_after_seconds(response.headers) or DEFAULT_RETRY_AFTER
            await self._rate.penalize(wait)
            raise TransientChannelError(f"{method} {path}: 429", status=429, retry_after=wait)
        if status >= 400:
            raise classify_status(
                status,
                f"{method} {path}: HTTP {status}"
                if is_transient_status(status)
                else f"{method} {path}: HTTP {status}: {response.text[:300]}",
                payload=None if is_transient_status(status) else body,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise TransientChannelError(f"{method} {path}: the answer is not JSON") from exc
