"""Listings Items API payloads to Nexus data.

An Amazon listing is one seller SKU; the SKU is what every Listings Items operation addresses,
so it is the remote id (and the inventory id). The ASIN is not: several SKUs of one seller may
offer the same ASIN. It stays in `channel_meta` with the productType a later PATCH must name.

Item shape (listingsItems_2021-08-01.json, `Item`): `sku`, `summaries[] {marketplaceId, asin,
productType, conditionType, status[], fnSku, itemName, createdDate, lastUpdatedDate}`,
`attributes {name: [{value, marketplace_id, ...}]}`, `offers[] {marketplaceId, offerType, price
{currencyCode, amount}}`, `fulfillmentAvailability[] {fulfillmentChannelCode, quantity}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from nexus.drivers.dto import NexusProduct, NexusVariant

# Attribute names that carry GTINs: the current product-type schemas use
# `externally_assigned_product_identifier`; older listings carry `external_product_id`.
_IDENTIFIER_ATTRIBUTES = ("externally_assigned_product_identifier", "external_product_id")
_BARCODE_TYPES = frozenset({"ean", "upc", "gtin", "isbn", "jan"})


def product_from_amazon(
    item: Mapping[str, Any],
    *,
    marketplace_id: str | None = None,
    fulfillment_channel_code: str = "DEFAULT",
) -> NexusProduct:
    """Normalise a listings item (getListingsItem, or one of searchListingsItems' `items`).

    The summary of `marketplace_id` is preferred (else the first); the quantity is the
    merchant-fulfilled one (`fulfillment_channel_code`), None when the listing has none (FBA).
    The raw item stays in `channel_meta["raw"]`. Raises ValueError for a payload without a SKU.
    """
    sku = item.get("sku")
    if not isinstance(sku, str) or not sku.strip():
        raise ValueError("Amazon listings item has no sku")
    summary = _summary(item.get("summaries"), marketplace_id)
    attributes = item.get("attributes")
    attributes = attributes if isinstance(attributes, Mapping) else {}
    title = _text(summary.get("itemName")) or _attribute_value(attributes, "item_name") or sku
    meta = {
        "asin": _text(summary.get("asin")),
        "product_type": _text(summary.get("productType")),
        "marketplace_id": _text(summary.get("marketplaceId")),
        "condition_type": _text(summary.get("conditionType")),
        "fn_sku": _text(summary.get("fnSku")),
        "status": [s for s in summary.get("status") or [] if isinstance(s, str)],
    }
    variant = NexusVariant(
        remote_id=sku,
        sku=sku,
        title=title,
        quantity=_quantity(item, attributes, fulfillment_channel_code),
        barcode=_barcode(attributes),
        price=_price(item.get("offers"), summary.get("marketplaceId")),
        inventory_id=sku,
        channel_meta=meta,
    )
    return NexusProduct(
        remote_id=sku,
        title=title,
        variants=(variant,),
        channel_meta={**meta, "raw": dict(item)},
    )


def _summary(summaries: object, marketplace_id: str | None) -> Mapping[str, Any]:
    found = [s for s in summaries if isinstance(s, Mapping)] if isinstance(summaries, list) else []
    for summary in found:
        if marketplace_id is not None and summary.get("marketplaceId") == marketplace_id:
            return summary
    return found[0] if found else {}


def _quantity(item: Mapping[str, Any], attributes: Mapping[str, Any], code: str) -> int | None:
    availability = item.get("fulfillmentAvailability")
    for entry in availability if isinstance(availability, list) else []:
        if isinstance(entry, Mapping) and entry.get("fulfillmentChannelCode") == code:
            return _count(entry.get("quantity"))
    # The same figure as an attribute (requested with includedData=attributes).
    for entry in _attribute(attributes, "fulfillment_availability"):
        if entry.get("fulfillment_channel_code") == code:
            return _count(entry.get("quantity"))
    return None


def _barcode(attributes: Mapping[str, Any]) -> str | None:
    for name in _IDENTIFIER_ATTRIBUTES:
        for entry in _attribute(attributes, name):
            kind = entry.get("type")
            value = _text(entry.get("value"))
            if isinstance(kind, str) and kind.lower() in _BARCODE_TYPES and value:
                return value
    return None


def _price(offers: object, marketplace_id: object) -> Decimal | None:
    candidates = [o for o in offers if isinstance(o, Mapping)] if isinstance(offers, list) else []
    candidates.sort(key=lambda offer: offer.get("marketplaceId") != marketplace_id)
    for offer in candidates:
        price = offer.get("price")
        amount = price.get("amount") if isinstance(price, Mapping) else None
        if amount is not None and not isinstance(amount, bool):
            try:
                return Decimal(str(amount))
            except InvalidOperation:
                continue
    return None


def _attribute(attributes: Mapping[str, Any], name: str) -> Sequence[Mapping[str, Any]]:
    values = attributes.get(name)
    return [v for v in values if isinstance(v, Mapping)] if isinstance(values, list) else []


def _attribute_value(attributes: Mapping[str, Any], name: str) -> str | None:
    for entry in _attribute(attributes, name):
        value = _text(entry.get("value"))
        if value:
            return value
    return None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value
