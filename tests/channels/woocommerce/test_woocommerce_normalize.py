"""`product_from_woocommerce` on payloads shaped like the real REST v3 answers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from woocommerce_testkit import load

from nexus.channels.wire import parse_timestamp as parse_gmt
from nexus.channels.woocommerce import product_from_woocommerce


def test_simple_product_is_one_variant_named_by_the_product_id() -> None:
    product = product_from_woocommerce(load("product_simple.json"))

    assert (product.remote_id, product.title, product.local_sku) == ("794", "Premium Quality", "PQ-794")
    (variant,) = product.variants
    assert (variant.remote_id, variant.sku, variant.quantity) == ("794", "PQ-794", 12)
    assert (variant.barcode, variant.price) == ("4006381333931", Decimal("21.99"))
    assert "parent_id" not in variant.channel_meta  # written through /products/batch
    assert product.channel_meta["raw"]["id"] == 794


def test_variable_product_takes_its_variations_with_the_parent_for_the_batch_path() -> None:
    product = product_from_woocommerce(load("product_variable.json"), load("product_variations.json"))

    assert product.remote_id == "799"
    assert [(v.remote_id, v.sku, v.title, v.quantity) for v in product.variants] == [
        ("800", "SYI-BLK-S", "Black / S", 5),
        ("801", "SYI-BLK-M", "Black / M", 0),
        # Stock managed by the parent: the variation has no level of its own.
        ("802", "SYI-GRN-S", "Green / S", None),
    ]
    assert {v.channel_meta["parent_id"] for v in product.variants} == {"799"}
    assert product.variants[0].barcode == "0012345678905"
    assert product.local_sku is None  # several variants: no single SKU
    assert product.quantity_available == 5


def test_unmanaged_stock_has_no_quantity() -> None:
    payload = load("product_simple.json") | {"manage_stock": False, "stock_quantity": None}
    assert product_from_woocommerce(payload).variants[0].quantity is None


@pytest.mark.parametrize(
    ("payload", "variations"),
    [
        (load("product_variable.json"), None),  # the variation objects were not fetched
        (load("product_simple.json") | {"type": "grouped"}, None),
        (load("product_simple.json") | {"type": "external"}, None),
        (load("product_simple.json") | {"id": "abc"}, None),
    ],
)
def test_payloads_without_stock_of_their_own_are_refused(
    payload: dict[str, object], variations: None
) -> None:
    with pytest.raises(ValueError):
        product_from_woocommerce(payload, variations)


def test_gmt_timestamps_without_offset_are_utc() -> None:
    assert parse_gmt("2026-11-20T09:15:02") == datetime(2026, 11, 20, 9, 15, 2, tzinfo=UTC)
    assert parse_gmt(None) is None
