"""The Amazon sandbox over real HTTP: LWA, usage plans, Listings Items, Feeds, and SNS deliveries."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus.sandbox.amazon import MFN_QUANTITY_CHANGE, ORDER_CHANGE, AmazonSandbox
from nexus.sandbox.barcodes import ean13
from nexus.web.server import serve_app

LISTINGS = "/listings/2021-08-01/items"
FEEDS = "/feeds/2021-06-30"


async def token(client: httpx.AsyncClient, sandbox: AmazonSandbox, **overrides: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", **sandbox.credentials(), **overrides}
    return await client.post("/auth/o2/token", data=form)


async def authed(sandbox: AmazonSandbox, base_url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, trust_env=False)
    access = (await token(client, sandbox)).json()["access_token"]
    client.headers["x-amz-access-token"] = access
    return client


@pytest.fixture
async def served() -> AsyncIterator[tuple[AmazonSandbox, httpx.AsyncClient]]:
    sandbox = AmazonSandbox(feed_processing_seconds=0.04, clock=lambda: 0.0)
    sandbox.seed_catalog(3)
    async with serve_app(sandbox.app) as server:
        client = await authed(sandbox, server.base_url)
        try:
            yield sandbox, client
        finally:
            await client.aclose()
    await sandbox.aclose()


def params(sandbox: AmazonSandbox, **more: str) -> dict[str, str]:
    return {"marketplaceIds": sandbox.marketplace_id, **more}


async def test_lwa_grants_and_refusals(served: tuple[AmazonSandbox, httpx.AsyncClient]) -> None:
    sandbox, client = served
    good = await token(client, sandbox)
    assert good.status_code == 200
    assert good.json()["token_type"] == "bearer" and good.json()["expires_in"] == 3600
    bad_client = await token(client, sandbox, client_secret="nope")
    bad_grant = await token(client, sandbox, refresh_token="Atzr|revoked")
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "invalid_grant")


async def test_requests_need_a_valid_access_token(served: tuple[AmazonSandbox, httpx.AsyncClient]) -> None:
    sandbox, client = served
    path = f"{LISTINGS}/{sandbox.seller_id}/SKU-000001"
    missing = await client.get(path, params=params(sandbox), headers={"x-amz-access-token": ""})
    assert missing.status_code == 403
    assert missing.json()["errors"][0]["code"] == "Unauthorized"
    sandbox.expire_tokens()
    expired = await client.get(path, params=params(sandbox))
    assert "expired" in expired.json()["errors"][0]["details"]


async def test_usage_plan_is_a_token_bucket_per_operation(
    served: tuple[AmazonSandbox, httpx.AsyncClient],
) -> None:
    sandbox, client = served  # the clock stands still: no refill
    path = f"{LISTINGS}/{sandbox.seller_id}/SKU-000001"
    answers = [await client.get(path, params=params(sandbox)) for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]  # getListingsItem: burst 10
    assert answers[0].headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert answers[0].headers["x-amzn-RequestId"]
    throttled = answers[-1]
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
    assert "x-amzn-RateLimit-Limit" not in throttled.headers
    # Another operation has a bucket of its own.
    other = await client.get(f"{LISTINGS}/{sandbox.seller_id}", params=params(sandbox))
    assert other.status_code == 200
    assert sandbox.stats.throttled == 1


async def test_listings_item_and_patch(served: tuple[AmazonSandbox, httpx.AsyncClient]) -> None:
    sandbox, client = served
    path = f"{LISTINGS}/{sandbox.seller_id}/SKU-000002"
    item = (
        await client.get(
            path, params=params(sandbox, includedData="summaries,attributes,fulfillmentAvailability")
        )
    ).json()
    assert item["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 10}]
    assert item["attributes"]["externally_assigned_product_identifier"][0]["value"] == ean13(2)
    assert "offers" not in item
    body = {
        "productType": "HOME",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 3}],
            }
        ],
    }
    accepted = (await client.patch(path, params=params(sandbox), json=body)).json()
    assert accepted["status"] == "ACCEPTED" and accepted["issues"] == [] and accepted["sku"] == "SKU-000002"
    body["patches"][0]["value"][0]["quantity"] = -1
    invalid = (await client.patch(path, params=params(sandbox), json=body)).json()
    assert invalid["status"] == "INVALID"
    assert invalid["issues"][0]["severity"] == "ERROR"
    assert sandbox.available("SKU-000002") == 3
    assert sandbox.stats.set_count_by_sku == {"SKU-000002": 1}
    unknown = await client.patch(f"{LISTINGS}/{sandbox.seller_id}/NOPE", params=params(sandbox), json=body)
    assert unknown.status_code == 404
    two = await client.get(path, params={"marketplaceIds": "ATVPDKIKX0DER,A2EUQ1WTGCTBG2"})
    assert two.status_code == 400  # Listings Items 2021-08-01 takes one marketplace


async def test_search_pages_with_page_tokens(served: tuple[AmazonSandbox, httpx.AsyncClient]) -> None:
    sandbox, client = served
    sandbox.seed_catalog(2)
    path = f"{LISTINGS}/{sandbox.seller_id}"
    first = (await client.get(path, params=params(sandbox, pageSize="2"))).json()
    assert first["numberOfResults"] == 5
    assert [i["sku"] for i in first["items"]] == ["SKU-000001", "SKU-000002"]
    token_ = first["pagination"]["nextToken"]
    last = (await client.get(path, params=params(sandbox, pageSize="2", pageToken=token_))).json()
    last = (
        await client.get(
            path, params=params(sandbox, pageSize="2", pageToken=last["pagination"]["nextToken"])
        )
    ).json()
    assert [i["sku"] for i in last["items"]] == ["SKU-000005"]
    assert "nextToken" not in last["pagination"]
    assert (await client.get(path, params=params(sandbox, pageSize="21"))).status_code == 400


async def test_feed_lifecycle_and_processing_report(served: tuple[AmazonSandbox, httpx.AsyncClient]) -> None:
    sandbox, client = served
    sandbox.refuse_updates("SKU-000002")
    created = await client.post(f"{FEEDS}/documents", json={"contentType": "application/json; charset=UTF-8"})
    assert created.status_code == 201
    document = created.json()
    feed = {
        "header": {"sellerId": sandbox.seller_id, "version": "2.0", "issueLocale": "en_US"},
        "messages": [
            {
                "messageId": n,
                "sku": f"SKU-00000{n}",
                "operationType": "PATCH",
                "productType": "HOME",
                "patches": [
                    {
                        "op": "replace",
                        "path": "/attributes/fulfillment_availability",
                        "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": n}],
                    }
                ],
            }
            for n in (1, 2)
        ],
    }
    content = json.dumps(feed).encode()
    async with httpx.AsyncClient(trust_env=False) as s3:
        wrong = await s3.put(document["url"], content=content, headers={"Content-Type": "text/plain"})
        assert wrong.status_code == 403 and b"SignatureDoesNotMatch" in wrong.content
        put = await s3.put(
            document["url"], content=content, headers={"Content-Type": "application/json; charset=UTF-8"}
        )
        assert put.status_code == 200
        queued = await client.post(
            f"{FEEDS}/feeds",
            json={
                "feedType": "JSON_LISTINGS_FEED",
                "marketplaceIds": [sandbox.marketplace_id],
                "inputFeedDocumentId": document["feedDocumentId"],
            },
        )
        assert queued.status_code == 202
        feed_id = queued.json()["feedId"]
        status = (await client.get(f"{FEEDS}/feeds/{feed_id}")).json()
        assert status["processingStatus"] == "IN_QUEUE"
        while status["processingStatus"] != "DONE":
            await asyncio.sleep(0.02)
            status = (await client.get(f"{FEEDS}/feeds/{feed_id}")).json()
        result = (await client.get(f"{FEEDS}/documents/{status['resultFeedDocumentId']}")).json()
        report = (await s3.get(result["url"])).json()
    assert report["header"] == {"sellerId": sandbox.seller_id, "version": "2.0", "feedId": feed_id}
    assert report["summary"] == {
        "errors": 1,
        "warnings": 0,
        "messagesProcessed": 2,
        "messagesAccepted": 1,
        "messagesInvalid": 1,
    }
    (issue,) = report["issues"]
    assert (issue["messageId"], issue["sku"], issue["code"], issue["severity"]) == (
        2,
        "SKU-000002",
        "90220",
        "ERROR",
    )
    assert sandbox.levels() == {"SKU-000001": 1, "SKU-000002": 10, "SKU-000003": 10}


class Receiver:
    """An HTTP endpoint that answers 500 to the first `failures` deliveries."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        if self.failures:
            self.failures -= 1
            return Response(status_code=500)
        self.bodies.append(json.loads(await request.body()))
        self.headers.append(dict(request.headers))
        return Response(status_code=200)


