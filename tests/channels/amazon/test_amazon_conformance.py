"""The Amazon SP-API driver passes the conformance kit every driver must pass (nexus.testing).

Pushes of up to `feed_threshold` listings go through patchListingsItem; the kit's full batch is
capped by the listings given, so the feed path is exercised in test_amazon_driver_sandbox.py."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
from amazon_testkit import load, make_driver, sns_request

from nexus.drivers.dto import NexusInventoryUpdate
from nexus.drivers.registry import DriverRegistry
from nexus.sandbox.amazon import AmazonSandbox
from nexus.testing import ConformanceChannel, DriverConformance, ProductFixture
from nexus.web.server import serve_app


class TestAmazonConformance(DriverConformance):
    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[ConformanceChannel]:
        sandbox = AmazonSandbox()
        sandbox.seed_catalog(6)
        async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10) as http:
            driver = make_driver(http, sandbox, server.base_url)
            listings = [
                NexusInventoryUpdate(n, sku, sku, 10, channel_meta={"product_type": "PRODUCT"})
                for n, sku in enumerate(sorted(sandbox.levels()), start=1)
            ]

            async def read_level(update: NexusInventoryUpdate) -> int | None:
                return sandbox.available(update.sku)

            change = load("mfn_quantity_change.json")
            item = load("listings_item.json")
            try:
                yield ConformanceChannel(
                    driver=driver,
                    listings=listings,
                    unknown=NexusInventoryUpdate(
                        99, "GHOST", "GHOST", 1, channel_meta={"product_type": "PRODUCT"}
                    ),
                    read_level=read_level,
                    webhooks=[
                        sns_request(_notification(sandbox, change)),
                        sns_request(_notification(sandbox, load("order_change.json"))),
                    ],
                    signature_headers=[],
                    products=[ProductFixture(item, DriverRegistry().normalizer("amazon"), [item["sku"]])],
                )
            finally:
                await sandbox.aclose()

    async def test_an_unsigned_delivery_is_refused(self) -> None:
        # SNS carries its signature in the body, not in a header: drop the Signature field instead.
        async with self.channel() as channel:
            for request in channel.webhooks:
                message = json.loads(request.body)
                del message["Signature"]
                stripped = sns_request(message)
                try:
                    await channel.driver.verify_webhook(stripped)
                except Exception as exc:
                    assert getattr(exc, "status_code", None) in (400, 401), exc
                else:
                    raise AssertionError("an SNS message without its Signature was accepted")


def _notification(sandbox: AmazonSandbox, body: object) -> dict[str, object]:
    return sandbox.sns.sign(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": sandbox.sns.arn,
            "Message": json.dumps(body),
            "Timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "UnsubscribeURL": f"https://{sandbox.sns.host}/?Action=Unsubscribe&SubscriptionArn=x",
        }
    )
