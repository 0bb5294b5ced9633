"""`AmazonSandbox`: a local seller account that speaks LWA, Listings Items, Feeds, and SNS.

    sandbox = AmazonSandbox(seed=1)
    sandbox.seed_catalog(100)
    async with serve_app(sandbox.app) as server:
        config = ChannelConfig(driver="amazon", base_url=server.base_url,
                               credentials=sandbox.credentials(),
                               settings=sandbox.channel_settings(server.base_url))
        ...
        driver.use_fetcher(sandbox.fetch)   # SNS certificates and SubscribeURLs
        sandbox.subscribe("LISTINGS_ITEM_MFN_QUANTITY_CHANGE", f"{nexus_url}/nexus/webhooks/amazon")
    await sandbox.aclose()

Module roles: `store` (listings, patch validation), `throttle` (usage plans), `feeds` (documents,
feed processing, reports), `sns` (signed SNS deliveries), `app` (the ASGI app), `sandbox` (facade).
"""

from __future__ import annotations

import json
import random
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from nexus.sandbox.amazon.app import build_app
from nexus.sandbox.amazon.feeds import FeedProcessor
from nexus.sandbox.amazon.sns import SnsTopic
from nexus.sandbox.amazon.store import Listing, ListingsStore, now_iso
from nexus.sandbox.amazon.throttle import UsagePlans
from nexus.sandbox.barcodes import ean13
from nexus.sandbox.base import add_network_latency
from nexus.sandbox.delivery import DeliveryQueue
from nexus.sandbox.stats import SandboxStats

MFN_QUANTITY_CHANGE = "LISTINGS_ITEM_MFN_QUANTITY_CHANGE"
ORDER_CHANGE = "ORDER_CHANGE"
APPLICATION_ID = "amzn1.sellerapps.app.00000000-nexus-sandbox"


