"""The Shopify normaliser, as the driver registry finds it, over the documented REST and GraphQL shapes."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from shopify_testkit import load

from nexus.channels.shopify.normalize import numeric_id, product_from_shopify, to_gid
from nexus.channels.wire import parse_timestamp
from nexus.drivers.registry import DriverRegistry


def test_rest_product_with_four_variants() -> None:
    payload = load("rest_product.json")
    product = DriverRegistry().normalizer("shopify")(payload)

    assert product.remote_id == "632910392"
    assert product.title == "IPod Nano - 8GB"
    assert [v.remote_id for v in product.variants] == ["808950810", "49148385", "39072856", "457924702"]
    pink = product.variants[0]
    assert pink.sku == "IPOD2008PINK"
    assert pink.barcode == "1234_pink"
    assert pink.title == "Pink"
    assert pink.price == Decimal("199.00")
    assert pink.quantity == 10
    assert pink.inventory_id == "808950810"
    assert pink.channel_meta["tracked"] is True
    assert pink.channel_meta["inventory_policy"] == "continue"
    assert product.quantity_available == 100
    # Several variants: no single product-level SKU or barcode.
    assert product.local_sku is None
    assert product.barcode is None
    assert product.channel_meta["format"] == "rest"
    assert product.channel_meta["raw"] == payload


def test_rest_product_unwrapped_object_is_accepted() -> None:
    product = product_from_shopify(load("rest_product.json")["product"])
    assert product.remote_id == "632910392"
    assert len(product.variants) == 4


def test_rest_variant_without_sku_barcode_or_tracking() -> None:
    payload = copy.deepcopy(load("rest_product.json"))
    variant = payload["product"]["variants"][1]
    variant.update(sku="", barcode=None, inventory_management=None)
    payload["product"]["variants"] = [variant]

    product = product_from_shopify(payload)

    only = product.variants[0]
    assert only.sku is None
    assert only.barcode is None
    assert only.channel_meta["tracked"] is False
    assert product.local_sku is None  # single variant, but it has no SKU


def test_graphql_product_node() -> None:
    node = load("graphql_product.json")["data"]["product"]
    product = product_from_shopify(node)

    assert product.remote_id == "108828309"
    assert product.title == "Draft"
    assert product.channel_meta["format"] == "graphql"
    assert product.channel_meta["status"] == "active"
    assert product.channel_meta["handle"] == "draft"
    first, second = product.variants
    assert (first.remote_id, first.inventory_id) == ("43729076", "43729076")
    assert first.sku == "draft-151"
    assert first.barcode == "0123456789012"
    assert first.price == Decimal("10.00")
    assert first.quantity == 10
    assert first.channel_meta["inventory_policy"] == "deny"
    assert first.channel_meta["gid"] == "gid://shopify/ProductVariant/43729076"
    # Empty SKU and null barcode both mean "none".
    assert second.sku is None
    assert second.barcode is None
    assert second.channel_meta["tracked"] is False


def test_graphql_single_variant_product_exposes_sku_and_barcode() -> None:
    node = load("graphql_products_page.json")["data"]["products"]["nodes"][1]
    product = DriverRegistry().normalizer("shopify")(node)
    assert product.local_sku == "draft-151"
    assert product.barcode == "0123456789012"
    assert product.quantity_available == 10


def test_graphql_edges_shape_is_read_like_nodes() -> None:
    node = copy.deepcopy(load("graphql_product.json")["data"]["product"])
    node["variants"] = {"edges": [{"node": v} for v in node["variants"]["nodes"]]}
    assert [v.remote_id for v in product_from_shopify(node).variants] == ["43729076", "138327650"]


def test_money_v2_price_object_is_read() -> None:
    node = copy.deepcopy(load("graphql_product.json")["data"]["product"])
    node["variants"]["nodes"][0]["price"] = {"amount": "12.50", "currencyCode": "EUR"}
    assert product_from_shopify(node).variants[0].price == Decimal("12.50")


@pytest.mark.parametrize(
    "payload", [{"id": 1, "title": "x", "variants": []}, {"id": 1, "title": "x"}, {"nope": 1}]
)
def test_payloads_without_variants_are_refused(payload: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        product_from_shopify(payload)


def test_ids_convert_both_ways() -> None:
    assert numeric_id("gid://shopify/ProductVariant/123") == "123"
    assert numeric_id(456) == "456"
    assert numeric_id(" 789 ") == "789"
    assert (
        numeric_id("gid://shopify/InventoryLevel/24826418?inventory_item_id=271878346596884015") == "24826418"
    )
    assert to_gid("InventoryItem", "gid://shopify/InventoryItem/5") == "gid://shopify/InventoryItem/5"
    assert to_gid("Location", 7) == "gid://shopify/Location/7"
    for bad in (None, "", "abc", 0, -3, True, "gid://shopify/Product/x"):
        with pytest.raises(ValueError):
            numeric_id(bad)


def test_timestamps_become_aware_utc() -> None:
    parsed = parse_timestamp("2021-12-31T19:00:00-05:00")
    assert parsed is not None and parsed.isoformat() == "2022-01-01T00:00:00+00:00"
    zulu = parse_timestamp("2026-11-21T10:00:00Z")
    assert zulu is not None and zulu.isoformat() == "2026-11-21T10:00:00+00:00"
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp(None) is None
