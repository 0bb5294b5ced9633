"""Amazon deliveries at `POST /nexus/webhooks/{channel}`: SNS messages carrying SP-API notifications.

verify    the SNS signature (certificate fetched once per URL), the message type header, and
          the topic when the channel lists its topics (`sns_topic_arns`: anyone can create an
          SNS topic and subscribe this endpoint to it; a real signature alone proves only that
          SNS sent it)
describe  topic = the SP-API NotificationType ("sns/<Type>" for subscription messages);
          delivery id = the SNS MessageId (kept across SNS retries); event id = the
          notification's NotificationId
parse     inbound events, without any network call (the receiver calls it at ingest)
resolve   what the processor calls: a SubscriptionConfirmation is confirmed by fetching its
          SubscribeURL; everything else is parsed
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nexus.channels.amazon import notifications, sns
from nexus.channels.wire import parse_timestamp
from nexus.drivers.contract import InboundEvent, WebhookMeta, WebhookRequest
from nexus.errors import WebhookPayloadError, WebhookSignatureError


async def verify(
    request: WebhookRequest, verifier: sns.SnsVerifier, topic_arns: Sequence[str], *, max_age: float
) -> None:
    message = sns.load_message(request.body)
    declared = request.header("x-amz-sns-message-type")
    if declared is not None and declared != message.get("Type"):
        raise WebhookSignatureError("x-amz-sns-message-type does not match the message Type")
    await verifier.verify(message)
    # The signature covers Timestamp, so an old one proves a replayed capture, not a late retry
    # (SNS gives up on an HTTPS endpoint within about an hour).
    sent = parse_timestamp(message.get("Timestamp"))
    if sent is None:
        raise WebhookSignatureError("SNS Timestamp is not an ISO 8601 time")
    age = (request.received_at - sent).total_seconds()
    if abs(age) > max_age:
        raise WebhookSignatureError(
            f"SNS message is {age:.0f} s from now, beyond the {max_age:.0f} s tolerance (sns_max_age)"
        )
    if topic_arns and message.get("TopicArn") not in topic_arns:
        raise WebhookSignatureError(f"SNS topic {message.get('TopicArn')!r} is not one of this channel's")


def describe(request: WebhookRequest) -> WebhookMeta:
    message = _message(request)
    kind = message.get("Type")
    delivery_id = message.get("MessageId") if isinstance(message.get("MessageId"), str) else None
    if kind != sns.NOTIFICATION:
        return WebhookMeta(topic=f"sns/{kind}", delivery_id=delivery_id)
    notification = notifications.load_notification(message.get("Message"))
    return WebhookMeta(
        topic=str(notification.get("NotificationType")),
        delivery_id=delivery_id,
        event_id=notifications.notification_id(notification),
    )


def parse(request: WebhookRequest, *, seller_id: str, fulfillment_channel_code: str) -> list[InboundEvent]:
    message = _message(request)
    if message.get("Type") != sns.NOTIFICATION:
        return []  # subscription bookkeeping carries no stock events
    notification = notifications.load_notification(message.get("Message"))
    return notifications.events(
        notification, seller_id=seller_id, fulfillment_channel_code=fulfillment_channel_code
    )


async def resolve(
    request: WebhookRequest, fetcher: sns.Fetcher, *, seller_id: str, fulfillment_channel_code: str
) -> list[InboundEvent]:
    message = _message(request)
    if message.get("Type") == sns.SUBSCRIPTION_CONFIRMATION:
        await sns.confirm_subscription(message, fetcher)
        return []
    return parse(request, seller_id=seller_id, fulfillment_channel_code=fulfillment_channel_code)


def _message(request: WebhookRequest) -> Mapping[str, Any]:
    try:
        return sns.load_message(request.body)
    except WebhookSignatureError as exc:
        raise WebhookPayloadError(str(exc)) from exc
