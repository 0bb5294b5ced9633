"""The JSON_LISTINGS_FEED document is encoded message by message (issue 13: a feed round must not
hold every message as a tree of objects at once); what Amazon receives must not change."""

from __future__ import annotations

import json
from collections.abc import Iterator

from nexus.channels.amazon.feeds import FeedMessage, feed_document, fulfillment_patch


def messages(count: int) -> Iterator[FeedMessage]:
    for n in range(1, count + 1):
        # SKUs with characters JSON must escape, and a non-ASCII one.
        yield FeedMessage(n, f'SKU-{n}/"x"\\ é', "HOME", [fulfillment_patch("DEFAULT", n % 7)])


def whole(count: int) -> bytes:
    """The document as one tree, dumped at once (how it was built before)."""
    document = {
        "header": {"sellerId": "A2SELLER", "version": "2.0", "issueLocale": "en_US"},
        "messages": [
            {
                "messageId": m.message_id,
                "sku": m.sku,
                "operationType": "PATCH",
                "productType": m.product_type,
                "patches": list(m.patches),
            }
            for m in messages(count)
        ],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def test_a_generator_of_messages_gives_the_same_bytes_as_the_whole_tree() -> None:
    for count in (0, 1, 3, 250):
        assert feed_document("A2SELLER", "en_US", messages(count)) == whole(count)


def test_the_streamed_document_is_one_valid_json_object() -> None:
    parsed = json.loads(feed_document("A2SELLER", "en_US", messages(3)))
    assert [m["messageId"] for m in parsed["messages"]] == [1, 2, 3]
    assert parsed["messages"][1]["sku"] == 'SKU-2/"x"\\ é'
