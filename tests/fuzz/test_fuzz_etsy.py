"""Etsy: the real thin `order.paid` delivery (Standard Webhooks signature) and the receipt it
names, mutated. Signed, fresh mutations are checked or refused; anything unsigned, wrongly signed
or stale never passes verification; a mutated receipt becomes sales or a WebhookError."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
from hypothesis import assume, given
from hypothesis import strategies as st

from nexus.channels.etsy import EtsyDriver, create_driver, webhooks
from nexus.drivers.contract import WebhookRequest
from nexus.errors import WebhookError
from tests.channels.etsy.etsy_testkit import SECRET, SHOP_ID, load, make_context, raw
from tests.fuzz.fuzz_kit import FUZZ, check_events, mutated_body, outcome, run

HOT = frozenset({"event_type", "resource_url", "shop_id"})
RECEIPT_HOT = frozenset(
    {"receipt_id", "transactions", "quantity", "transaction_id", "listing_id", "sku", "product_id"}
    | {"paid_timestamp", "created_timestamp", "variations", "property_values"}
)
ORDER_PAID = raw("order_paid.json")
RECEIPT = json.dumps(load("receipt.json")).encode()
TOLERANCE = 300
WEBHOOK_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def _offline(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"webhook handling called {request.url}")


DRIVER: EtsyDriver = create_driver(
    make_context(
        httpx.AsyncClient(transport=httpx.MockTransport(_offline)),
        base_url=None,
        credentials={"keystring": "k", "shared_secret": "s", "refresh_token": "r", "webhook_secret": SECRET},
        settings={"shop_id": SHOP_ID, "webhook_tolerance_seconds": TOLERANCE},
    )
)


def signature(webhook_id: str, timestamp: str, body: bytes, secret: str = SECRET) -> str:
    """The Standard Webhooks scheme written out here, independently of the driver."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    from datetime import UTC, datetime

    return WebhookRequest(channel="etsy-shop", headers=headers, body=body, received_at=datetime.now(UTC))


def signed_headers(body: bytes, timestamp: str | None = None, webhook_id: str = WEBHOOK_ID) -> dict[str, str]:
    stamp = str(int(time.time())) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": stamp,
        "webhook-signature": signature(webhook_id, stamp, body),
    }


def refused(delivery: WebhookRequest) -> None:
    result = outcome("etsy verify (unsigned)", lambda: run(DRIVER.verify_webhook(delivery)))
    assert isinstance(result, WebhookError), "an unverified Etsy delivery passed verification"


@FUZZ
@given(data=st.data())
def test_signed_mutations_are_checked_or_refused(data: st.DataObject) -> None:
    body = data.draw(mutated_body(ORDER_PAID, HOT), label="body")
    delivery = request(body, signed_headers(body))
    run(DRIVER.verify_webhook(delivery))
    outcome("etsy describe (signed)", lambda: DRIVER.describe_webhook(delivery))
    events = outcome("etsy parse (signed)", lambda: DRIVER.parse_webhook(delivery))
    if not isinstance(events, WebhookError):
        check_events(events, negative_levels=False)


@FUZZ
@given(data=st.data())
def test_mutated_receipts_become_sales_or_are_refused(data: st.DataObject) -> None:
    body = data.draw(mutated_body(RECEIPT, RECEIPT_HOT), label="receipt")
    try:
        receipt = json.loads(body)
    except (ValueError, RecursionError):
        return  # Etsy's API answers JSON; the client refuses anything else before this point
    assume(isinstance(receipt, dict))
    events = outcome("etsy receipt_sales", lambda: webhooks.receipt_sales(receipt))
    if not isinstance(events, WebhookError):
        check_events(events, negative_levels=False)


@FUZZ
@given(data=st.data())
def test_bodies_the_signature_does_not_cover_are_refused(data: st.DataObject) -> None:
    body = data.draw(mutated_body(ORDER_PAID, HOT), label="body")
    assume(body != ORDER_PAID)
    refused(request(body, signed_headers(ORDER_PAID)))


STALE = st.integers(TOLERANCE + 1, 10**12) | st.sampled_from([TOLERANCE + 1, 10**20, 10**400])
ODD_STAMPS = st.sampled_from(
    ["", " ", "abc", "1e9", "-1", "1_700_000_000", "\u0661\u0667" + "\u0660" * 8, "9" * 5000, "nan"]
)


@FUZZ
@given(data=st.data(), mutate_body=st.booleans())
def test_wrong_stale_or_missing_signature_headers_are_refused(data: st.DataObject, mutate_body: bool) -> None:
    body = data.draw(mutated_body(ORDER_PAID, HOT), label="body") if mutate_body else ORDER_PAID
    headers = signed_headers(body)
    change = data.draw(
        st.sampled_from(["missing", "stale", "odd timestamp", "other id", "wrong secret", "garbage", "upper"])
    )
    if change == "missing":
        del headers[data.draw(st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]))]
    elif change == "stale":
        # Correctly signed, but too far from now: a replayed capture.
        skew = data.draw(STALE, label="skew") * data.draw(st.sampled_from([1, -1]))
        headers = signed_headers(body, str(int(time.time()) + skew))
    elif change == "odd timestamp":
        headers = signed_headers(body, data.draw(ODD_STAMPS, label="timestamp"))
    elif change == "other id":
        headers["webhook-id"] = data.draw(st.text(min_size=1, max_size=30).filter(lambda s: s != WEBHOOK_ID))
    elif change == "wrong secret":
        other = "whsec_" + base64.b64encode(data.draw(st.binary(min_size=1, max_size=32))).decode()
        assume(base64.b64decode(other[6:]) != base64.b64decode(SECRET[6:]))
        headers["webhook-signature"] = signature(WEBHOOK_ID, headers["webhook-timestamp"], body, other)
    elif change == "garbage":
        headers["webhook-signature"] = data.draw(
            st.text(max_size=80)
            | st.sampled_from(["v1,", "v1a,AAAA", "v2," + headers["webhook-signature"][3:]])
        )
    else:
        headers["Webhook-Signature"] = headers.pop("webhook-signature")
    refused(request(body, headers))
