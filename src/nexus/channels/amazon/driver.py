"""The Amazon SP-API driver: MFN quantities through patchListingsItem or JSON_LISTINGS_FEED.

A small push (fewer than `feed_threshold` listings) patches each SKU: one request per listing,
answered at once with ACCEPTED or INVALID. A large one becomes a feed: createFeedDocument, PUT
the document to its presigned URL, createFeed, poll getFeed until DONE/FATAL/CANCELLED, then
read the processing report and give each listing the outcome of its own message. The createFeed
token is taken first: when the feed bucket is empty (one feed per two minutes after its burst)
the listings are rescheduled before a document is created for nothing.

Amazon has no compare-and-set for quantities, so there are no stale results: a sale that crosses
a push shows up as a LISTINGS_ITEM_MFN_QUANTITY_CHANGE notification afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import structlog

from nexus.channels.amazon import feeds, sns, webhooks
from nexus.channels.amazon.auth import LwaTokens
from nexus.channels.amazon.client import USAGE_PLANS, AmazonThrottledError, SpApiClient
from nexus.channels.amazon.feeds import FeedMessage, describe_issues, fulfillment_patch
from nexus.channels.amazon.normalize import product_from_amazon
from nexus.channels.amazon.settings import AmazonSettings
from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, Page, PushResult
from nexus.errors import ChannelError, QuotaExhausted, TerminalChannelError, TransientChannelError
from nexus.ratelimit.config import RateLimitConfig

log = structlog.get_logger("nexus.channels.amazon")

LISTINGS = "/listings/2021-08-01/items"
FEEDS = "/feeds/2021-06-30"
SEARCH_PAGE_SIZE = 20  # searchListingsItems' maximum pageSize
INCLUDED_DATA = "summaries,attributes,offers,fulfillmentAvailability"
# Patches in flight at once: the patch bucket's burst; more would only queue on our bucket.
PATCH_CONCURRENCY = 5


class AmazonDriver(InventoryDriver):
    name = "amazon"

    def __init__(
        self,
        ctx: ChannelContext,
        settings: AmazonSettings | None = None,
        *,
        fetcher: sns.Fetcher | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or AmazonSettings.from_context(ctx)
        self.capabilities = DriverCapabilities(
            max_batch_size=self.settings.max_feed_messages,
            compare_and_set=False,
            reads_levels=True,
            sales_from_orders=self.settings.sales_from in ("both", "orders"),
            levels_book_sales=self.settings.sales_from in ("both", "levels"),
            stamp_precision=0.001,  # EventTime carries milliseconds
            # Every SP-API operation has its own rate (the buckets pace them); a feed round waits
            # minutes for Amazon to process it, so a second one is submitted meanwhile rather
            # than after. More would only queue feeds behind createFeed's own rate.
            max_in_flight=2,
        )
        self.tokens = LwaTokens(
            http=ctx.http,
            token_url=self.settings.token_url,
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            refresh_token=self.settings.refresh_token,
            clock=clock,
        )
        self.client = SpApiClient(
            http=ctx.http,
            base_url=self.settings.base_url,
            tokens=self.tokens,
            limiter_for=ctx.limiter,
            max_throttle_retries=self.settings.max_throttle_retries,
        )
        self.sns = sns.SnsVerifier(fetcher or sns.http_fetcher(ctx.http))
        self._sleep = sleep
        self._clock = clock

    def use_fetcher(self, fetcher: sns.Fetcher) -> None:
        """Fetch SNS certificates and SubscribeURLs through `fetcher` (tests, the sandbox demo)."""
        self.sns.fetcher = fetcher

    def rate_limit_config(self) -> RateLimitConfig:
        return USAGE_PLANS["patchListingsItem"]

    # -- products ---------------------------------------------------------------------------------

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        params = {
            "marketplaceIds": self.settings.marketplace_id,
            "includedData": INCLUDED_DATA,
            "pageSize": str(max(1, min(per_page, SEARCH_PAGE_SIZE))),
        }
        if cursor:
            params["pageToken"] = cursor
        response = await self.client.call(
            "searchListingsItems",
            "GET",
            f"{LISTINGS}/{quote(self.settings.seller_id, safe='')}",
            params=params,
        )
        items = response.payload.get("items") if isinstance(response.payload, Mapping) else None
        if not isinstance(items, list):
            raise TransientChannelError("searchListingsItems answered without an items list")
        pagination = response.payload.get("pagination")
        next_token = pagination.get("nextToken") if isinstance(pagination, Mapping) else None
        return Page(
            items=[self._product(item) for item in items if isinstance(item, Mapping)],
            next_cursor=next_token if isinstance(next_token, str) and next_token else None,
        )

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        response = await self.client.call(
            "getListingsItem",
            "GET",
            self._item_path(remote_id),
            params={"marketplaceIds": self.settings.marketplace_id, "includedData": INCLUDED_DATA},
        )
        if not isinstance(response.payload, Mapping):
            raise TransientChannelError("getListingsItem answered without an item")
        return self._product(response.payload)

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        """getListingsItem per listing (its own bucket, 5/s): the MFN quantity it shows now."""

        async def one(update: NexusInventoryUpdate) -> tuple[int, int | None]:
            try:
                product = await self.fetch_product(update.remote_id)
            except TerminalChannelError as exc:
                if exc.status == 404:  # gone from the channel: left out, not a failed read
                    return update.listing_id, None
                raise
            return update.listing_id, product.variants[0].quantity if product.variants else None

        read = await asyncio.gather(*(one(update) for update in updates))
        return {listing_id: level for listing_id, level in read if level is not None}

    def _product(self, item: Mapping[str, Any]) -> NexusProduct:
        try:
            return product_from_amazon(
                item,
                marketplace_id=self.settings.marketplace_id,
                fulfillment_channel_code=self.settings.fulfillment_channel_code,
            )
        except ValueError as exc:
            raise TerminalChannelError(
                f"Amazon sent a listing Nexus cannot read: {exc}", payload=item
            ) from exc

    # -- pushing ----------------------------------------------------------------------------------

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        """One result per update, same order. Channel failures become results, never exceptions."""
        results: dict[int, PushResult] = {}
        seen: set[str] = set()
        pending: list[int] = []
        for index, update in enumerate(updates):
            sku = _remote_sku(update)
            if sku in seen:
                # Two messages for one SKU in one feed (or two parallel patches) have no defined order.
                results[index] = PushResult.terminal(
                    update.listing_id, "the same Amazon SKU appears twice in one push", detail={"sku": sku}
                )
                continue
            seen.add(sku)
            pending.append(index)
        if len(pending) >= self.settings.feed_threshold:
            size = self.settings.max_feed_messages
            for start in range(0, len(pending), size):
                chunk = pending[start : start + size]
                outcome = await self._push_feed([updates[i] for i in chunk])
                results.update(zip(chunk, outcome, strict=True))
        else:
            outcome = await self._patch_all([updates[i] for i in pending])
            results.update(zip(pending, outcome, strict=True))
        return [results[i] for i in range(len(updates))]

    def _product_type(self, update: NexusInventoryUpdate) -> str:
        value = update.channel_meta.get("product_type")
        return value if isinstance(value, str) and value else self.settings.default_product_type

    def _item_path(self, sku: str) -> str:
        # SKUs may hold '/', '#', spaces ...: Amazon requires them percent-encoded in the path.
        return f"{LISTINGS}/{quote(self.settings.seller_id, safe='')}/{quote(sku, safe='')}"

    async def _patch_all(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        gate = asyncio.Semaphore(PATCH_CONCURRENCY)

        async def one(update: NexusInventoryUpdate) -> PushResult:
            async with gate:
                return await self._patch(update)

        return list(await asyncio.gather(*(one(u) for u in updates)))

    async def _patch(self, update: NexusInventoryUpdate) -> PushResult:
        body = {
            "productType": self._product_type(update),
            "patches": [fulfillment_patch(self.settings.fulfillment_channel_code, update.quantity)],
        }
        try:
            response = await self.client.call(
                "patchListingsItem",
                "PATCH",
                self._item_path(_remote_sku(update)),
                params={
                    "marketplaceIds": self.settings.marketplace_id,
                    "issueLocale": self.settings.issue_locale,
                },
                json_body=body,
            )
        except ChannelError as exc:
            return PushResult.from_error(update.listing_id, exc)
        payload = response.payload if isinstance(response.payload, Mapping) else {}
        status = payload.get("status")
        issues = [i for i in payload.get("issues") or [] if isinstance(i, Mapping)]
        if status == "ACCEPTED":
            return PushResult.ok(update.listing_id, update.quantity)
        if status == "INVALID":
            errors = [i for i in issues if i.get("severity") == "ERROR"] or issues
            return PushResult.terminal(
                update.listing_id,
                f"Amazon refused the listing update: {describe_issues(errors)}",
                detail={"issues": [dict(i) for i in issues], "submissionId": payload.get("submissionId")},
            )
        return PushResult.retry(update.listing_id, f"patchListingsItem answered status {status!r}")

    def _feed_messages(self, updates: Sequence[NexusInventoryUpdate]) -> Iterator[FeedMessage]:
        """Message k + 1 is updates[k]: made one at a time while the document is encoded, so a
        feed round never holds all its messages as objects at once."""
        code = self.settings.fulfillment_channel_code
        for number, update in enumerate(updates, start=1):
            yield FeedMessage(
                message_id=number,
                sku=_remote_sku(update),
                product_type=self._product_type(update),
                patches=[fulfillment_patch(code, update.quantity)],
            )

    async def _push_feed(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        try:
            feed_id, report = await self._run_feed(self._feed_messages(updates))
        except _FeedNotCreated as exc:
            # createFeed allows one feed every two minutes once its burst is spent: waiting would
            # park every listing for the whole feed window. Patches have their own bucket (5/s);
            # whatever it cannot take within the worker's max_rate_wait is rescheduled unsent.
            log.warning("feed throttled; patching listing by listing", listings=len(updates), error=str(exc))
            return await self._patch_all(updates)
        except ChannelError as exc:
            return [PushResult.from_error(u.listing_id, exc) for u in updates]
        feed_errors = report.feed_errors()
        results = []
        for message_id, update in enumerate(updates, start=1):
            errors = report.errors(message_id)
            if errors:
                results.append(
                    PushResult.terminal(
                        update.listing_id,
                        f"Amazon refused the listing update: {describe_issues(errors)}",
                        detail={
                            "feedId": feed_id,
                            "messageId": message_id,
                            "issues": [dict(i) for i in report.by_message[message_id]],
                        },
                    )
                )
            elif feed_errors:
                results.append(
                    PushResult.terminal(
                        update.listing_id,
                        f"Amazon refused the feed: {describe_issues(feed_errors)}",
                        detail={"feedId": feed_id, "issues": [dict(i) for i in feed_errors]},
                    )
                )
            else:
                results.append(PushResult.ok(update.listing_id, update.quantity))
        return results

    async def _run_feed(self, messages: Iterable[FeedMessage]) -> tuple[str, feeds.ProcessingReport]:
        content = feeds.feed_document(self.settings.seller_id, self.settings.issue_locale, messages)
        create_feed = self.client.limiter("createFeed")
        try:
            await create_feed.acquire()
            try:
                document = await self.client.call(
                    "createFeedDocument",
                    "POST",
                    f"{FEEDS}/documents",
                    json_body={"contentType": feeds.CONTENT_TYPE},
                )
                document_id, url = _document(document.payload)
                await self.client.upload(url, content, feeds.CONTENT_TYPE)
            except BaseException:
                await create_feed.refund(1)
                raise
            created = await self.client.call(
                "createFeed",
                "POST",
                f"{FEEDS}/feeds",
                json_body={
                    "feedType": feeds.FEED_TYPE,
                    "marketplaceIds": list(self.settings.marketplace_ids),
                    "inputFeedDocumentId": document_id,
                },
                token_taken=True,
            )
        except (AmazonThrottledError, QuotaExhausted) as exc:
            raise _FeedNotCreated(str(exc)) from exc
        feed_id = created.payload.get("feedId") if isinstance(created.payload, Mapping) else None
        if not isinstance(feed_id, str) or not feed_id:
            raise TransientChannelError("createFeed answered without a feedId")
        feed = await self._wait_for(feed_id)
        status = feed.get("processingStatus")
        if status != "DONE":
            # FATAL: "some, none, or all of the operations may have completed"; sending the same
            # levels again is harmless, so every listing is retried.
            raise TransientChannelError(f"feed {feed_id} ended {status}")
        result_id = feed.get("resultFeedDocumentId")
        if not isinstance(result_id, str) or not result_id:
            raise TransientChannelError(f"feed {feed_id} is DONE without a result document")
        result = await self.client.call(
            "getFeedDocument", "GET", f"{FEEDS}/documents/{quote(result_id, safe='')}"
        )
        _, result_url = _document(result.payload)
        compression = result.payload.get("compressionAlgorithm")
        content = await self.client.download(result_url)
        try:
            report = feeds.read_report(content, compression if isinstance(compression, str) else None)
        except (ValueError, OSError) as exc:
            raise TransientChannelError(f"feed {feed_id}: unreadable processing report: {exc}") from exc
        return feed_id, report

    async def _wait_for(self, feed_id: str) -> Mapping[str, Any]:
        deadline = self._clock() + self.settings.feed_timeout
        while True:
            await self._sleep(self.settings.feed_poll_interval)
            response = await self.client.call("getFeed", "GET", f"{FEEDS}/feeds/{quote(feed_id, safe='')}")
            feed = response.payload if isinstance(response.payload, Mapping) else {}
            status = feed.get("processingStatus")
            if status in feeds.TERMINAL_STATUSES:
                return feed
            if self._clock() >= deadline:
                raise TransientChannelError(
                    f"feed {feed_id} still {status} after {self.settings.feed_timeout:.0f} s"
                )

    # -- webhooks ---------------------------------------------------------------------------------

    async def verify_webhook(self, request: WebhookRequest) -> None:
        await webhooks.verify(
            request, self.sns, self.settings.sns_topic_arns, max_age=self.settings.sns_max_age
        )

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        return webhooks.describe(request)

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        return webhooks.parse(
            request,
            seller_id=self.settings.seller_id,
            fulfillment_channel_code=self.settings.fulfillment_channel_code,
        )

    async def resolve_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        return await webhooks.resolve(
            request,
            self.sns.fetcher,
            seller_id=self.settings.seller_id,
            fulfillment_channel_code=self.settings.fulfillment_channel_code,
        )


def _remote_sku(update: NexusInventoryUpdate) -> str:
    """The seller SKU on Amazon: the listing's remote id (set at import), else the local SKU."""
    return update.remote_id or update.sku


def _document(payload: Any) -> tuple[str, str]:
    document_id = payload.get("feedDocumentId") if isinstance(payload, Mapping) else None
    url = payload.get("url") if isinstance(payload, Mapping) else None
    if not isinstance(document_id, str) or not isinstance(url, str):
        raise TransientChannelError("feed document answer lacks feedDocumentId or url")
    return document_id, url


class _FeedNotCreated(Exception):
    """Amazon's feed quota is spent (or throttled us): nothing was submitted."""
