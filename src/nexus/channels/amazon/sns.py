"""Amazon SNS over HTTP(S): signature verification and safe fetches of Amazon's URLs.

The body is a JSON object (sent as text/plain). `Signature` is base64 RSA over the "string to
sign": for each key of the message type's list, in that order and only when present,
"{Key}\\n{Value}\\n". SignatureVersion "1" signs with SHA1withRSA, "2" with SHA256withRSA.
The public key comes from the certificate at `SigningCertURL`, which must be https, end in
`.pem` and be served by `sns.<region>.amazonaws.com` (or `.com.cn`): anything else could be a
certificate an attacker controls. Certificates are fetched once per URL and kept.

Sources: AWS "Verifying the signatures of Amazon SNS messages"; aws/aws-php-sns-message-validator
(`MessageValidator.php`: host pattern, algorithms; `Message.php`: required keys).

A SubscriptionConfirmation is confirmed by fetching its `SubscribeURL`; that URL is checked the
same way (https, SNS host) before any request is made, so a forged message cannot make Nexus
call a host of the sender's choosing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from nexus.errors import WebhookPayloadError, WebhookSignatureError

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

SNS_HOST = re.compile(r"^sns\.[a-zA-Z0-9-]{3,}\.amazonaws\.com(\.cn)?$")

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_KEYS: Mapping[str, tuple[str, ...]] = {
    NOTIFICATION: _NOTIFICATION_KEYS,
    SUBSCRIPTION_CONFIRMATION: _CONFIRMATION_KEYS,
    UNSUBSCRIBE_CONFIRMATION: _CONFIRMATION_KEYS,
}
_REQUIRED = ("Message", "MessageId", "Timestamp", "TopicArn", "Type", "Signature", "SigningCertURL")
_HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

# GET a validated Amazon URL and return the body; raises on failure. Injectable so tests (and
# the sandbox demo) can answer for sns.<region>.amazonaws.com without the internet.
Fetcher = Callable[[str], Awaitable[bytes]]


def load_message(body: bytes) -> dict[str, Any]:
    """The SNS message of a delivery; WebhookSignatureError when it cannot even be checked."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise WebhookSignatureError("SNS body is not JSON: no signature to check") from exc
    if not isinstance(message, dict):
        raise WebhookSignatureError("SNS body is not a JSON object")
    return message


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    keys = SIGNED_KEYS.get(str(message.get("Type")))
    if keys is None:
        raise WebhookSignatureError(f"unknown SNS message Type {message.get('Type')!r}")
    return "".join(f"{key}\n{message[key]}\n" for key in keys if message.get(key) is not None).encode()


def check_amazon_url(url: object, *, what: str, pem: bool) -> str:
    """Return `url` if it is https on an SNS host (and ends in .pem when `pem`); raise otherwise."""
    if not isinstance(url, str):
        raise WebhookSignatureError(f"{what} is missing")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookSignatureError(f"{what} is not a URL: {url!r}") from exc
    if parts.scheme != "https":
        raise WebhookSignatureError(f"{what} is not https: {url!r}")
    if parts.hostname is None or not SNS_HOST.match(parts.hostname) or port not in (None, 443):
        raise WebhookSignatureError(f"{what} is not on an Amazon SNS host: {url!r}")
    if parts.username or parts.password:
        raise WebhookSignatureError(f"{what} carries credentials: {url!r}")
    if pem and not parts.path.endswith(".pem"):
        raise WebhookSignatureError(f"{what} is not a .pem certificate: {url!r}")
    return url


def http_fetcher(http: httpx.AsyncClient, timeout: float = 10.0) -> Fetcher:
    """The default fetcher: a plain GET, redirects refused (they could leave the checked host)."""

    async def fetch(url: str) -> bytes:
        response = await http.get(url, timeout=timeout, follow_redirects=False)
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"GET {url}: HTTP {response.status_code}", request=response.request, response=response
            )
        return response.content

    return fetch


class SnsVerifier:
    def __init__(self, fetcher: Fetcher, *, in_thread: bool = True) -> None:
        """in_thread: run the RSA check in a worker thread (`asyncio.to_thread`), off the event
        loop that parses every other delivery; OpenSSL releases the GIL while it works, so on a
        second core it runs beside the loop (benchmarks/sns_verify.py measures both)."""
        self.fetcher = fetcher
        self.in_thread = in_thread
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = asyncio.Lock()
        self.certificate_fetches = 0

    async def verify(self, message: Mapping[str, Any]) -> None:
        """Raise WebhookSignatureError unless `message` carries a valid SNS signature."""
        missing = [key for key in _REQUIRED if not isinstance(message.get(key), str)]
        if missing:
            raise WebhookSignatureError(f"SNS message lacks {', '.join(missing)}")
        algorithm = _HASHES.get(str(message.get("SignatureVersion")))
        if algorithm is None:
            raise WebhookSignatureError(
                f"unsupported SNS SignatureVersion {message.get('SignatureVersion')!r}"
            )
        content = string_to_sign(message)
        url = check_amazon_url(message["SigningCertURL"], what="SigningCertURL", pem=True)
        try:
            signature = base64.b64decode(message["Signature"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WebhookSignatureError("SNS Signature is not base64") from exc
        key = await self._key(url)
        try:
            if self.in_thread:
                await asyncio.to_thread(key.verify, signature, content, padding.PKCS1v15(), algorithm())
            else:
                key.verify(signature, content, padding.PKCS1v15(), algorithm())
        except InvalidSignature as exc:
            raise WebhookSignatureError("SNS signature does not match the message") from exc

    async def _key(self, url: str) -> rsa.RSAPublicKey:
        key = self._keys.get(url)
        if key is not None:
            return key
        async with self._lock:
            key = self._keys.get(url)
            if key is None:
                key = self._keys[url] = await self._fetch_key(url)
            return key

    async def _fetch_key(self, url: str) -> rsa.RSAPublicKey:
        self.certificate_fetches += 1
        try:
            pem = await self.fetcher(url)
            certificate = x509.load_pem_x509_certificate(pem)
        except WebhookSignatureError:
            raise
        except Exception as exc:
            # Nothing is cached: the next delivery (or SNS's retry of this one) fetches again.
            raise WebhookSignatureError(f"cannot load the SNS signing certificate {url}: {exc}") from exc
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookSignatureError("the SNS signing certificate does not hold an RSA key")
        return key


async def confirm_subscription(message: Mapping[str, Any], fetcher: Fetcher) -> None:
    """Fetch SubscribeURL (after checking it): that is how SNS subscriptions are confirmed."""
    try:
        url = check_amazon_url(message.get("SubscribeURL"), what="SubscribeURL", pem=False)
    except WebhookSignatureError as exc:
        # Verified but unusable: refuse it for good rather than retry a fetch we will never make.
        raise WebhookPayloadError(str(exc)) from exc
    query = urlsplit(url).query
    if "Action=ConfirmSubscription" not in query.split("&"):
        raise WebhookPayloadError(f"SubscribeURL does not confirm a subscription: {url!r}")
    await fetcher(url)
