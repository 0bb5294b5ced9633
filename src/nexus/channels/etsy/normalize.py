"""Etsy listings to Nexus products: one variant per inventory product.

The `NexusProduct.from_etsy` hook would need an edit to `nexus.drivers.dto`; until it exists,
`product_from_etsy` is the public normaliser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexus.channels.etsy.inventory import (
    ProductRef,
    live_products,
    money,
    product_keys,
    quantity_of,
    sku_of,
    stock_offering,
    values_key,
)
from nexus.drivers.dto import NexusProduct, NexusVariant


def listing_id_of(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"not an Etsy listing id: {value!r}")
    return value


def product_from_etsy(listing: Mapping[str, Any], inventory: Mapping[str, Any] | None = None) -> NexusProduct:
    """Normalise a ShopListing and its ListingInventory (the listing's `inventory` association
    when `inventory` is not given). Raises ValueError for a payload that is neither."""
    listing_id = listing_id_of(listing.get("listing_id"))
    inventory = inventory if inventory is not None else listing.get("inventory")
    if not isinstance(inventory, Mapping):
        raise ValueError(f"Etsy listing {listing_id} comes without its inventory")
    products = live_products(inventory)
    if not products:
        raise ValueError(f"Etsy listing {listing_id} has no products in its inventory")
    title = str(listing.get("title") or "")
    variants = tuple(
        _variant(listing_id, title, product, key)
        for product, key in zip(products, product_keys(products), strict=True)
    )
    meta: dict[str, Any] = {
        "listing_id": listing_id,
        "shop_id": listing.get("shop_id"),
        "state": listing.get("state"),
        "url": listing.get("url"),
        "raw": {"listing": dict(listing), "inventory": dict(inventory)},
    }
    return NexusProduct(remote_id=str(listing_id), title=title, variants=variants, channel_meta=meta)


def _variant(listing_id: int, title: str, product: Mapping[str, Any], key: str) -> NexusVariant:
    offering = stock_offering(product)
    price = offering.get("price") if offering is not None else None
    names = [
        ", ".join(str(v) for v in value.get("values") or [])
        for value in product.get("property_values") or []
        if isinstance(value, Mapping)
    ]
    return NexusVariant(
        remote_id=ProductRef(listing_id, key).remote_id,
        sku=sku_of(product),
        title=" / ".join(n for n in names if n) or title,
        quantity=quantity_of(product),
        price=money(price),
        # The property values survive every inventory PUT; product ids do not.
        inventory_id=ProductRef(listing_id, values_key(product.get("property_values"))).remote_id,
        channel_meta={
            "listing_id": listing_id,
            "etsy_product_id": product.get("product_id"),
            "offering_id": offering.get("offering_id") if offering is not None else None,
            "is_enabled": offering.get("is_enabled") if offering is not None else None,
            "currency_code": price.get("currency_code") if isinstance(price, Mapping) else None,
        },
    )
