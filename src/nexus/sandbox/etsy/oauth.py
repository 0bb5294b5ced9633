"""The sandbox's OAuth 2.0 tokens: refresh-token rotation and access-token expiry.

As on Etsy: `POST /v3/public/oauth/token` with `grant_type=refresh_token`, `client_id` (the
keystring) and `refresh_token` answers `{access_token, token_type: "Bearer", expires_in,
refresh_token}` with a NEW refresh token; the one used is revoked (etsy/open-api issue #353;
a revoked one answers 400 invalid_grant "refresh_token is revoked", issue #519). Access tokens
look like Etsy's ("{user_id}.{random}") and expire `access_token_ttl / time_scale` seconds later
on the sandbox's clock; `expires_in` still says the unscaled figure, as Etsy would.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = {"error": error, "error_description": description}


@dataclass(frozen=True, slots=True)
class TokenCheck:
    ok: bool
    description: str = ""


class OAuthServer:
    def __init__(
        self,
        *,
        client_id: str,
        user_id: int,
        refresh_token: str,
        access_token_ttl: float = 3600.0,
        time_scale: float = 1.0,
        rotate_refresh_tokens: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self.user_id = user_id
        self.access_token_ttl = access_token_ttl
        self.time_scale = time_scale
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self._clock = clock
        self.refresh_tokens: set[str] = {refresh_token}
        self.revoked: set[str] = set()
        self._access: dict[str, float] = {}  # token -> expiry on the sandbox clock
        self.refreshes = 0

    def issue_access_token(self) -> str:
        """A valid access token without a refresh (for tests that start with one)."""
        token = f"{self.user_id}.{secrets.token_urlsafe(24)}"
        self._access[token] = self._clock() + self.access_token_ttl / self.time_scale
        return token

    def expire_all(self) -> None:
        """Every access token expires now (what an hour does to them)."""
        now = self._clock()
        self._access = dict.fromkeys(self._access, now)

    def refresh(self, form: Mapping[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "refresh_token":
            raise OAuthError(400, "unsupported_grant_type", "grant_type must be refresh_token")
        if form.get("client_id") != self.client_id:
            raise OAuthError(400, "invalid_client", "Invalid API key")
        token = form.get("refresh_token") or ""
        if token in self.revoked:
            raise OAuthError(400, "invalid_grant", "refresh_token is revoked")
        if token not in self.refresh_tokens:
            raise OAuthError(400, "invalid_grant", "refresh_token is invalid")
        self.refreshes += 1
        if self.rotate_refresh_tokens:
            self.refresh_tokens.discard(token)
            self.revoked.add(token)
            token = f"{self.user_id}.{secrets.token_urlsafe(32)}"
            self.refresh_tokens.add(token)
        return {
            "access_token": self.issue_access_token(),
            "token_type": "Bearer",
            "expires_in": int(self.access_token_ttl),
            "refresh_token": token,
        }

    def check(self, authorization: str | None) -> TokenCheck:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return TokenCheck(False, "access token is invalid")
        expires = self._access.get(token.strip())
        if expires is None:
            return TokenCheck(False, "access token is invalid")
        if self._clock() >= expires:
            return TokenCheck(False, "access token is expired")
        return TokenCheck(True)
