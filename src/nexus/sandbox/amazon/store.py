"""The seller's listings: what getListingsItem/searchListingsItems show and patches change.

Patches follow ListingsItemPatchRequest (listingsItems_2021-08-01.json): `{"productType",
"patches": [{"op": "add"|"replace"|"merge"|"delete", "path": "/attributes/<name>", "value": [...]}]}`.
Only `fulfillment_availability` changes a level here; other attributes are accepted and ignored.
Issues are shaped like the model's examples (`code`, `message`, `severity`, `attributeNames`,
`categories`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PATCH_OPS = frozenset({"add", "replace", "merge", "delete"})
QUANTITY_PATH = "/attributes/fulfillment_availability"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Listing:
    sku: str
    asin: str
    product_type: str
    item_name: str
    quantity: int
    barcode: str | None = None
    price: str = "19.99"
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)


def invalid_attribute(attribute: str, message: str) -> dict[str, Any]:
    return {
        "code": "90000900",
        "message": message,
        "severity": "ERROR",
        "attributeNames": [attribute],
        "categories": ["INVALID_ATTRIBUTE"],
    }


@dataclass(frozen=True, slots=True)
class PatchOutcome:
    quantity: int | None  # the new MFN quantity, None when the patch does not touch it
    issues: list[dict[str, Any]]


class ListingsStore:
    def __init__(self, *, marketplace_id: str, fulfillment_channel_code: str = "DEFAULT") -> None:
        self.marketplace_id = marketplace_id
        self.channel_code = fulfillment_channel_code
        self.listings: dict[str, Listing] = {}
        # SKU -> issue: the listing refuses every update (a merchant's listing with a problem).
        self.refusals: dict[str, dict[str, Any]] = {}

    def add(self, listing: Listing) -> None:
        self.listings[listing.sku] = listing

    def check_patch(self, sku: str, body: Mapping[str, Any]) -> PatchOutcome:
        """Validate a patch (request body or feed message) without applying it."""
        refusal = self.refusals.get(sku)
        if refusal is not None:
            return PatchOutcome(None, [dict(refusal)])
        product_type = body.get("productType")
        patches = body.get("patches")
        if not isinstance(product_type, str) or not product_type:
            return PatchOutcome(None, [invalid_attribute("productType", "'productType' is required.")])
        if not isinstance(patches, list) or not patches:
            return PatchOutcome(None, [invalid_attribute("patches", "At least one patch is required.")])
        quantity: int | None = None
        for patch in patches:
            if not isinstance(patch, Mapping) or patch.get("op") not in PATCH_OPS:
                return PatchOutcome(None, [invalid_attribute("patches", "The patch operation is invalid.")])
            if patch.get("path") != QUANTITY_PATH:
                continue
            value = patch.get("value")
            entry = value[0] if isinstance(value, list) and value and isinstance(value[0], Mapping) else None
            amount = entry.get("quantity") if entry is not None else None
            if (
                entry is None
                or entry.get("fulfillment_channel_code") != self.channel_code
                or isinstance(amount, bool)
                or not isinstance(amount, int)
                or amount < 0
            ):
                return PatchOutcome(
                    None,
                    [invalid_attribute("fulfillment_availability", "The attributes are invalid.")],
                )
            quantity = amount
        return PatchOutcome(quantity, [])

    def item(self, listing: Listing, included: set[str]) -> dict[str, Any]:
        """The listing as the Listings Items API `Item`, with the requested `includedData` sets."""
        item: dict[str, Any] = {"sku": listing.sku}
        if "summaries" in included:
            item["summaries"] = [
                {
                    "marketplaceId": self.marketplace_id,
                    "asin": listing.asin,
                    "productType": listing.product_type,
                    "conditionType": "new_new",
                    "status": ["BUYABLE", "DISCOVERABLE"] if listing.quantity > 0 else ["DISCOVERABLE"],
                    "itemName": listing.item_name,
                    "createdDate": listing.created,
                    "lastUpdatedDate": listing.updated,
                }
            ]
        if "attributes" in included:
            attributes: dict[str, Any] = {
                "item_name": [{"value": listing.item_name, "marketplace_id": self.marketplace_id}],
                "condition_type": [{"value": "new_new", "marketplace_id": self.marketplace_id}],
                "fulfillment_availability": [
                    {"fulfillment_channel_code": self.channel_code, "quantity": listing.quantity}
                ],
            }
            if listing.barcode:
                attributes["externally_assigned_product_identifier"] = [
                    {"type": "ean", "value": listing.barcode, "marketplace_id": self.marketplace_id}
                ]
            item["attributes"] = attributes
        if "issues" in included:
            item["issues"] = []
        if "offers" in included:
            item["offers"] = [
                {
                    "marketplaceId": self.marketplace_id,
                    "offerType": "B2C",
                    "price": {"currencyCode": "USD", "amount": listing.price},
                }
            ]
        if "fulfillmentAvailability" in included:
            item["fulfillmentAvailability"] = [
                {"fulfillmentChannelCode": self.channel_code, "quantity": listing.quantity}
            ]
        return item
