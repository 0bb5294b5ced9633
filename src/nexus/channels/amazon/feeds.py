"""JSON_LISTINGS_FEED documents out, processing reports in.

Feed (schemas/feeds/listings-feed-schema-v2.json): `{"header": {"sellerId", "version": "2.0",
"issueLocale"}, "messages": [{"messageId": 1.., "sku", "operationType": "PATCH", "productType",
"patches": [...]}]}`, at most 25,000 messages.

Processing report (listings-feed-processing-report-schema-v2.json): `{"header": {"sellerId",
"version", "feedId"}, "issues": [{"messageId"?, "sku"?, "code"?, "severity": ERROR|WARNING|INFO,
"message", "attributeName"?}], "summary": {"errors", "warnings", "messagesProcessed",
"messagesAccepted", "messagesInvalid"}}`. An issue without `messageId` concerns the whole feed
(a formatting problem). A message with an ERROR issue is invalid and was not applied; a message
without one was accepted.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FEED_TYPE = "JSON_LISTINGS_FEED"
CONTENT_TYPE = "application/json; charset=UTF-8"
TERMINAL_STATUSES = frozenset({"DONE", "FATAL", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class FeedMessage:
    message_id: int
    sku: str
    product_type: str
    patches: Sequence[Mapping[str, Any]]


def fulfillment_patch(code: str, quantity: int) -> dict[str, Any]:
    """The one patch an inventory push sends, in the feed and in patchListingsItem alike."""
    return {
        "op": "replace",
        "path": "/attributes/fulfillment_availability",
        "value": [{"fulfillment_channel_code": code, "quantity": quantity}],
    }


def feed_document(seller_id: str, issue_locale: str, messages: Iterable[FeedMessage]) -> bytes:
    """The document, encoded one message at a time: a 10,000-message feed never exists as one
    tree of dicts (about 1 KB of Python objects per message), only as its ~150 bytes of JSON each.
    `messages` may be a generator. The bytes equal `json.dumps` of the whole document, compact."""
    header = {"sellerId": seller_id, "version": "2.0", "issueLocale": issue_locale}
    out = bytearray(b'{"header":')
    out += _compact(header)
    out += b',"messages":['
    for index, m in enumerate(messages):
        if index:
            out += b","
        out += _compact(
            {
                "messageId": m.message_id,
                "sku": m.sku,
                "operationType": "PATCH",
                "productType": m.product_type,
                "patches": list(m.patches),
            }
        )
    out += b"]}"
    return bytes(out)


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass
class ProcessingReport:
    by_message: dict[int, list[Mapping[str, Any]]] = field(default_factory=dict)
    feed_issues: list[Mapping[str, Any]] = field(default_factory=list)
    summary: Mapping[str, Any] = field(default_factory=dict)

    def errors(self, message_id: int) -> list[Mapping[str, Any]]:
        return [i for i in self.by_message.get(message_id, []) if i.get("severity") == "ERROR"]

    def feed_errors(self) -> list[Mapping[str, Any]]:
        return [i for i in self.feed_issues if i.get("severity") == "ERROR"]


def read_report(content: bytes, compression: str | None) -> ProcessingReport:
    """Raises ValueError for a document that is not a processing report."""
    if compression == "GZIP":
        content = gzip.decompress(content)
    payload = json.loads(content)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("issues"), list):
        raise ValueError("not a JSON_LISTINGS_FEED processing report")
    summary = payload.get("summary")
    report = ProcessingReport(summary=summary if isinstance(summary, Mapping) else {})
    for issue in payload["issues"]:
        if not isinstance(issue, Mapping):
            continue
        message_id = issue.get("messageId")
        if isinstance(message_id, int) and not isinstance(message_id, bool):
            report.by_message.setdefault(message_id, []).append(issue)
        else:
            report.feed_issues.append(issue)
    return report


def describe_issues(issues: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(f"{i.get('code') or '-'}: {i.get('message')}" for i in issues) or "no detail"
