"""Shopify: real `orders/create` and `inventory_levels/update` deliveries, mutated.

Signed mutations must parse or be refused with a WebhookError; mutations the signature does not
cover (or a wrong signature) must be refused by `verify_webhook` before anything is read."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
from hypothesis import assume, given
from hypothesis import strategies as st

from nexus.channels.shopify import ShopifyDriver, create_driver
from nexus.drivers.contract import WebhookRequest
from nexus.errors import WebhookError
from tests.channels.shopify.shopify_testkit import SECRET, delivery, make_context, raw
from tests.fuzz.fuzz_kit import (
    FUZZ,
    check_events,
    mutated_body,
    outcome,
    run,
    with_body,
    with_headers,
    wrong_base64_signature,
)

HOT = frozenset(
    {"quantity", "available", "variant_id", "sku", "id", "line_items", "inventory_item_id", "location_id"}
    | {"created_at", "updated_at"}
)
DELIVERIES = {
    "orders/create": raw("orders_create.json"),
    "inventory_levels/update": raw("inventory_levels_update.json"),
}
TOPICS = st.sampled_from(sorted(DELIVERIES))


def _offline(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"webhook handling called {request.url}")


DRIVER: ShopifyDriver = create_driver(
    make_context(
        httpx.AsyncClient(transport=httpx.MockTransport(_offline)), settings={"location_id": 24826418}
    )
)


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def refused(request: WebhookRequest) -> None:
    result = outcome("shopify verify (unsigned)", lambda: run(DRIVER.verify_webhook(request)))
    assert isinstance(result, WebhookError), "an unverified Shopify delivery passed verification"


@FUZZ
@given(
    data=st.data(),
    topic=TOPICS,
    triggered=st.sampled_from(["2026-11-21T10:00:00Z", "0001-01-01T00:00:00+01:00", "x"]),
)
def test_signed_mutations_parse_or_are_refused(data: st.DataObject, topic: str, triggered: str) -> None:
    body = data.draw(mutated_body(DELIVERIES[topic], HOT), label="body")
    request = delivery(topic, body, extra={"x-shopify-triggered-at": triggered})
    run(DRIVER.verify_webhook(request))  # signed: must pass
    outcome("shopify describe (signed)", lambda: DRIVER.describe_webhook(request))
    events = outcome("shopify parse (signed)", lambda: DRIVER.parse_webhook(request))
    if not isinstance(events, WebhookError):
        check_events(events, negative_levels=True)  # Shopify levels go negative when oversold


@FUZZ
@given(data=st.data(), topic=TOPICS)
def test_bodies_the_signature_does_not_cover_are_refused(data: st.DataObject, topic: str) -> None:
    original = DELIVERIES[topic]
    body = data.draw(mutated_body(original, HOT), label="body")
    assume(body != original)
    refused(with_body(delivery(topic, original), body))


@FUZZ
@given(data=st.data(), topic=TOPICS, mutate_body=st.booleans())
def test_wrong_or_missing_signature_headers_are_refused(
    data: st.DataObject, topic: str, mutate_body: bool
) -> None:
    body = data.draw(mutated_body(DELIVERIES[topic], HOT), label="body") if mutate_body else DELIVERIES[topic]
    headers = dict(delivery(topic, body).headers)
    correct = headers.pop("x-shopify-hmac-sha256")
    change = data.draw(
        st.sampled_from(["missing", "wrong", "wrong secret", "upper-case name", "unprefixed wrong"])
    )
    if change == "wrong":
        headers["x-shopify-hmac-sha256"] = data.draw(wrong_base64_signature(correct), label="signature")
    elif change == "wrong secret":
        headers["x-shopify-hmac-sha256"] = sign(
            body, data.draw(st.text(max_size=30).filter(lambda s: s != SECRET))
        )
    elif change == "upper-case name":
        # WebhookRequest promises lower-cased names (the receiver lower-cases them): a name that is
        # not is as good as absent.
        headers["X-Shopify-Hmac-Sha256"] = correct
    elif change == "unprefixed wrong":
        headers["shopify-hmac-sha256"] = data.draw(wrong_base64_signature(correct), label="signature")
    refused(with_headers(delivery(topic, body), headers))
