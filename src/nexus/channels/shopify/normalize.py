"""Shopify payloads to Nexus data, and Shopify ids both ways.

Shopify names every object twice: a GID on the GraphQL wire ("gid://shopify/ProductVariant/123")
and a bare integer in REST and webhook bodies (123). Nexus stores the numeric part as a string,
so the same listing matches whichever form a payload carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from nexus.drivers.dto import NexusProduct, NexusVariant

GID_PREFIX = "gid://shopify/"


def numeric_id(value: object) -> str:
    """The numeric part of a Shopify id given as an int, a digit string or a GID.

    Raises ValueError for anything else, so a malformed id is caught where it enters.
    """
    if isinstance(value, bool):  # bool is an int subclass; True is no id
        raise ValueError(f"not a Shopify id: {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"not a Shopify id: {value!r}")
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(GID_PREFIX):
            # gid://shopify/InventoryLevel/1?inventory_item_id=2 carries a query part; the id is before it.
            text = text.rsplit("/", 1)[-1].split("?", 1)[0]
        if text.isdigit() and int(text) > 0:
            return str(int(text))
    raise ValueError(f"not a Shopify id: {value!r}")


def to_gid(kind: str, value: object) -> str:
    """`to_gid("InventoryItem", "456")` -> "gid://shopify/InventoryItem/456"."""
    return f"{GID_PREFIX}{kind}/{numeric_id(value)}"


def product_from_shopify(payload: Mapping[str, Any]) -> NexusProduct:
    """Normalise a GraphQL `Product` node or a REST `product` object (wrapped in {"product": ...} or not).

    The raw payload stays in `channel_meta["raw"]`. Raises ValueError for a payload that is neither.
    """
    product = payload.get("product") if "product" in payload and "id" not in payload else payload
    if not isinstance(product, Mapping):
        raise ValueError("Shopify product payload is not an object")
    raw_id = product.get("id")
    graphql = isinstance(raw_id, str) and raw_id.startswith(GID_PREFIX)
    variants_raw = _graphql_variant_nodes(product.get("variants")) if graphql else product.get("variants")
    if not isinstance(variants_raw, Sequence) or isinstance(variants_raw, str | bytes):
        raise ValueError("Shopify product payload has no variants list")
    variants = tuple(
        _variant_from_graphql(v) if graphql else _variant_from_rest(v)
        for v in variants_raw
        if isinstance(v, Mapping)
    )
    if not variants:
        # Shopify always has at least one (default) variant; none means a truncated payload.
        raise ValueError("Shopify product payload has no variants")
    meta: dict[str, Any] = {
        "format": "graphql" if graphql else "rest",
        "handle": product.get("handle"),
        "status": _lower(product.get("status")),
        "raw": dict(payload),
    }
    return NexusProduct(
        remote_id=numeric_id(raw_id),
        title=str(product.get("title") or ""),
        variants=variants,
        channel_meta=meta,
    )


def _graphql_variant_nodes(connection: object) -> list[Any]:
    """A GraphQL connection read either as `nodes` or as `edges { node }`."""
    if not isinstance(connection, Mapping):
        return []
    nodes = connection.get("nodes")
    if isinstance(nodes, list):
        return nodes
    edges = connection.get("edges")
    if isinstance(edges, list):
        return [e.get("node") for e in edges if isinstance(e, Mapping)]
    return []


def _variant_from_graphql(node: Mapping[str, Any]) -> NexusVariant:
    item = node.get("inventoryItem")
    item = item if isinstance(item, Mapping) else {}
    item_id = item.get("id")
    return NexusVariant(
        remote_id=numeric_id(node.get("id")),
        sku=_blank_to_none(node.get("sku")),
        title=str(node.get("title") or ""),
        quantity=_int_or_none(node.get("inventoryQuantity")),
        barcode=_blank_to_none(node.get("barcode")),
        price=_price(node.get("price")),
        inventory_id=numeric_id(item_id) if item_id is not None else None,
        channel_meta={
            "gid": node.get("id"),
            "inventory_policy": _lower(node.get("inventoryPolicy")),
            "tracked": item.get("tracked") if isinstance(item.get("tracked"), bool) else None,
        },
    )


def _variant_from_rest(variant: Mapping[str, Any]) -> NexusVariant:
    item_id = variant.get("inventory_item_id")
    management = variant.get("inventory_management")
    return NexusVariant(
        remote_id=numeric_id(variant.get("id")),
        sku=_blank_to_none(variant.get("sku")),
        title=str(variant.get("title") or ""),
        quantity=_int_or_none(variant.get("inventory_quantity")),
        barcode=_blank_to_none(variant.get("barcode")),
        price=_price(variant.get("price")),
        inventory_id=numeric_id(item_id) if item_id is not None else None,
        channel_meta={
            "gid": variant.get("admin_graphql_api_id"),
            "inventory_policy": _lower(variant.get("inventory_policy")),
            # REST says who tracks stock ("shopify", a fulfillment service, or null for nobody).
            "tracked": management is not None,
            "inventory_management": management,
        },
    )


def _blank_to_none(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _lower(value: object) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _price(value: object) -> Decimal | None:
    # GraphQL `Money` is a decimal string; older MoneyV2 selections give {"amount": ..., "currencyCode": ...}.
    if isinstance(value, Mapping):
        value = value.get("amount")
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
