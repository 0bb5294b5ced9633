"""Signed webhook delivery in the Standard Webhooks scheme, with Etsy's retry schedule.

Each message gets one `webhook-id` ("msg_..."), kept on every retry; each attempt gets a fresh
`webhook-timestamp` and a `webhook-signature` holding one "v1,<base64>" entry per signing secret
(two while a secret rotates). Signed content: "{id}.{timestamp}.{body}", HMAC-SHA256 keyed with
base64-decode(secret without "whsec_").

Retries (Etsy's webhook docs, as quoted by the AsyncAPI description api-evangelist/etsy; the same
as the Standard Webhooks example schedule): immediately, then 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h, divided by `time_scale`. Any 2xx is a success; anything else, or no answer in
`timeout` seconds, is a failure. Faults: `drop_rate` loses a message, `duplicate_rate` sends a
delivered one again (same id, a new timestamp and signature).

The signature is computed here, independently of the driver's verifier
(`nexus.channels.etsy.webhooks`), so that a signing bug on either side fails a test. The queue,
the retries and the faults are `nexus.sandbox.delivery`'s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nexus.sandbox.delivery import DeliveryQueue, Faults, Outgoing, RetryPolicy, Subscriptions
from nexus.sandbox.stats import SandboxStats

RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
TIMEOUT_SECONDS = 15.0  # Standard Webhooks recommends 15-30 s
SECRET_PREFIX = "whsec_"


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One "v1,<base64>" entry of `webhook-signature`: HMAC-SHA256 over "{id}.{timestamp}.{body}",
    keyed with the base64-decoded secret after its "whsec_" prefix."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass(slots=True)
class Message:
    event_type: str
    address: str
    body: bytes
    webhook_id: str


class StandardWebhookDispatcher(DeliveryQueue[Message]):
    """Every message is sent in a task of its own (no delivery workers), as a webhook service
    sends them in parallel."""

    def __init__(
        self,
        *,
        secrets_: Callable[[], Sequence[str]],
        stats: SandboxStats,
        rng: random.Random,
        time_scale: float = 1.0,
        retry_schedule: Sequence[float] = RETRY_SCHEDULE,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            stats=stats,
            policy=RetryPolicy.schedule(retry_schedule, timeout=TIMEOUT_SECONDS),
            faults=faults,
            rng=rng,
            time_scale=time_scale,
            concurrency=None,
        )
        self._secrets = secrets_
        self._clock = clock
        self.subscriptions = Subscriptions()

    def subscribe(self, event_type: str, address: str) -> None:
        self.subscriptions.add(event_type, address)

    def emit(self, event_type: str, payload: Mapping[str, Any]) -> int:
        """One message per subscribed endpoint; returns how many were queued."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return sum(
            self.put(Message(event_type, address, body, f"msg_{secrets.token_urlsafe(18)}"))
            for address in self.subscriptions.addresses(event_type)
        )

    def headers(self, message: Message) -> dict[str, str]:
        timestamp = int(self._clock())
        signatures = " ".join(
            standard_signature(secret, message.webhook_id, timestamp, message.body)
            for secret in self._secrets()
        )
        return {
            "content-type": "application/json",
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
        }

    def render(self, item: Message) -> Outgoing:
        return Outgoing(item.address, item.body, self.headers(item))