def verify_signature(sandbox: AmazonSandbox, message: dict[str, Any]) -> None:
    keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    if message["Type"] == "SubscriptionConfirmation":
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    content = "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()
    key = x509.load_pem_x509_certificate(sandbox.sns.certificate_pem).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    key.verify(base64.b64decode(message["Signature"]), content, padding.PKCS1v15(), algorithm)


async def test_sns_confirmation_then_signed_notifications_with_retries() -> None:
    sandbox = AmazonSandbox(sns_retry_delay=0.01, signature_version="2")
    sandbox.seed_catalog(1, quantity=3)
    receiver = Receiver(failures=1)
    async with serve_app(receiver.app) as server:
        sandbox.subscribe(MFN_QUANTITY_CHANGE, f"{server.base_url}/hook")
        sandbox.subscribe(ORDER_CHANGE, f"{server.base_url}/hook")
        await sandbox.drain_webhooks()
        (confirmation,) = receiver.bodies
        assert confirmation["Type"] == "SubscriptionConfirmation"
        verify_signature(sandbox, confirmation)
        await sandbox.set_available("SKU-000001", 2)  # not confirmed yet: nothing is sent
        assert sandbox.stats.webhooks_unconfirmed == 1
        assert sandbox.stats.webhook_attempts_failed == 1  # the first attempt got a 500

        await sandbox.fetch(confirmation["SubscribeURL"])
        assert await sandbox.simulate_sale("SKU-000001", 5) is None  # only 2 left
        order = await sandbox.simulate_sale("SKU-000001", 2)
        assert order is not None
        await sandbox.drain_webhooks()
    await sandbox.aclose()
    order_message, level_message = receiver.bodies[1:]
    for message in (order_message, level_message):
        verify_signature(sandbox, message)
        assert message["SigningCertURL"].startswith(
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-"
        )
    assert (
        json.loads(order_message["Message"])["Payload"]["OrderChangeNotification"]["Summary"]["OrderItems"][
            0
        ]["Quantity"]
        == 2
    )
    level = json.loads(level_message["Message"])
    assert level["detail-type"] == MFN_QUANTITY_CHANGE
    assert level["detail"]["Payload"]["Quantity"] == 0
    headers = receiver.headers[1]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-message-id"] == order_message["MessageId"]
    assert headers["content-type"] == "text/plain; charset=UTF-8"
    assert sandbox.stats.webhooks_sent == 3


def test_seed_catalog_names_and_barcodes() -> None:
    sandbox = AmazonSandbox()
    sandbox.seed_catalog(2, quantity=4)
    sandbox.seed_catalog(1, prefix="X-")
    assert sandbox.levels() == {"SKU-000001": 4, "SKU-000002": 4, "X-000003": 10}
    assert sandbox.store.listings["SKU-000002"].barcode == ean13(2)
