"""Login with Amazon (LWA) access tokens for the SP-API, cached until shortly before they expire.

`POST {token_url}` with the form `grant_type=refresh_token&refresh_token&client_id&client_secret`
answers `{"access_token", "token_type": "bearer", "expires_in": 3600, ...}`; the token goes in
the `x-amz-access-token` header (AWS SigV4 signing is no longer required). Every request of the
channel shares one token: concurrent callers wait on one lock, so an expired token is refreshed
once, not once per caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from nexus.errors import ChannelAuthError, TransientChannelError

# Refresh this long before Amazon's expiry, so a token never expires between check and use.
EXPIRY_MARGIN_SECONDS = 60.0


class LwaTokens:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._valid_until = 0.0
        self.refreshes = 0  # token requests made: for tests and status pages

    async def get(self) -> str:
        """A valid access token: the cached one, or a fresh one when it is (nearly) expired."""
        token = self._current()
        if token is not None:
            return token
        async with self._lock:
            token = self._current()
            if token is None:
                token = await self._refresh()
            return token

    async def invalidate(self, rejected: str) -> None:
        """Amazon refused `rejected` as expired: drop it, unless another caller already replaced it."""
        async with self._lock:
            if self._token == rejected:
                self._token = None
                self._valid_until = 0.0

    def _current(self) -> str | None:
        if self._token is not None and self._clock() < self._valid_until:
            return self._token
        return None

    async def _refresh(self) -> str:
        self.refreshes += 1
        try:
            response = await self._http.post(
                self._token_url, data=self._form, headers={"Accept": "application/json"}
            )
        except httpx.TransportError as exc:
            raise TransientChannelError(f"LWA token request failed: {type(exc).__name__}: {exc}") from exc
        payload = _json(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientChannelError(f"LWA token endpoint answered HTTP {response.status_code}")
        if response.status_code != 200:
            # invalid_grant (revoked refresh token), invalid_client (wrong id/secret): a person must act.
            error = payload.get("error") if isinstance(payload, dict) else None
            description = payload.get("error_description") if isinstance(payload, dict) else None
            raise ChannelAuthError(
                f"LWA refused the credentials (HTTP {response.status_code}): {error}: {description}",
                status=response.status_code,
                payload=payload,
            )
        token = payload.get("access_token") if isinstance(payload, dict) else None
        expires_in = payload.get("expires_in") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise TransientChannelError("LWA answered without an access_token")
        lifetime = float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        self._token = token
        self._valid_until = self._clock() + max(lifetime - EXPIRY_MARGIN_SECONDS, lifetime / 2)
        return token


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
