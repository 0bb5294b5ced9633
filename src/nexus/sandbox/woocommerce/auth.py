"""REST API key authentication as WooCommerce does it (`includes/class-wc-rest-authentication.php`).

- Basic auth (consumer key as user, secret as password) or `consumer_key`/`consumer_secret`
  query parameters; the query parameters win when both are present.
- A known key with a wrong secret: 401 `woocommerce_rest_authentication_error` "Consumer secret is
  invalid." with a `WWW-Authenticate: Basic` header.
- An unknown key or no credentials leave the request anonymous, and the endpoint's permission
  check refuses it: 401 `woocommerce_rest_cannot_view` / `woocommerce_rest_cannot_batch`.
- A key without write permission on POST: 401 "The API key provided does not have write
  permissions."
- Real WooCommerce tries basic auth only over HTTPS (over HTTP it expects OAuth 1.0a). The sandbox
  serves plain HTTP on loopback, so it accepts basic auth there unless `https_only` is set.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from nexus.sandbox.woocommerce.payloads import wp_error

READ = "read"
WRITE = "write"
READ_WRITE = "read_write"
REALM = (
    'Basic realm="WooCommerce API. Use a consumer key in the username field and a consumer secret '
    'in the password field."'
)


@dataclass(frozen=True, slots=True)
class Refusal:
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class ApiKey:
    consumer_key: str
    consumer_secret: str
    permissions: str = READ_WRITE
    https_only: bool = False

    def check(self, request: Request, *, anonymous_error: tuple[str, str]) -> Refusal | None:
        """None when the request may proceed; `anonymous_error` is the endpoint's (code, message)."""
        key, secret, basic = _credentials(request)
        if basic and self.https_only and request.url.scheme != "https":
            key = secret = None  # basic auth is not even attempted over plain HTTP
        if not key or not secret or not hmac.compare_digest(key.encode(), self.consumer_key.encode()):
            return Refusal(wp_error(*anonymous_error, 401), {})
        if not hmac.compare_digest(secret.encode(), self.consumer_secret.encode()):
            return Refusal(
                wp_error("woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401),
                {"WWW-Authenticate": REALM},
            )
        needed = READ if request.method in ("GET", "HEAD") else WRITE
        if self.permissions not in (needed, READ_WRITE):
            return Refusal(
                wp_error(
                    "woocommerce_rest_authentication_error",
                    f"The API key provided does not have {needed} permissions.",
                    401,
                ),
                {},
            )
        return None


def _credentials(request: Request) -> tuple[str | None, str | None, bool]:
    """(key, secret, from basic auth)."""
    key = request.query_params.get("consumer_key")
    secret = request.query_params.get("consumer_secret")
    if key and secret:
        return key, secret, False
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None, None, False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, None, True
    user, _, password = decoded.partition(":")
    return user or None, password or None, True
