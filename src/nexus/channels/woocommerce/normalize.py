"""WooCommerce REST v3 payloads to Nexus data.

WooCommerce keeps products and variations in one id space (WordPress posts), so a variation id
alone names a listing. A variable product's own object lists only the ids of its variations; the
variation objects come from `GET /products/{id}/variations` and are passed in beside it.

Timestamps: `date_modified_gmt` is GMT without an offset ("2017-03-23T20:01:14"); `date_modified`
is the site's local time and is never used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from nexus.drivers.dto import NexusProduct, NexusVariant

SIMPLE = "simple"
VARIABLE = "variable"
VARIATION = "variation"
# grouped and external products hold no stock of their own: nothing to sync.
SUPPORTED_TYPES = frozenset({SIMPLE, VARIABLE})


def woo_id(value: object) -> str:
    """A WooCommerce id (a positive int, or its digits) as a string. Raises ValueError otherwise."""
    if isinstance(value, bool):  # bool is an int subclass; True is no id
        raise ValueError(f"not a WooCommerce id: {value!r}")
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return str(int(value))
    raise ValueError(f"not a WooCommerce id: {value!r}")


def managed_quantity(item: Mapping[str, Any]) -> int | None:
    """`stock_quantity` when the item tracks its own stock, else None.

    A variation may answer `manage_stock: "parent"`: its level is the parent's, not its own."""
    quantity = item.get("stock_quantity")
    if item.get("manage_stock") is not True or isinstance(quantity, bool) or not isinstance(quantity, int):
        return None
    return quantity


def product_from_woocommerce(
    payload: Mapping[str, Any], variations: Sequence[Mapping[str, Any]] | None = None
) -> NexusProduct:
    """Normalise a simple product, or a variable product with its variation objects.

    The raw product stays in `channel_meta["raw"]`. Raises ValueError for a payload that is not a
    product, for grouped and external products, and for a variable product without variations.
    """
    product_type = payload.get("type")
    if product_type not in SUPPORTED_TYPES:
        raise ValueError(f"WooCommerce product type {product_type!r} holds no stock of its own")
    product_id = woo_id(payload.get("id"))
    title = str(payload.get("name") or "")
    if product_type == SIMPLE:
        variants: tuple[NexusVariant, ...] = (_variant(payload, title=title, parent_id=None),)
    else:
        variants = tuple(
            _variant(v, title=_variation_title(v, title), parent_id=product_id)
            for v in variations or ()
            if isinstance(v, Mapping)
        )
        if not variants:
            raise ValueError(f"variable WooCommerce product {product_id} has no variations")
    meta: dict[str, Any] = {
        "type": product_type,
        "status": payload.get("status"),
        "slug": payload.get("slug"),
        "raw": dict(payload),
    }
    return NexusProduct(remote_id=product_id, title=title, variants=variants, channel_meta=meta)


def _variant(item: Mapping[str, Any], *, title: str, parent_id: str | None) -> NexusVariant:
    meta: dict[str, Any] = {
        "type": VARIATION if parent_id else SIMPLE,
        "manage_stock": item.get("manage_stock"),
        "stock_status": item.get("stock_status"),
        "backorders": item.get("backorders"),
    }
    if parent_id:
        # The push goes to /products/{parent_id}/variations/batch: the driver needs the parent.
        meta["parent_id"] = parent_id
    return NexusVariant(
        remote_id=woo_id(item.get("id")),
        sku=_blank_to_none(item.get("sku")),
        title=title,
        quantity=managed_quantity(item),
        # WooCommerce 9.2+ has a GTIN/UPC/EAN/ISBN field; older stores omit it.
        barcode=_blank_to_none(item.get("global_unique_id")),
        price=_price(item.get("price")),
        channel_meta=meta,
    )


def _variation_title(variation: Mapping[str, Any], product_title: str) -> str:
    """ "Black / M" from the variation's attribute options; its `name` when the store sends one."""
    name = variation.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    options = [
        str(a.get("option"))
        for a in variation.get("attributes") or []
        if isinstance(a, Mapping) and a.get("option")
    ]
    return " / ".join(options) or product_title


def _blank_to_none(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _price(value: object) -> Decimal | None:
    # Prices are decimal strings; "" means no price set.
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
