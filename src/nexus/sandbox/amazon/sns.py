"""An Amazon SNS topic delivering to HTTP(S) subscribers, signed like the real one.

Message JSON (AWS "Parsing message formats"): Notification `{Type, MessageId, TopicArn, Subject?,
Message, Timestamp, SignatureVersion, Signature, SigningCertURL, UnsubscribeURL}`;
SubscriptionConfirmation `{Type, MessageId, Token, TopicArn, Message, SubscribeURL, Timestamp,
SignatureVersion, Signature, SigningCertURL}`. Signature: base64 RSA (SHA1 for version "1",
SHA256 for "2") over "{Key}\\n{Value}\\n" for the type's keys in order. Headers:
`x-amz-sns-message-type`, `x-amz-sns-message-id`, `x-amz-sns-topic-arn`,
`x-amz-sns-subscription-arn` (notifications), `Content-Type: text/plain; charset=UTF-8`.

The key and a self-signed certificate are generated per sandbox; the certificate's URL looks like
SNS's own (`https://sns.<region>.amazonaws.com/SimpleNotificationService-<id>.pem`) and is served
by `fetch`, which a test hands the driver as its fetcher. `fetch` also answers the SubscribeURL
(`https://sns.<region>.amazonaws.com/?Action=ConfirmSubscription&TopicArn=..&Token=..`).

Delivery: a subscription receives notifications only once confirmed. A failed attempt (non-2xx,
no answer) is retried 3 times, 20 s apart (the default HTTP/S delivery policy), divided by
`time_scale`. Which 4xx answers SNS retries is *unconfirmed*: here every failure is retried.
The queue and the retries are `nexus.sandbox.delivery`'s (one worker, in publication order).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from nexus.sandbox.delivery import DeliveryQueue, Outgoing, RetryPolicy
from nexus.sandbox.stats import SandboxStats

USER_AGENT = "Amazon Simple Notification Service Agent"
DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = 20.0
TIMEOUT_SECONDS = 15.0
_KEYS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def _timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def self_signed(common_name: str) -> tuple[rsa.RSAPrivateKey, bytes]:
    """A fresh RSA key and a self-signed certificate (PEM) for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class Subscription:
    address: str
    arn: str
    token: str
    confirmed: bool = False
    types: set[str] = field(default_factory=set)


def retry_policy(delay: float = DEFAULT_RETRY_DELAY, retries: int = DEFAULT_RETRIES) -> RetryPolicy:
    return RetryPolicy.fixed(delay, retries, timeout=TIMEOUT_SECONDS)


@dataclass(frozen=True, slots=True)
class _Delivery:
    address: str
    body: bytes
    headers: dict[str, str]


