"""Etsy listing inventories: product identity, prices, and the body of a whole-inventory PUT.

An Etsy listing holds products (one per variation combination), each with offerings that carry
the price and the quantity. `PUT /v3/application/listings/{id}/inventory` REPLACES the whole
inventory: a product missing from the body is deleted, and every PUT gives every product and
offering a new `product_id` / `offering_id` (Etsy, etsy/open-api issue #523: "The product_id and
offering_id change with each update"). So Nexus cannot name a product by its `product_id`;
it names it by what survives a PUT:

    remote id     "{listing_id}:sku:{sku}"   when the SKU is set and unique in the listing
                  "{listing_id}:pv:{values}" otherwise (the product's property value ids)
    inventory id  "{listing_id}:pv:{values}" always

`values` is "property_id=value_id|value_id;..." sorted by property id ("" for a listing without
variations, which has exactly one product). A sale's transaction carries `listing_id`, `sku` and
`product_data` (the same property values), so a webhook finds the listing by either form.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

SKU_KEY = "sku"
VALUES_KEY = "pv"
# Keys the PUT accepts (Etsy's updateListingInventory schema has additionalProperties: false);
# GET adds read-only ones (product_id, offering_id, is_deleted, scale_name) that must not go back.
PUT_PROPERTY_VALUE_KEYS = ("property_id", "value_ids", "scale_id", "property_name", "values")
ON_PROPERTY_KEYS = (
    "price_on_property",
    "quantity_on_property",
    "sku_on_property",
    "readiness_state_on_property",
)


@dataclass(frozen=True, slots=True)
class ProductRef:
    """Where a Nexus listing lives on Etsy: a listing and a product key inside it."""

    listing_id: int
    key: str  # "sku:<sku>" or "pv:<values>"

    @property
    def remote_id(self) -> str:
        return f"{self.listing_id}:{self.key}"


def parse_ref(remote_id: str | None) -> ProductRef | None:
    """ "123:sku:ABC" -> ProductRef(123, "sku:ABC"); None for anything else."""
    if not remote_id:
        return None
    listing, sep, key = remote_id.partition(":")
    if not sep or not listing.isdigit() or int(listing) <= 0:
        return None
    kind, sep, _ = key.partition(":")
    if not sep or kind not in (SKU_KEY, VALUES_KEY):
        return None
    return ProductRef(int(listing), key)


def values_key(property_values: object) -> str:
    """The stable key of a product's property values ("pv:200=5;513=7|8")."""
    parts: list[tuple[int, str]] = []
    for value in property_values if isinstance(property_values, list) else []:
        if not isinstance(value, Mapping):
            continue
        property_id = value.get("property_id")
        ids = value.get("value_ids")
        if not isinstance(property_id, int) or not isinstance(ids, list):
            continue
        parts.append((property_id, "|".join(str(i) for i in sorted(i for i in ids if isinstance(i, int)))))
    return f"{VALUES_KEY}:" + ";".join(f"{pid}={ids}" for pid, ids in sorted(parts))


def transaction_values_key(transaction: Mapping[str, Any]) -> str:
    """The values key of a receipt transaction: from `product_data`, else from `variations`."""
    product_data = transaction.get("product_data")
    if isinstance(product_data, list) and product_data:
        return values_key(product_data)
    grouped: dict[int, list[int]] = {}
    for variation in transaction.get("variations") or []:
        if not isinstance(variation, Mapping):
            continue
        property_id, value_id = variation.get("property_id"), variation.get("value_id")
        if isinstance(property_id, int) and isinstance(value_id, int):
            grouped.setdefault(property_id, []).append(value_id)
    return values_key([{"property_id": p, "value_ids": ids} for p, ids in grouped.items()])


def sku_of(product: Mapping[str, Any]) -> str | None:
    sku = product.get("sku")
    return sku.strip() if isinstance(sku, str) and sku.strip() else None


def live_products(inventory: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    products = inventory.get("products")
    return (
        [p for p in products if isinstance(p, Mapping) and p.get("is_deleted") is not True]
        if isinstance(products, list)
        else []
    )


def product_keys(products: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each product's key, in order: its SKU when that SKU is unique in the listing."""
    skus = [sku_of(p) for p in products]
    counts: dict[str, int] = {}
    for sku in skus:
        if sku is not None:
            counts[sku] = counts.get(sku, 0) + 1
    return [
        f"{SKU_KEY}:{sku}" if sku is not None and counts[sku] == 1 else values_key(p.get("property_values"))
        for p, sku in zip(products, skus, strict=True)
    ]


def stock_offering(product: Mapping[str, Any]) -> dict[str, Any] | None:
    """The offering that holds the product's stock: the first enabled one, else the first.

    Etsy products carry one offering in practice; reading and writing the same one keeps the
    two consistent if a product ever has more."""
    offerings = [
        o for o in product.get("offerings") or [] if isinstance(o, dict) and o.get("is_deleted") is not True
    ]
    return next((o for o in offerings if o.get("is_enabled") is True), offerings[0] if offerings else None)


def money(value: object) -> Decimal | None:
    """Etsy's Money {amount, divisor, currency_code} (or a plain number) as a Decimal."""
    if isinstance(value, Mapping):
        amount, divisor = value.get("amount"), value.get("divisor")
        if isinstance(amount, int) and isinstance(divisor, int) and divisor > 0:
            return Decimal(amount) / Decimal(divisor)
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return None


def price_float(value: object) -> float:
    """The float the PUT wants: GET hands prices out as Money objects, PUT refuses them."""
    price = money(value)
    if price is None:
        raise ValueError(f"offering price is not Etsy Money: {value!r}")
    return float(price)


def quantity_of(product: Mapping[str, Any]) -> int | None:
    offering = stock_offering(product)
    quantity = offering.get("quantity") if offering is not None else None
    return quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None


def put_body(inventory: Mapping[str, Any], quantities: Mapping[int, int]) -> dict[str, Any]:
    """The whole inventory as a PUT body, with `quantities` (product index in `live_products`
    -> quantity) set on those products' stock offerings and everything else as it was."""
    products: list[dict[str, Any]] = []
    for index, product in enumerate(live_products(inventory)):
        stock = stock_offering(product)
        offerings: list[dict[str, Any]] = []
        for offering in product.get("offerings") or []:
            if not isinstance(offering, Mapping) or offering.get("is_deleted") is True:
                continue
            quantity = offering.get("quantity")
            if offering is stock and index in quantities:
                quantity = quantities[index]
            entry: dict[str, Any] = {
                "price": price_float(offering.get("price")),
                "quantity": quantity,
                "is_enabled": offering.get("is_enabled") is True,
            }
            if "readiness_state_id" in offering:  # processing profiles: keep whatever was set
                entry["readiness_state_id"] = offering["readiness_state_id"]
            offerings.append(entry)
        products.append(
            {
                "sku": product.get("sku") or "",
                "property_values": [_put_property_value(v) for v in _list(product.get("property_values"))],
                "offerings": offerings,
            }
        )
    body: dict[str, Any] = {"products": products}
    for key in ON_PROPERTY_KEYS:
        if isinstance(inventory.get(key), list):
            body[key] = copy.deepcopy(inventory[key])
    return body


def _put_property_value(value: Mapping[str, Any]) -> dict[str, Any]:
    return {key: copy.deepcopy(value[key]) for key in PUT_PROPERTY_VALUE_KEYS if key in value}


def _list(value: object) -> Iterable[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
