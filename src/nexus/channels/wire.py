"""What several channels send the same way: ISO-8601 timestamps and base64 HMAC-SHA256 signatures."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime

from nexus.errors import WebhookSignatureError


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
        received_digest = base64.b64decode(received, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookSignatureError(f"{header} is not base64") from exc
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    if not hmac.compare_digest(received_digest, expected):
        raise WebhookSignatureError(f"{header} does not match the body")