class SnsTopic(DeliveryQueue[_Delivery]):
    def __init__(
        self,
        *,
        stats: SandboxStats,
        region: str = "us-east-1",
        account: str = "123456789012",
        name: str = "nexus-sp-api-notifications",
        signature_version: str = "1",
        time_scale: float = 1.0,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        retries: int = DEFAULT_RETRIES,
        auto_confirm: bool = False,
    ) -> None:
        if signature_version not in ("1", "2"):
            raise ValueError("signature_version must be '1' or '2'")
        super().__init__(stats=stats, policy=retry_policy(retry_delay, retries), time_scale=time_scale)
        self.arn = f"arn:aws:sns:{region}:{account}:{name}"
        self.host = f"sns.{region}.amazonaws.com"
        self.signature_version = signature_version
        self.auto_confirm = auto_confirm
        self._key, self.certificate_pem = self_signed(self.host)
        self.certificate_url = f"https://{self.host}/SimpleNotificationService-{secrets.token_hex(16)}.pem"
        self.subscriptions: dict[str, Subscription] = {}
        self.fetched_urls: list[str] = []

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, notification_type: str, address: str) -> Subscription:
        """Subscribe `address` to the topic for `notification_type`; a new address gets a
        SubscriptionConfirmation first (unless `auto_confirm`)."""
        subscription = self.subscriptions.get(address)
        if subscription is None:
            subscription = Subscription(
                address=address, arn=f"{self.arn}:{uuid.uuid4()}", token=secrets.token_hex(64)
            )
            self.subscriptions[address] = subscription
            if self.auto_confirm:
                subscription.confirmed = True
            else:
                self._send_confirmation(subscription)
        subscription.types.add(notification_type)
        return subscription

    def subscribe_url(self, subscription: Subscription) -> str:
        query = urlencode(
            {"Action": "ConfirmSubscription", "TopicArn": self.arn, "Token": subscription.token}
        )
        return f"https://{self.host}/?{query}"

    def confirm(self, token: str) -> Subscription | None:
        for subscription in self.subscriptions.values():
            if secrets.compare_digest(subscription.token, token):
                if not subscription.confirmed:
                    subscription.confirmed = True
                    self._stats.subscriptions_confirmed += 1
                return subscription
        return None

    async def fetch(self, url: str) -> bytes:
        """What GET `url` returns from SNS: the signing certificate, or a ConfirmSubscription answer."""
        self.fetched_urls.append(url)
        parts = urlsplit(url)
        if parts.scheme != "https" or parts.hostname != self.host:
            raise httpx.ConnectError(f"the sandbox serves no host but {self.host}: {url}")
        if url == self.certificate_url:
            return self.certificate_pem
        query = parse_qs(parts.query)
        if query.get("Action") == ["ConfirmSubscription"] and query.get("TopicArn") == [self.arn]:
            subscription = self.confirm((query.get("Token") or [""])[0])
            if subscription is not None:
                return (
                    '<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
                    f"<ConfirmSubscriptionResult><SubscriptionArn>{subscription.arn}</SubscriptionArn>"
                    "</ConfirmSubscriptionResult><ResponseMetadata>"
                    f"<RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></ConfirmSubscriptionResponse>"
                ).encode()
        raise httpx.HTTPStatusError(
            f"GET {url}: 404", request=httpx.Request("GET", url), response=httpx.Response(404)
        )

    # -- publishing ---------------------------------------------------------------------------

    def publish(self, notification_type: str, message: str) -> int:
        """Queue one Notification per confirmed subscription to `notification_type`."""
        message_id = str(uuid.uuid4())
        queued = 0
        for subscription in self.subscriptions.values():
            if notification_type not in subscription.types:
                continue
            if not subscription.confirmed:
                self._stats.webhooks_unconfirmed += 1
                continue
            fields = {
                "Type": "Notification",
                "MessageId": message_id,
                "TopicArn": self.arn,
                "Message": message,
                "Timestamp": _timestamp(),
                "UnsubscribeURL": f"https://{self.host}/?Action=Unsubscribe&SubscriptionArn={subscription.arn}",
            }
            self._enqueue(subscription, fields)
            queued += 1
        return queued

    def sign(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """`fields` with SignatureVersion, Signature and SigningCertURL added."""
        content = "".join(
            f"{key}\n{fields[key]}\n" for key in _KEYS[str(fields["Type"])] if fields.get(key) is not None
        ).encode()
        algorithm = hashes.SHA1() if self.signature_version == "1" else hashes.SHA256()
        signature = self._key.sign(content, padding.PKCS1v15(), algorithm)
        return {
            **fields,
            "SignatureVersion": self.signature_version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": self.certificate_url,
        }

    def _send_confirmation(self, subscription: Subscription) -> None:
        fields = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": subscription.token,
            "TopicArn": self.arn,
            "Message": (
                f"You have chosen to subscribe to the topic {self.arn}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            "SubscribeURL": self.subscribe_url(subscription),
            "Timestamp": _timestamp(),
        }
        self._enqueue(subscription, fields)

    def _enqueue(self, subscription: Subscription, fields: Mapping[str, Any]) -> None:
        signed = self.sign(fields)
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "User-Agent": USER_AGENT,
            "x-amz-sns-message-type": str(fields["Type"]),
            "x-amz-sns-message-id": str(fields["MessageId"]),
            "x-amz-sns-topic-arn": self.arn,
        }
        if fields["Type"] == "Notification":
            headers["x-amz-sns-subscription-arn"] = subscription.arn
        body = json.dumps(signed, indent=2).encode()
        self.put(_Delivery(subscription.address, body, headers))

    def render(self, item: _Delivery) -> Outgoing:
        return Outgoing(item.address, item.body, item.headers)
