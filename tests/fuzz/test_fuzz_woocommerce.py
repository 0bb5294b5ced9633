"""WooCommerce: real `order.created` and `product.updated` deliveries (and the unsigned creation
ping), mutated. Signed mutations parse or are refused; unsigned ones never pass verification."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
from hypothesis import assume, given
from hypothesis import strategies as st

from nexus.channels.woocommerce import WooCommerceDriver, create_driver
from nexus.drivers.contract import WebhookRequest
from nexus.errors import WebhookError
from tests.channels.woocommerce.woocommerce_testkit import WEBHOOK_SECRET, delivery, make_context, ping, raw
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
    {"quantity", "stock_quantity", "manage_stock", "status", "variation_id", "product_id", "sku", "id"}
    | {"line_items", "date_created_gmt", "date_modified_gmt"}
)
DELIVERIES = {
    "order.created": raw("webhook_order_created.json"),
    "product.updated": raw("webhook_product_updated_variation.json"),
}
TOPICS = st.sampled_from(sorted(DELIVERIES))


def _offline(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"webhook handling called {request.url}")


DRIVER: WooCommerceDriver = create_driver(
    make_context(httpx.AsyncClient(transport=httpx.MockTransport(_offline)))
)


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def refused(request: WebhookRequest) -> None:
    result = outcome("woocommerce verify (unsigned)", lambda: run(DRIVER.verify_webhook(request)))
    assert isinstance(result, WebhookError), "an unverified WooCommerce delivery passed verification"


@FUZZ
@given(data=st.data(), topic=TOPICS)
def test_signed_mutations_parse_or_are_refused(data: st.DataObject, topic: str) -> None:
    body = data.draw(mutated_body(DELIVERIES[topic], HOT), label="body")
    request = delivery(topic, body)
    run(DRIVER.verify_webhook(request))
    outcome("woocommerce describe (signed)", lambda: DRIVER.describe_webhook(request))
    events = outcome("woocommerce parse (signed)", lambda: DRIVER.parse_webhook(request))
    if not isinstance(events, WebhookError):
        check_events(events, negative_levels=True)  # stock_quantity goes negative on backorder


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
    original = DELIVERIES[topic]
    body = data.draw(mutated_body(original, HOT), label="body") if mutate_body else original
    headers = dict(delivery(topic, body).headers)
    correct = headers.pop("x-wc-webhook-signature")
    change = data.draw(st.sampled_from(["missing", "wrong", "wrong secret", "upper-case name"]))
    if change == "wrong":
        headers["x-wc-webhook-signature"] = data.draw(wrong_base64_signature(correct), label="signature")
    elif change == "wrong secret":
        secret = data.draw(st.text(max_size=30).filter(lambda s: s != WEBHOOK_SECRET), label="secret")
        headers["x-wc-webhook-signature"] = sign(body, secret)
    elif change == "upper-case name":
        headers["X-WC-Webhook-Signature"] = correct
    refused(with_headers(delivery(topic, body), headers))


@FUZZ
@given(
    body=st.binary(max_size=40) | st.sampled_from([b"webhook_id=7", b"webhook_id=7&x=1", b" webhook_id=07 "])
)
def test_the_unsigned_creation_ping_carries_nothing(body: bytes) -> None:
    # The ping is the one unsigned delivery WooCommerce sends: whatever passes as a ping must
    # describe as one and parse to no events, so an unsigned body never reaches the stock.
    request = ping(body)
    verified = outcome("woocommerce verify (ping)", lambda: run(DRIVER.verify_webhook(request)))
    if isinstance(verified, WebhookError):
        return
    assert DRIVER.describe_webhook(request).topic == "ping"
    assert DRIVER.parse_webhook(request) == []
