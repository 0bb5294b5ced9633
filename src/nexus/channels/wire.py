"""What every channel treats the same way: which HTTP status is worth retrying, ISO-8601 timestamps
and base64 HMAC-SHA256 signatures.

`classify_status` is the one HTTP status -> transient/terminal decision. A channel whose API says
more than its status (Shopify's 429 carrying GraphQL errors, WooCommerce's 413 for a batch too
large, Etsy's 404 for a deleted listing) handles that case first and calls it for the rest."""

from __future__ import annotations

import binascii
import hashlib
import hmac
from datetime import UTC, datetime

from nexus.errors import (
    ChannelAuthError,
    ChannelError,
    TerminalChannelError,
    TransientChannelError,
    WebhookSignatureError,
)

# 408 Request Timeout, 429 Too Many Requests and every 5xx: the same request may succeed later.
TRANSIENT_STATUSES = frozenset({408, 429})
# 401 Unauthorized, 403 Forbidden: the credentials were refused; the channel is disconnected.
AUTH_STATUSES = frozenset({401, 403})


def is_transient_status(status: int) -> bool:
    """True for the HTTP statuses worth retrying: 408, 429 and 5xx."""
    return status in TRANSIENT_STATUSES or status >= 500


def classify_status(
    status: int, message: str, *, retry_after: float | None = None, payload: object = None
) -> ChannelError:
    """The error a failed HTTP answer (`status` >= 300) stands for, to raise: a
    `TransientChannelError` for 408, 429 and 5xx (with the channel's `retry_after` hint), a
    `ChannelAuthError` (a `TerminalChannelError`) for 401 and 403, a `TerminalChannelError`
    otherwise (the same request would be refused again)."""
    if is_transient_status(status):
        return TransientChannelError(message, status=status, retry_after=retry_after, payload=payload)
    if status in AUTH_STATUSES:
        return ChannelAuthError(message, status=status, payload=payload)
    return TerminalChannelError(message, status=status, payload=payload)


def parse_timestamp(value: object) -> datetime | None:
    """An ISO-8601 timestamp ("Z", an offset, or none meaning UTC) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00:00+01:00": valid ISO, but its UTC instant is before year 1
        return None


def verify_base64_hmac_sha256(body: bytes, secret: str, received: str, header: str) -> None:
    """Raise WebhookSignatureError unless `received` is base64(HMAC-SHA256(secret, body)).

    The decoded bytes are compared in constant time, so any base64 padding style passes."""
    try:
        # binascii directly: base64.b64decode(validate=True) is the same check behind two Python calls.
        received_digest = binascii.a2b_base64(received, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookSignatureError(f"{header} is not base64") from exc
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    if not hmac.compare_digest(received_digest, expected):
        raise WebhookSignatureError(f"{header} does not match the body")
