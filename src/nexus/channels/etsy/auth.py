"""Etsy OAuth 2.0 access tokens: cached until shortly before they expire, refreshed once.

Etsy access tokens live one hour (`expires_in: 3600`); a new one comes from the token endpoint
with `grant_type=refresh_token`, `client_id` (the keystring) and the refresh token, form-encoded.
Etsy ROTATES the refresh token on every refresh: the answer carries a new one and the old one
stops working (etsy/open-api issue #353). The new one is kept in memory only (`refresh_token`):
a deployment must persist it, or the next process start fails with `invalid_grant`.

Concurrency: every caller that finds the token missing or stale waits on one lock and the first
one refreshes; the others find a fresh token when they get the lock. A request refused with 401
asks `refreshed_after(rejected)`, which refreshes only if nobody replaced that token meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from nexus.errors import ChannelAuthError, TransientChannelError

# Refresh this long before the announced expiry: a request must not leave with a token that
# expires on its way.
EXPIRY_MARGIN_SECONDS = 60.0


class TokenManager:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        refresh_token: str,
        access_token: str | None = None,
        expires_at: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._refresh_token = refresh_token
        self._access_token = access_token
        # A configured token without an expiry is trusted until Etsy refuses it (then 401 -> refresh).
        self._expires_at = expires_at if access_token else None
        self._clock = clock
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @property
    def refresh_token(self) -> str:
        """The current refresh token (rotated by every refresh): persist it."""
        return self._refresh_token

    def _fresh(self) -> bool:
        if self._access_token is None:
            return False
        return self._expires_at is None or self._clock() < self._expires_at - EXPIRY_MARGIN_SECONDS

    async def access_token(self) -> str:
        if self._fresh():
            assert self._access_token is not None
            return self._access_token
        async with self._lock:
            if not self._fresh():
                await self._refresh()
            assert self._access_token is not None
            return self._access_token

    async def refreshed_after(self, rejected: str) -> str:
        """A token other than `rejected`: the one another caller got meanwhile, or a new one."""
        async with self._lock:
            if self._access_token == rejected or not self._fresh():
                await self._refresh()
            assert self._access_token is not None
            return self._access_token

    async def _refresh(self) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "refresh_token": self._refresh_token,
        }
        try:
            response = await self._http.post(
                self._token_url, data=form, headers={"Accept": "application/json"}
            )
        except httpx.TimeoutException as exc:
            raise TransientChannelError(f"Etsy token refresh timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(f"Etsy token refresh failed: {type(exc).__name__}: {exc}") from exc
        payload = _json(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientChannelError(
                f"Etsy token endpoint answered HTTP {response.status_code}", status=response.status_code
            )
        if response.status_code != 200:
            # invalid_grant: revoked or already-rotated refresh token; only a new consent helps.
            raise ChannelAuthError(
                f"Etsy refused the token refresh (HTTP {response.status_code}): {_describe(payload)}",
                status=response.status_code,
                payload=payload,
            )
        access = payload.get("access_token")
        refresh = payload.get("refresh_token")
        expires_in = payload.get("expires_in")
        if not isinstance(access, str) or not access:
            raise TransientChannelError("Etsy token endpoint answered without an access_token")
        self._access_token = access
        self._expires_at = (
            self._clock() + float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else None
        )
        self.refreshes += 1
        if isinstance(refresh, str) and refresh:
            self._refresh_token = refresh


def _json(response: httpx.Response) -> Mapping[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, Mapping) else {}


def _describe(payload: Mapping[str, Any]) -> str:
    error = payload.get("error")
    description = payload.get("error_description")
    return ": ".join(str(part) for part in (error, description) if part) or "no error detail"
