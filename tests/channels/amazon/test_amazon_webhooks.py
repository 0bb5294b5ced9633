"""SNS deliveries: real RSA signatures (SignatureVersion 1 and 2), certificate URL checks,
subscription confirmation, and the SP-API notifications inside."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from amazon_testkit import load, make_driver, sns_request

from nexus.channels.amazon import AmazonDriver
from nexus.drivers.contract import ObservedLevel, SaleEvent
from nexus.errors import WebhookPayloadError, WebhookSignatureError
from nexus.sandbox.amazon import AmazonSandbox

FIXTURE_SELLER = "AXXXXXXXXXXXXX"
BASE_URL = "https://sellingpartnerapi-na.amazon.com"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # Webhook handling must not touch the network: every request here is a test failure.
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request to {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        yield client


def make(
    http: httpx.AsyncClient, signature_version: str = "1", **settings: Any
) -> tuple[AmazonSandbox, AmazonDriver]:
    sandbox = AmazonSandbox(signature_version=signature_version)
    return sandbox, make_driver(http, sandbox, BASE_URL, **settings)


def notification(sandbox: AmazonSandbox, body: Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    fields = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": sandbox.sns.arn,
        "Message": json.dumps(body),
        "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "UnsubscribeURL": f"https://{sandbox.sns.host}/?Action=Unsubscribe&SubscriptionArn=x",
        **overrides,
    }
    return sandbox.sns.sign(fields)


def eventbridge(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail["NotificationType"],
        "source": "aws.partner/sellingpartnerapi.amazon/amzn1.sellerapps.app.x",
        "account": "123456789012",
        "time": detail["EventTime"],
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


# -- signatures -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
async def test_valid_signature_is_accepted_and_the_certificate_fetched_once(
    http: httpx.AsyncClient, version: str
) -> None:
    sandbox, driver = make(http, version)
    for quantity in (5, 6, 7):
        body = load("mfn_quantity_change.json")
        body["Payload"]["Quantity"] = quantity
        await driver.verify_webhook(sns_request(notification(sandbox, body)))
    assert sandbox.sns.fetched_urls == [sandbox.sns.certificate_url]
    assert driver.sns.certificate_fetches == 1


@pytest.mark.parametrize("version", ["1", "2"])
async def test_tampered_message_is_refused(http: httpx.AsyncClient, version: str) -> None:
    sandbox, driver = make(http, version)
    message = notification(sandbox, load("mfn_quantity_change.json"))
    message["Message"] = message["Message"].replace('"Quantity": 99', '"Quantity": 0')
    with pytest.raises(WebhookSignatureError, match="does not match"):
        await driver.verify_webhook(sns_request(message))


async def test_signature_of_the_other_version_is_refused(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http, "1")
    message = notification(sandbox, load("mfn_quantity_change.json"))
    message["SignatureVersion"] = "2"  # a SHA1 signature checked as SHA256
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(sns_request(message))
    message["SignatureVersion"] = "3"
    with pytest.raises(WebhookSignatureError, match="SignatureVersion"):
        await driver.verify_webhook(sns_request(message))


@pytest.mark.parametrize(
    ("age", "accepted"), [(3599, True), (3601, False), (31 * 86_400, False), (-3601, False)]
)
async def test_a_captured_message_cannot_be_replayed_later(
    http: httpx.AsyncClient, age: float, accepted: bool
) -> None:
    # Validly signed, but its Timestamp (covered by the signature) is older than sns_max_age
    # (default one hour): a replay of a captured message, refused before it can book stock.
    sandbox, driver = make(http)
    stamp = datetime.now(UTC) - timedelta(seconds=age)
    message = notification(
        sandbox, load("mfn_quantity_change.json"), Timestamp=stamp.isoformat().replace("+00:00", "Z")
    )
    if accepted:
        await driver.verify_webhook(sns_request(message))
        return
    with pytest.raises(WebhookSignatureError, match="sns_max_age"):
        await driver.verify_webhook(sns_request(message))


async def test_the_replay_tolerance_is_a_setting(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http, sns_max_age=60)
    stamp = datetime.now(UTC) - timedelta(seconds=120)
    message = notification(
        sandbox, load("mfn_quantity_change.json"), Timestamp=stamp.isoformat().replace("+00:00", "Z")
    )
    with pytest.raises(WebhookSignatureError, match="beyond the 60 s tolerance"):
        await driver.verify_webhook(sns_request(message))


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",  # not https
        "https://evil.example.com/SimpleNotificationService-abc.pem",  # not an SNS host
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-abc.pem",
        "https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/cert.pem",  # amazonaws, but S3
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.txt",  # not .pem
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com:port/SimpleNotificationService-abc.pem",
    ],
)
async def test_bad_certificate_url_is_refused_without_fetching(http: httpx.AsyncClient, url: str) -> None:
    sandbox, driver = make(http)
    message = notification(sandbox, load("mfn_quantity_change.json"))
    message["SigningCertURL"] = url
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(sns_request(message))
    assert sandbox.sns.fetched_urls == []


async def test_china_region_host_is_an_sns_host(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http)
    message = notification(sandbox, load("mfn_quantity_change.json"))
    message["SigningCertURL"] = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem"
    # The host passes; the sandbox serves no certificate there, so the fetch itself fails.
    with pytest.raises(WebhookSignatureError, match="cannot load"):
        await driver.verify_webhook(sns_request(message))
    assert sandbox.sns.fetched_urls == [
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem"
    ]


async def test_topic_outside_the_configured_list_is_refused(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http)
    message = notification(
        sandbox, load("mfn_quantity_change.json"), TopicArn="arn:aws:sns:us-east-1:666:attacker"
    )
    with pytest.raises(WebhookSignatureError, match="topic"):
        await driver.verify_webhook(sns_request(message))


async def test_message_type_header_must_match(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http)
    message = notification(sandbox, load("mfn_quantity_change.json"))
    request = sns_request(message, headers={"x-amz-sns-message-type": "SubscriptionConfirmation"})
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(request)


async def test_body_that_is_not_json_is_refused(http: httpx.AsyncClient) -> None:
    _, driver = make(http)
    request = sns_request({"Type": "Notification"})
    with pytest.raises(WebhookSignatureError):
        await driver.verify_webhook(
            request.__class__(request.channel, request.headers, b"not json", request.received_at)
        )


# -- subscription confirmation ----------------------------------------------------------------


async def test_subscription_confirmation_is_confirmed_by_the_processor(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http)
    subscription = sandbox.sns.subscribe("LISTINGS_ITEM_MFN_QUANTITY_CHANGE", "http://127.0.0.1:9/hook")
    message = sandbox.sns.sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": subscription.token,
            "TopicArn": sandbox.sns.arn,
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": sandbox.sns.subscribe_url(subscription),
            "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
    )
    request = sns_request(message)
    await driver.verify_webhook(request)
    assert driver.describe_webhook(request).topic == "sns/SubscriptionConfirmation"
    assert driver.parse_webhook(request) == []  # at ingest: no network call
    assert not subscription.confirmed
    assert await driver.resolve_webhook(request) == []
    assert subscription.confirmed
    assert sandbox.sns.fetched_urls[-1] == sandbox.sns.subscribe_url(subscription)
    await sandbox.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "https://attacker.example/?Action=ConfirmSubscription&Token=x",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        "https://sns.us-east-1.amazonaws.com.attacker.example/?Action=ConfirmSubscription",
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    ],
)
async def test_forged_subscribe_url_is_never_fetched(http: httpx.AsyncClient, url: str) -> None:
    sandbox, driver = make(http)
    # Validly signed (a real SNS topic of the attacker's would sign it too): the URL decides.
    message = sandbox.sns.sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": "t",
            "TopicArn": sandbox.sns.arn,
            "Message": "m",
            "SubscribeURL": url,
            "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
    )
    request = sns_request(message)
    await driver.verify_webhook(request)
    fetched = list(sandbox.sns.fetched_urls)
    with pytest.raises(WebhookPayloadError):
        await driver.resolve_webhook(request)
    assert sandbox.sns.fetched_urls == fetched  # no request, to that host or any other


# -- notifications ------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapped", [False, True])
async def test_quantity_change_is_an_observed_level(http: httpx.AsyncClient, wrapped: bool) -> None:
    sandbox, driver = make(http, seller_id=FIXTURE_SELLER)
    body = load("mfn_quantity_change.json")
    request = sns_request(notification(sandbox, eventbridge(body) if wrapped else body))
    meta = driver.describe_webhook(request)
    assert meta.topic == "LISTINGS_ITEM_MFN_QUANTITY_CHANGE"
    assert meta.event_id == "8e009934-da2c-4f9c-9bc7-93f23b7e1f60"
    assert meta.delivery_id == request.headers["x-amz-sns-message-id"]
    (event,) = driver.parse_webhook(request)
    assert isinstance(event, ObservedLevel)
    assert (event.listing.remote_sku, event.quantity) == ("NLS-SHOES-03", 99)
    assert event.observed_at == datetime(2021, 2, 3, 18, 59, 30, 194000, tzinfo=UTC)
    assert await driver.resolve_webhook(request) == [event]


async def test_quantity_change_of_another_seller_or_channel_is_ignored(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http)  # the sandbox's seller id, not the fixture's
    assert driver.parse_webhook(sns_request(notification(sandbox, load("mfn_quantity_change.json")))) == []
    _, own = make(http, seller_id=FIXTURE_SELLER, fulfillment_channel_code="WAREHOUSE_2")
    assert own.parse_webhook(sns_request(notification(sandbox, load("mfn_quantity_change.json")))) == []


async def test_order_change_is_a_sale_per_order_item(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http, seller_id="A3TH9S8BH6GOGM")
    (sale,) = driver.parse_webhook(sns_request(notification(sandbox, load("order_change.json"))))
    assert isinstance(sale, SaleEvent)
    assert (sale.listing.remote_sku, sale.quantity, sale.order_id, sale.line_id) == (
        "SellerSKUID1",
        10,
        "903-8868176-2219830",
        "OIID34853450",
    )


@pytest.mark.parametrize(("field", "value"), [("OrderStatus", "Canceled"), ("FulfillmentType", "AFN")])
async def test_cancelled_or_amazon_fulfilled_orders_book_nothing(
    http: httpx.AsyncClient, field: str, value: str
) -> None:
    sandbox, driver = make(http, seller_id="A3TH9S8BH6GOGM")
    body = load("order_change.json")
    body["Payload"]["OrderChangeNotification"]["Summary"][field] = value
    assert driver.parse_webhook(sns_request(notification(sandbox, body))) == []


async def test_malformed_notifications_are_refused(http: httpx.AsyncClient) -> None:
    sandbox, driver = make(http, seller_id=FIXTURE_SELLER)
    body = load("mfn_quantity_change.json")
    body["Payload"]["Quantity"] = "99"
    with pytest.raises(WebhookPayloadError, match="Quantity"):
        driver.parse_webhook(sns_request(notification(sandbox, body)))
    with pytest.raises(WebhookPayloadError):
        driver.parse_webhook(sns_request(notification(sandbox, {"hello": "world"})))
    other = {**load("mfn_quantity_change.json"), "NotificationType": "ANY_OFFER_CHANGED"}
    assert driver.parse_webhook(sns_request(notification(sandbox, other))) == []