class AmazonSandbox:
    def __init__(
        self,
        *,
        seller_id: str = "A2NEXUSSANDBOX",
        marketplace_id: str = "ATVPDKIKX0DER",
        client_id: str = "amzn1.application-oa2-client.nexus-sandbox",
        client_secret: str = "sandbox-client-secret",
        refresh_token: str = "Atzr|sandbox-refresh-token",
        region: str = "us-east-1",
        token_lifetime: float = 3600.0,
        usage_plans: Mapping[str, tuple[float, float]] | None = None,
        time_scale: float = 1.0,
        feed_processing_seconds: float = 2.0,
        gzip_reports: bool = False,
        signature_version: str = "1",
        sns_retry_delay: float = 20.0,
        auto_confirm: bool = False,
        eventbridge_envelope: bool = True,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        latency_ms: float = 0.0,
    ) -> None:
        """Knobs beyond the shared spec:

        token_lifetime: seconds an LWA access token lives (expires_in), on `clock`.
        usage_plans: operation -> (rate, burst) overrides of the documented defaults.
        feed_processing_seconds: IN_QUEUE to DONE, divided by time_scale.
        gzip_reports: serve processing reports GZIP-compressed (compressionAlgorithm "GZIP").
        signature_version: SNS SignatureVersion "1" (SHA1withRSA, SNS's default) or "2" (SHA256).
        auto_confirm: subscriptions start confirmed, without a SubscriptionConfirmation.
        eventbridge_envelope: wrap LISTINGS_ITEM_MFN_QUANTITY_CHANGE in the EventBridge event it
            arrives in when an EventBridge rule targets the SNS topic (ORDER_CHANGE, an SQS-only
            notification, is always published bare).
        """
        self.seller_id = seller_id
        self.marketplace_id = marketplace_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.region = region
        self.token_lifetime = token_lifetime
        self.time_scale = time_scale
        self.eventbridge_envelope = eventbridge_envelope
        self.stats = SandboxStats()
        self._rng = random.Random(seed)
        self._clock = clock
        self._tokens: dict[str, float] = {}  # access token -> expiry on `clock`
        self.store = ListingsStore(marketplace_id=marketplace_id)
        self.plans = UsagePlans(usage_plans, time_scale=time_scale, clock=clock)
        self.feeds = FeedProcessor(
            self.store,
            self.stats,
            seller_id=seller_id,
            apply_quantity=self._apply_quantity,
            processing_seconds=feed_processing_seconds,
            time_scale=time_scale,
            gzip_reports=gzip_reports,
        )
        self.sns = SnsTopic(
            stats=self.stats,
            region=region,
            signature_version=signature_version,
            time_scale=time_scale,
            retry_delay=sns_retry_delay,
            auto_confirm=auto_confirm,
        )
        self.app: Starlette = build_app(self)
        # latency_ms: a fixed network delay per request (`nexus.sandbox.base.NetworkLatency`).
        self.network = add_network_latency(self.app, latency_ms)
        self._seeded = 0

    # -- configuration a channel needs ----------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
        }

    def channel_settings(self, base_url: str) -> dict[str, Any]:
        """Driver settings pointing at this sandbox served at `base_url`."""
        return {
            "seller_id": self.seller_id,
            "marketplace_ids": [self.marketplace_id],
            "token_url": f"{base_url.rstrip('/')}/auth/o2/token",
            "sns_topic_arns": [self.sns.arn],
        }

    # -- LWA --------------------------------------------------------------------------------

    def grant_token(self, form: Mapping[str, str]) -> Response:
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(
                400, "unsupported_grant_type", "The authorization grant type is not supported"
            )
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        if form.get("refresh_token") != self.refresh_token:
            return _oauth_error(
                400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        self.stats.token_requests += 1
        token = f"Atza|{secrets.token_urlsafe(32)}"
        self._tokens[token] = self._clock() + self.token_lifetime
        return JSONResponse(
            {
                "access_token": token,
                "refresh_token": self.refresh_token,
                "token_type": "bearer",
                "expires_in": int(self.token_lifetime),
            }
        )

    def check_token(self, token: str | None) -> str | None:
        """None when `token` is valid, else the reason (the `details` of a 403)."""
        expiry = self._tokens.get(token) if token else None
        if expiry is None:
            return "The access token you provided is revoked, malformed or invalid."
        if self._clock() >= expiry:
            return "The access token you provided has expired."
        return None

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (Amazon-side expiry the client did not see)."""
        now = self._clock()
        self._tokens = dict.fromkeys(self._tokens, now)

    # -- listings ---------------------------------------------------------------------------

    def seed_catalog(self, count: int, *, quantity: int = 10, prefix: str = "SKU-") -> None:
        """One listing per SKU f"{prefix}{i:06d}", i continuing across calls; EAN ean13(i)."""
        for i in range(self._seeded + 1, self._seeded + count + 1):
            self.store.add(
                Listing(
                    sku=f"{prefix}{i:06d}",
                    asin=f"B0{i:08d}",
                    product_type="HOME" if i % 2 else "TOYS_AND_GAMES",
                    item_name=f"Demo product {i:06d}",
                    quantity=quantity,
                    barcode=ean13(i),
                    price=f"{10 + i % 90}.00",
                )
            )
        self._seeded += count

    def add_listing(self, listing: Listing) -> None:
        self.store.add(listing)

    def refuse_updates(
        self, sku: str, message: str = "'[batteries_required]' is required but not supplied."
    ) -> None:
        """Every later update of `sku` is INVALID with this issue (as a listing with a problem is)."""
        self.store.refusals[sku] = {
            "code": "90220",
            "message": message,
            "severity": "ERROR",
            "attributeNames": ["batteries_required"],
            "categories": ["MISSING_ATTRIBUTE"],
        }

    def fail_next_feed(self, status: str = "FATAL") -> None:
        self.feeds.fail_next(status)

    def patch(self, sku: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """patchListingsItem: ListingsItemSubmissionResponse."""
        outcome = self.store.check_patch(sku, body)
        self.stats.patches += 1
        if not outcome.issues and outcome.quantity is not None:
            self._apply_quantity(sku, outcome.quantity)
        return {
            "sku": sku,
            "status": "INVALID" if outcome.issues else "ACCEPTED",
            "submissionId": uuid.uuid4().hex,
            "issues": outcome.issues,
        }

    def available(self, sku: str) -> int:
        return self.store.listings[sku].quantity

    def levels(self) -> dict[str, int]:
        return {sku: listing.quantity for sku, listing in self.store.listings.items()}

    def _apply_quantity(self, sku: str, quantity: int) -> None:
        listing = self.store.listings[sku]
        self.stats.quantities_set += 1
        self.stats.set_count_by_sku[sku] = self.stats.set_count_by_sku.get(sku, 0) + 1
        changed = listing.quantity != quantity
        listing.quantity = quantity
        listing.updated = now_iso()
        if changed:
            self._quantity_changed(listing)

    # -- seller activity ----------------------------------------------------------------------

    def subscribe(self, topic: str, address: str) -> None:
        """Subscribe an HTTP(S) endpoint to the SNS topic for one SP-API notification type."""
        self.sns.subscribe(topic, address)

    async def fetch(self, url: str) -> bytes:
        """The driver's fetcher for sns.<region>.amazonaws.com (certificate, SubscribeURL)."""
        return await self.sns.fetch(url)

    async def simulate_sale(self, sku: str, quantity: int = 1) -> dict[str, Any] | None:
        """A buyer orders `quantity` of a merchant-fulfilled listing. Returns the ORDER_CHANGE
        notification, or None when fewer units are available (Amazon does not oversell MFN)."""
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        listing = self.store.listings[sku]
        if listing.quantity < quantity:
            return None
        listing.quantity -= quantity
        listing.updated = now_iso()
        rng = self._rng
        order_id = f"{rng.randrange(100, 999)}-{rng.randrange(10**6, 10**7)}-{rng.randrange(10**6, 10**7)}"
        now = now_iso()
        notification = self._notification(
            ORDER_CHANGE,
            {
                "OrderChangeNotification": {
                    "NotificationLevel": "OrderLevel",
                    "SellerId": self.seller_id,
                    "AmazonOrderId": order_id,
                    "OrderChangeType": "OrderStatusChange",
                    "OrderChangeTrigger": {"TimeOfOrderChange": now, "ChangeReason": "Order status changed"},
                    "Summary": {
                        "MarketplaceId": self.marketplace_id,
                        "OrderStatus": "Unshipped",
                        "PurchaseDate": now,
                        "DestinationPostalCode": "98101",
                        "FulfillmentType": "MFN",
                        "OrderType": "StandardOrder",
                        "NumberOfItemsShipped": 0,
                        "NumberOfItemsUnshipped": quantity,
                        "OrderItems": [
                            {
                                "OrderItemId": str(self._rng.randrange(10**13, 10**14)),
                                "SellerSKU": sku,
                                "OrderItemStatus": "Unshipped",
                                "Quantity": quantity,
                                "QuantityShipped": 0,
                            }
                        ],
                    },
                }
            },
        )
        self.sns.publish(ORDER_CHANGE, json.dumps(notification))
        self._quantity_changed(listing)
        return notification

    @property
    def deliveries(self) -> DeliveryQueue[Any]:
        return self.sns

    async def set_available(self, sku: str, quantity: int) -> None:
        """The merchant edits the MFN quantity in Seller Central."""
        listing = self.store.listings[sku]
        listing.quantity = quantity
        listing.updated = now_iso()
        self._quantity_changed(listing)

    async def drain_webhooks(self, timeout: float = 10.0) -> None:
        await self.sns.drain(timeout)

    async def aclose(self) -> None:
        await self.feeds.aclose()
        await self.sns.aclose()

    # -- notifications --------------------------------------------------------------------------

    def _quantity_changed(self, listing: Listing) -> None:
        notification = self._notification(
            MFN_QUANTITY_CHANGE,
            {
                "SellerId": self.seller_id,
                "FulfillmentChannelCode": self.store.channel_code,
                "Sku": listing.sku,
                "Quantity": listing.quantity,
            },
        )
        message: Mapping[str, Any] = notification
        if self.eventbridge_envelope:
            message = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": MFN_QUANTITY_CHANGE,
                "source": f"aws.partner/sellingpartnerapi.amazon/{APPLICATION_ID}",
                "account": "123456789012",
                "time": notification["EventTime"],
                "region": self.region,
                "resources": [],
                "detail": notification,
            }
        self.sns.publish(MFN_QUANTITY_CHANGE, json.dumps(message))

    def _notification(self, kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        now = now_iso()
        return {
            "NotificationVersion": "1.0",
            "NotificationType": kind,
            "PayloadVersion": "1.0",
            "EventTime": now,
            "Payload": dict(payload),
            "NotificationMetadata": {
                "ApplicationId": APPLICATION_ID,
                "SubscriptionId": str(uuid.uuid4()),
                "PublishTime": now,
                "NotificationId": str(uuid.uuid4()),
            },
        }


def _oauth_error(status: int, code: str, description: str) -> Response:
    return JSONResponse({"error_description": description, "error": code}, status_code=status)
