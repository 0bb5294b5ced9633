"""Amazon: SNS messages carrying the real SP-API notifications (LISTINGS_ITEM_MFN_QUANTITY_CHANGE,
bare and in its EventBridge envelope, and ORDER_CHANGE), mutated.

The RSA signatures are made by the sandbox's SNS (its own key and certificate), not by the
driver: signed mutations of the notification must parse or be refused; changes to a signed
message, stale timestamps and foreign certificate URLs must never pass verification."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from hypothesis import assume, given
from hypothesis import strategies as st

from nexus.channels.amazon import AmazonDriver
from nexus.errors import WebhookError
from nexus.sandbox.amazon import AmazonSandbox
from tests.channels.amazon.amazon_testkit import load, make_driver, sns_request
from tests.fuzz.fuzz_kit import (
    FUZZ,
    VALUES,
    byte_mutation,
    check_events,
    mutated_body,
    outcome,
    run,
    with_body,
)

SELLER = "AXXXXXXXXXXXXX"
HOT = frozenset(
    {"Quantity", "Sku", "SellerId", "SellerSKU", "OrderItemId", "OrderItems", "AmazonOrderId", "Summary"}
    | {"FulfillmentType", "OrderStatus", "NotificationType", "Payload", "EventTime", "PurchaseDate", "detail"}
)


def _order_change() -> dict[str, Any]:
    body: dict[str, Any] = load("order_change.json")
    change = body["Payload"]["OrderChangeNotification"]
    change["SellerId"] = SELLER
    change["Summary"]["FulfillmentType"] = "MFN"
    return body


def _eventbridge(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "7e0f9d1c-0000-4000-8000-000000000000",
        "detail-type": detail["NotificationType"],
        "source": "aws.partner/sellingpartnerapi.amazon/amzn1.sellerapps.app.x",
        "time": detail["EventTime"],
        "detail": detail,
    }


NOTIFICATIONS = {
    "mfn": json.dumps(load("mfn_quantity_change.json")).encode(),
    "mfn in eventbridge": json.dumps(_eventbridge(load("mfn_quantity_change.json"))).encode(),
    "order change": json.dumps(_order_change()).encode(),
}
KINDS = st.sampled_from(sorted(NOTIFICATIONS))


def _offline(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"webhook handling called {request.url}")


SANDBOX = AmazonSandbox(signature_version="2")
DRIVER: AmazonDriver = make_driver(
    httpx.AsyncClient(transport=httpx.MockTransport(_offline)),
    SANDBOX,
    "https://sellingpartnerapi-na.amazon.com",
    seller_id=SELLER,
)


def fields(message: str, **overrides: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": SANDBOX.sns.arn,
        "Message": message,
        "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "UnsubscribeURL": f"https://{SANDBOX.sns.host}/?Action=Unsubscribe&SubscriptionArn=x",
        **overrides,
    }


def refused(message: dict[str, Any], body: bytes | None = None) -> None:
    request = sns_request(message)
    if body is not None:
        request = with_body(request, body)
    result = outcome("amazon verify (unsigned)", lambda: run(DRIVER.verify_webhook(request)))
    assert isinstance(result, WebhookError), "an unverified SNS message passed verification"


@FUZZ
@given(data=st.data(), kind=KINDS)
def test_signed_mutated_notifications_parse_or_are_refused(data: st.DataObject, kind: str) -> None:
    inner = data.draw(mutated_body(NOTIFICATIONS[kind], HOT), label="Message")
    # SNS carries the Message as a JSON string: bytes that are not UTF-8 cannot be published.
    text = inner.decode("utf-8", "replace")
    request = sns_request(SANDBOX.sns.sign(fields(text)))
    run(DRIVER.verify_webhook(request))
    outcome("amazon describe (signed)", lambda: DRIVER.describe_webhook(request))
    events = outcome("amazon parse (signed)", lambda: DRIVER.parse_webhook(request))
    if not isinstance(events, WebhookError):
        check_events(events, negative_levels=True)  # Quantity is a bare integer in the schema


SIGNED_KEYS = ["Message", "MessageId", "Timestamp", "TopicArn", "Type", "Subject"]


@FUZZ
@given(data=st.data(), kind=KINDS)
def test_changes_to_a_signed_message_are_refused(data: st.DataObject, kind: str) -> None:
    message = SANDBOX.sns.sign(fields(NOTIFICATIONS[kind].decode()))
    change = data.draw(
        st.sampled_from(["signed field", "drop", "signature", "cert url", "version", "stale", "body bytes"])
    )
    if change == "signed field":
        key = data.draw(st.sampled_from(SIGNED_KEYS), label="key")
        value = data.draw(VALUES | st.text(max_size=20), label="value")
        assume(value is not None and str(value) != str(message.get(key)))
        if key == "Type":
            assume(str(value) != "Notification")
        message[key] = value
    elif change == "drop":
        key = data.draw(
            st.sampled_from([*SIGNED_KEYS[:5], "Signature", "SigningCertURL", "SignatureVersion"])
        )
        del message[key]
    elif change == "signature":
        message["Signature"] = data.draw(st.text(max_size=40) | st.just(message["Signature"][:-4] + "AAA="))
    elif change == "cert url":
        message["SigningCertURL"] = data.draw(
            st.sampled_from(
                [
                    "http://sns.us-east-1.amazonaws.com/cert.pem",
                    "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
                    "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
                    "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
                    "https://user:pw@sns.us-east-1.amazonaws.com/cert.pem",
                    "https://sns.us-east-1.amazonaws.com/other.pem",
                    "https://[::1/cert.pem",
                    "https://sns.us-east-1.amazonaws.com:99999/cert.pem",
                ]
            )
        )
    elif change == "version":
        message["SignatureVersion"] = data.draw(st.sampled_from(["1", "3", "", "2 ", None]))
        assume(message["SignatureVersion"] != "2")
    elif change == "stale":
        # Signed by SNS, but long ago (or in the future): a replayed capture.
        skew = data.draw(st.integers(3601, 10**9), label="seconds") * data.draw(st.sampled_from([1, -1]))
        try:
            when = datetime.now(UTC) + timedelta(seconds=skew)
        except OverflowError:
            return
        message = SANDBOX.sns.sign(
            fields(NOTIFICATIONS[kind].decode(), Timestamp=when.isoformat().replace("+00:00", "Z"))
        )
    else:
        original = json.dumps(message).encode()
        body = data.draw(byte_mutation(original), label="body")
        assume(body != original)
        try:
            changed = json.loads(body)
        except (ValueError, RecursionError):
            changed = None
        covered = [*SIGNED_KEYS, "Signature", "SigningCertURL", "SignatureVersion"]
        if isinstance(changed, dict) and all(changed.get(k) == message.get(k) for k in covered):
            return  # only what the signature does not cover changed (UnsubscribeURL, spacing)
        refused(message, body)
        return
    refused(message)


@FUZZ
@given(data=st.data())
def test_messages_from_a_foreign_topic_are_refused(data: st.DataObject) -> None:
    arn = data.draw(st.text(max_size=40).filter(lambda a: a != SANDBOX.sns.arn), label="TopicArn")
    refused(SANDBOX.sns.sign(fields(NOTIFICATIONS["mfn"].decode(), TopicArn=arn)))
