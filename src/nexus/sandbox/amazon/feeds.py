"""Feeds API 2021-06-30 for JSON_LISTINGS_FEED: documents, feeds processed in the background,
processing reports.

createFeedDocument returns a presigned upload URL (here served by the sandbox itself under
`/_sandbox/s3/`, standing in for S3; its signature covers the content type, so an upload with
another Content-Type is refused). createFeed queues the feed: IN_QUEUE, then IN_PROGRESS, then
DONE after `processing_seconds / time_scale`, with a result document shaped like
listings-feed-processing-report-schema-v2.json. `fail_next(status)` ends the next feed FATAL or
CANCELLED instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nexus.sandbox.amazon.store import ListingsStore, now_iso
from nexus.sandbox.stats import SandboxStats

JSON_LISTINGS_FEED = "JSON_LISTINGS_FEED"
MAX_MESSAGES = 25_000


@dataclass
class Document:
    document_id: str
    content_type: str
    content: bytes | None = None
    compression: str | None = None


@dataclass
class Feed:
    feed_id: str
    feed_type: str
    marketplace_ids: list[str]
    input_document_id: str
    created: str = field(default_factory=now_iso)
    status: str = "IN_QUEUE"
    started: str | None = None
    ended: str | None = None
    result_document_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "feedId": self.feed_id,
            "feedType": self.feed_type,
            "marketplaceIds": self.marketplace_ids,
            "createdTime": self.created,
            "processingStatus": self.status,
        }
        if self.started:
            body["processingStartTime"] = self.started
        if self.ended:
            body["processingEndTime"] = self.ended
        if self.result_document_id:
            body["resultFeedDocumentId"] = self.result_document_id
        return body


class FeedProcessor:
    def __init__(
        self,
        store: ListingsStore,
        stats: SandboxStats,
        *,
        seller_id: str,
        apply_quantity: Callable[[str, int], None],
        processing_seconds: float = 2.0,
        time_scale: float = 1.0,
        gzip_reports: bool = False,
    ) -> None:
        self._store = store
        self._stats = stats
        self._seller_id = seller_id
        self._apply_quantity = apply_quantity
        self._delay = processing_seconds / time_scale
        self._gzip = gzip_reports
        self.documents: dict[str, Document] = {}
        self.feeds: dict[str, Feed] = {}
        self._next_feed = 50_001_000_000
        self._fail_next: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def fail_next(self, status: str = "FATAL") -> None:
        if status not in ("FATAL", "CANCELLED"):
            raise ValueError("status must be FATAL or CANCELLED")
        self._fail_next = status

    def create_document(self, content_type: str) -> Document:
        document = Document(str(uuid.uuid4()), content_type)
        self.documents[document.document_id] = document
        return document

    def create_feed(self, feed_type: str, marketplace_ids: list[str], document: Document) -> Feed:
        self._next_feed += 1
        feed = Feed(str(self._next_feed), feed_type, marketplace_ids, document.document_id)
        self.feeds[feed.feed_id] = feed
        self._stats.feeds_created += 1
        task = asyncio.get_running_loop().create_task(self._process(feed, document))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return feed

    async def _process(self, feed: Feed, document: Document) -> None:
        await asyncio.sleep(self._delay / 2)
        feed.status, feed.started = "IN_PROGRESS", now_iso()
        await asyncio.sleep(self._delay / 2)
        failure, self._fail_next = self._fail_next, None
        if failure is not None:
            feed.status, feed.ended = failure, now_iso()
            return
        report = self._report(feed, document.content or b"")
        content = json.dumps(report).encode()
        result = Document(str(uuid.uuid4()), "application/json")
        if self._gzip:
            result.content, result.compression = gzip.compress(content), "GZIP"
        else:
            result.content = content
        self.documents[result.document_id] = result
        feed.result_document_id = result.document_id
        feed.status, feed.ended = "DONE", now_iso()

    def _report(self, feed: Feed, content: bytes) -> dict[str, Any]:
        issues: list[dict[str, Any]] = []
        processed = accepted = 0
        try:
            document = json.loads(content)
        except ValueError:
            document = None
        messages = document.get("messages") if isinstance(document, Mapping) else None
        header = document.get("header") if isinstance(document, Mapping) else None
        if not isinstance(messages, list) or not isinstance(header, Mapping):
            issues.append(_feed_issue("The feed is not a valid JSON_LISTINGS_FEED document."))
        elif header.get("sellerId") != self._seller_id or header.get("version") != "2.0":
            issues.append(_feed_issue("The feed header does not match the selling partner or version 2.0."))
        elif len(messages) > MAX_MESSAGES:
            issues.append(_feed_issue(f"The feed has more than {MAX_MESSAGES} messages."))
        else:
            for message in messages:
                processed += 1
                message_issues = self._message(message)
                issues.extend(message_issues)
                if not any(i["severity"] == "ERROR" for i in message_issues):
                    accepted += 1
            self._stats.feed_messages += processed
        errors = sum(1 for i in issues if i["severity"] == "ERROR")
        return {
            "header": {"sellerId": self._seller_id, "version": "2.0", "feedId": feed.feed_id},
            "issues": issues,
            "summary": {
                "errors": errors,
                "warnings": sum(1 for i in issues if i["severity"] == "WARNING"),
                "messagesProcessed": processed,
                "messagesAccepted": accepted,
                "messagesInvalid": processed - accepted,
            },
        }

    def _message(self, message: Any) -> list[dict[str, Any]]:
        if not isinstance(message, Mapping):
            return [_feed_issue("A message is not a JSON object.")]
        message_id, sku = message.get("messageId"), message.get("sku")
        if not isinstance(message_id, int) or not isinstance(sku, str):
            return [_feed_issue("A message lacks messageId or sku.")]
        located = {"messageId": message_id, "sku": sku}
        if message.get("operationType") != "PATCH":
            return [{**located, "code": "4000001", "severity": "ERROR", "message": "PATCH messages only."}]
        if sku not in self._store.listings:
            text = f"The SKU '{sku}' does not exist; PATCH needs an existing listing."
            return [{**located, "code": "4000004", "severity": "ERROR", "message": text}]
        outcome = self._store.check_patch(sku, message)
        if outcome.issues:
            return [
                {
                    **located,
                    "code": i["code"],
                    "severity": i["severity"],
                    "message": i["message"],
                    **({"attributeName": i["attributeNames"][0]} if i.get("attributeNames") else {}),
                }
                for i in outcome.issues
            ]
        if outcome.quantity is not None:
            self._apply_quantity(sku, outcome.quantity)
        return []

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _feed_issue(message: str) -> dict[str, Any]:
    """An issue about the feed as a whole: no messageId (processing report schema v2)."""
    return {"code": "4000000", "severity": "ERROR", "message": message}
