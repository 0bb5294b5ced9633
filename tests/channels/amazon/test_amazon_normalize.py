"""Listings items and processing reports shaped like the real API's (examples from the API models)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from amazon_testkit import FIXTURES, load

from nexus.channels.amazon import product_from_amazon
from nexus.channels.amazon.feeds import FeedMessage, feed_document, fulfillment_patch, read_report


def test_get_listings_item_becomes_a_product() -> None:
    product = product_from_amazon(load("listings_item.json"), marketplace_id="ATVPDKIKX0DER")
    (variant,) = product.variants
    assert (product.remote_id, product.local_sku, product.title) == (
        "GM-ZDPI-9B4E",
        "GM-ZDPI-9B4E",
        "Hardside Carry-On Spinner Suitcase Luggage",
    )
    assert (variant.remote_id, variant.inventory_id, variant.quantity) == (
        "GM-ZDPI-9B4E",
        "GM-ZDPI-9B4E",
        100,
    )
    assert variant.barcode == "4006381333931"
    assert variant.price == Decimal("100.00")
    assert variant.channel_meta["asin"] == "B071VG5N9D"
    assert variant.channel_meta["product_type"] == "LUGGAGE"
    assert product.channel_meta["raw"]["sku"] == "GM-ZDPI-9B4E"


def test_search_results_without_mfn_quantity_or_summary_title() -> None:
    first, second = (product_from_amazon(item) for item in load("search_listings_items.json")["items"])
    assert (first.title, first.variants[0].quantity, first.barcode) == (
        "Hardside Carry-On Spinner Suitcase Luggage",
        10,
        None,
    )
    # An FBA-only listing: no merchant-fulfilled quantity; the title comes from the attributes.
    assert (second.title, second.variants[0].quantity) == ("My Title", None)
    assert second.variants[0].channel_meta["fn_sku"] == "X00ABCDEFG"
    assert second.variants[0].price == Decimal("30.0")


def test_quantity_of_another_fulfillment_channel() -> None:
    item = load("search_listings_items.json")["items"][1]
    assert product_from_amazon(item, fulfillment_channel_code="AMAZON_NA").variants[0].quantity is None
    item["fulfillmentAvailability"][0]["quantity"] = 4
    assert product_from_amazon(item, fulfillment_channel_code="AMAZON_NA").variants[0].quantity == 4


def test_item_without_sku_is_refused() -> None:
    with pytest.raises(ValueError, match="sku"):
        product_from_amazon({"summaries": []})


def test_processing_report_groups_issues_by_message() -> None:
    report = read_report((FIXTURES / "processing_report.json").read_bytes(), None)
    assert [i["code"] for i in report.errors(4)] == ["90220", "90220"]
    assert report.errors(2) == []  # a WARNING does not make the message invalid
    assert report.errors(1) == []
    assert report.feed_errors() == []
    assert report.summary["messagesInvalid"] == 2


def test_feed_document_follows_the_listings_feed_schema() -> None:
    content = feed_document(
        "A2SELLER", "en_US", [FeedMessage(1, "SKU-1", "HOME", [fulfillment_patch("DEFAULT", 4)])]
    )
    assert json.loads(content) == {
        "header": {"sellerId": "A2SELLER", "version": "2.0", "issueLocale": "en_US"},
        "messages": [
            {
                "messageId": 1,
                "sku": "SKU-1",
                "operationType": "PATCH",
                "productType": "HOME",
                "patches": [
                    {
                        "op": "replace",
                        "path": "/attributes/fulfillment_availability",
                        "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 4}],
                    }
                ],
            }
        ],
    }
