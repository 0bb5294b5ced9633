"""The generic REST channel, configured as the point-of-sale back office of its tests: its sale and
stock-change deliveries (hex HMAC with a `sha256=` prefix), mutated."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from nexus.channels.rest import create_driver
from nexus.drivers.contract import ChannelContext, WebhookRequest
from nexus.errors import WebhookError
from nexus.ratelimit import BoundLimiter, InProcessTokenBucket
from nexus.ratelimit.config import RateLimitConfig
from tests.channels.rest.pos_testkit import CREDENTIALS, LEVEL, SALE, SETTINGS, WEBHOOK_SECRET, signed
from tests.fuzz.fuzz_kit import FUZZ, check_events, mutated_body, outcome, run, with_body, with_headers

HOT = frozenset({"type", "sale_id", "lines", "sku", "quantity"})
DELIVERIES = {"sale": json.dumps(SALE).encode(), "level": json.dumps(LEVEL).encode()}
KINDS = st.sampled_from(sorted(DELIVERIES))


def _offline(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"webhook handling called {request.url}")


DRIVER = create_driver(
    ChannelContext(
        name="pos",
        driver="rest",
        base_url="https://pos.example.com",
        credentials=CREDENTIALS,
        settings=SETTINGS,
        http=httpx.AsyncClient(transport=httpx.MockTransport(_offline)),
        rate=BoundLimiter(InProcessTokenBucket(), "pos:default", RateLimitConfig(10, 10)),
    )
)


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(body: bytes) -> WebhookRequest:
    return with_headers(with_body(signed({}), body), {**signed({}).headers, "x-pos-signature": sign(body)})


def refused(request: WebhookRequest) -> None:
    result = outcome("rest verify (unsigned)", lambda: run(DRIVER.verify_webhook(request)))
    assert isinstance(result, WebhookError), "an unverified REST delivery passed verification"


@FUZZ
@given(data=st.data(), kind=KINDS)
def test_signed_mutations_parse_or_are_refused(data: st.DataObject, kind: str) -> None:
    body = data.draw(mutated_body(DELIVERIES[kind], HOT), label="body")
    request = delivery(body)
    run(DRIVER.verify_webhook(request))
    outcome("rest describe (signed)", lambda: DRIVER.describe_webhook(request))
    events = outcome("rest parse (signed)", lambda: DRIVER.parse_webhook(request))
    if not isinstance(events, WebhookError):
        check_events(events, negative_levels=False)  # the REST channel refuses quantities below 0


@FUZZ
@given(data=st.data(), kind=KINDS, mutate_body=st.booleans())
def test_unsigned_or_wrongly_signed_mutations_are_refused(
    data: st.DataObject, kind: str, mutate_body: bool
) -> None:
    original = DELIVERIES[kind]
    body = data.draw(mutated_body(original, HOT), label="body") if mutate_body else original
    headers = dict(delivery(original if mutate_body else body).headers)
    correct = headers["x-pos-signature"]
    change = data.draw(st.sampled_from(["keep", "missing", "wrong secret", "unprefixed", "flipped", "upper"]))
    if change == "keep":
        assume(body != original)  # the signature of the original body over a mutated one
    elif change == "missing":
        del headers["x-pos-signature"]
    elif change == "wrong secret":
        headers["x-pos-signature"] = sign(
            body, data.draw(st.text(max_size=20).filter(lambda s: s != WEBHOOK_SECRET))
        )
    elif change == "unprefixed":
        headers["x-pos-signature"] = sign(body).removeprefix("sha256=")
    elif change == "flipped":
        at = data.draw(st.integers(len("sha256="), len(correct) - 1))
        headers["x-pos-signature"] = correct[:at] + ("0" if correct[at] != "0" else "1") + correct[at + 1 :]
    else:
        headers["X-Pos-Signature"] = headers.pop("x-pos-signature")
    refused(with_headers(with_body(delivery(body), body), headers))


def test_rest_deep_json_is_a_payload_error() -> None:
    body = b'{"type": "sale.completed", "lines": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    with pytest.raises(WebhookError):
        DRIVER.parse_webhook(delivery(body))
