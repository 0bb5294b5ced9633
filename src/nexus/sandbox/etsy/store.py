"""The sandbox shop: listings with inventories, receipts, and Etsy's rules for an inventory PUT.

Shapes follow Etsy's OpenAPI (ShopListing, ListingInventory, ListingInventoryProduct,
ListingInventoryProductOffering, ListingPropertyValue, Money, ShopReceipt, ShopReceiptTransaction).
A PUT replaces the whole inventory: products left out are gone, and every product and offering
gets a new id (etsy/open-api issue #523), which is what makes product ids useless as a key.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Etsy's updateListingInventory schema: additionalProperties false at every level.
PRODUCT_KEYS = frozenset({"sku", "property_values", "offerings"})
OFFERING_KEYS = frozenset({"price", "quantity", "is_enabled", "readiness_state_id"})
PROPERTY_VALUE_KEYS = frozenset({"property_id", "value_ids", "scale_id", "property_name", "values"})
ON_PROPERTY_KEYS = (
    "price_on_property",
    "quantity_on_property",
    "sku_on_property",
    "readiness_state_on_property",
)
DIVISOR = 100


class InventoryError(ValueError):
    """A PUT body Etsy answers with 400 {"error": message}."""


@dataclass
class Offering:
    offering_id: int
    amount: int  # price in cents (Money.amount with divisor 100)
    quantity: int
    is_enabled: bool = True
    readiness_state_id: int | None = None


@dataclass
class Product:
    product_id: int
    sku: str
    property_values: list[dict[str, Any]]
    offerings: list[Offering]

    @property
    def stock(self) -> Offering:
        return next((o for o in self.offerings if o.is_enabled), self.offerings[0])


@dataclass
class Listing:
    listing_id: int
    title: str
    products: list[Product]
    state: str = "active"
    on_property: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in ON_PROPERTY_KEYS})
    created: int = field(default_factory=lambda: int(time.time()))
    updated: int = field(default_factory=lambda: int(time.time()))


class Store:
    def __init__(
        self,
        *,
        shop_id: int,
        user_id: int,
        currency: str = "USD",
        max_quantity: int = 999,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.shop_id = shop_id
        self.user_id = user_id
        self.currency = currency
        self.max_quantity = max_quantity
        self._clock = clock
        self._ids = itertools.count(1_000_000_001)
        self.listings: dict[int, Listing] = {}
        self.receipts: dict[int, dict[str, Any]] = {}

    def next_id(self) -> int:
        return next(self._ids)

    def now(self) -> int:
        return int(self._clock())

    # -- catalogue --------------------------------------------------------------------------

    def add_listing(
        self,
        title: str,
        products: list[Mapping[str, Any]],
        on_property: Mapping[str, list[int]] | None = None,
    ) -> Listing:
        """Products take sku, quantity, price (float), property_values, is_enabled, readiness_state_id."""
        listing = Listing(self.next_id(), title, [self._product(p) for p in products])
        for key in ON_PROPERTY_KEYS:
            listing.on_property[key] = list((on_property or {}).get(key, []))
        self.listings[listing.listing_id] = listing
        return listing

    def _product(self, spec: Mapping[str, Any]) -> Product:
        offering = Offering(
            self.next_id(),
            amount=round(float(spec.get("price", 10.0)) * DIVISOR),
            quantity=int(spec.get("quantity", 0)),
            is_enabled=bool(spec.get("is_enabled", True)),
            readiness_state_id=spec.get("readiness_state_id"),
        )
        return Product(
            self.next_id(),
            str(spec.get("sku") or ""),
            copy.deepcopy(list(spec.get("property_values") or [])),
            [offering],
        )

    def find_sku(self, sku: str) -> tuple[Listing, Product]:
        for listing in self.listings.values():
            for product in listing.products:
                if product.sku == sku:
                    return listing, product
        raise KeyError(sku)

    def levels(self) -> dict[str, int]:
        return {p.sku: p.stock.quantity for lst in self.listings.values() for p in lst.products if p.sku}

    # -- JSON as Etsy renders it ------------------------------------------------------------

    def money(self, amount: int) -> dict[str, Any]:
        return {"amount": amount, "divisor": DIVISOR, "currency_code": self.currency}

    def inventory_json(self, listing: Listing) -> dict[str, Any]:
        return {
            "products": [
                {
                    "product_id": p.product_id,
                    "sku": p.sku,
                    "is_deleted": False,
                    "offerings": [
                        {
                            "offering_id": o.offering_id,
                            "quantity": o.quantity,
                            "is_enabled": o.is_enabled,
                            "is_deleted": False,
                            "price": self.money(o.amount),
                            "readiness_state_id": o.readiness_state_id,
                        }
                        for o in p.offerings
                    ],
                    "property_values": [_rendered_value(v) for v in p.property_values],
                }
                for p in listing.products
            ],
            **{key: list(values) for key, values in listing.on_property.items()},
            "listing": None,
        }

    def listing_json(self, listing: Listing, *, with_inventory: bool) -> dict[str, Any]:
        stock = [p.stock for p in listing.products]
        body: dict[str, Any] = {
            "listing_id": listing.listing_id,
            "user_id": self.user_id,
            "shop_id": self.shop_id,
            "title": listing.title,
            "description": "",
            "state": listing.state,
            "creation_timestamp": listing.created,
            "created_timestamp": listing.created,
            "last_modified_timestamp": listing.updated,
            "updated_timestamp": listing.updated,
            "quantity": sum(o.quantity for o in stock if o.is_enabled),
            "url": f"https://www.etsy.com/listing/{listing.listing_id}",
            "has_variations": any(p.property_values for p in listing.products),
            "listing_type": "physical",
            "price": self.money(min(o.amount for o in stock)),
        }
        if with_inventory:
            inventory = self.inventory_json(listing)
            del inventory["listing"]
            body["inventory"] = inventory
        return body

    # -- the inventory PUT ------------------------------------------------------------------

    def replace_inventory(self, listing: Listing, body: object) -> None:
        """Validate like Etsy, then replace every product (new ids). Raises InventoryError."""
        if (
            not isinstance(body, Mapping)
            or not isinstance(body.get("products"), list)
            or not body["products"]
        ):
            raise InventoryError("Missing Input Parameter: [products]")
        products = [self._put_product(p) for p in body["products"]]
        if not any(o.is_enabled and o.quantity > 0 for p in products for o in p.offerings):
            raise InventoryError("One offering must have quantity greater than 0")
        on_property: dict[str, list[int]] = {}
        for key in ON_PROPERTY_KEYS:
            value = body.get(key, [])
            if value is None and key == "readiness_state_on_property":
                value = []
            if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                raise InventoryError(f"{key} must be an array of integers")
            on_property[key] = list(value)
        listing.products = products
        listing.on_property = on_property
        listing.updated = self.now()

    def _put_product(self, product: object) -> Product:
        if not isinstance(product, Mapping):
            raise InventoryError("products must be an array of objects")
        unknown = set(product) - PRODUCT_KEYS
        if unknown:
            raise InventoryError(f"Unexpected product field(s): {', '.join(sorted(unknown))}")
        offerings = product.get("offerings")
        if not isinstance(offerings, list) or not offerings:
            raise InventoryError("Each product needs at least one offering")
        values = product.get("property_values", [])
        if not isinstance(values, list):
            raise InventoryError("property_values must be an array")
        for value in values:
            if not isinstance(value, Mapping) or set(value) - PROPERTY_VALUE_KEYS:
                raise InventoryError(f"Unexpected property value field(s) in {value!r}")
            if not isinstance(value.get("property_id"), int) or not isinstance(value.get("value_ids"), list):
                raise InventoryError("Each property value needs property_id and value_ids")
        sku = product.get("sku") or ""
        if not isinstance(sku, str):
            raise InventoryError("sku must be a string")
        return Product(
            self.next_id(), sku, [dict(v) for v in values], [self._put_offering(o) for o in offerings]
        )

    def _put_offering(self, offering: object) -> Offering:
        if not isinstance(offering, Mapping):
            raise InventoryError("offerings must be an array of objects")
        unknown = set(offering) - OFFERING_KEYS
        if unknown:
            raise InventoryError(f"Unexpected offering field(s): {', '.join(sorted(unknown))}")
        price, quantity, enabled = offering.get("price"), offering.get("quantity"), offering.get("is_enabled")
        if isinstance(price, bool) or not isinstance(price, int | float):
            # What GET hands out ({amount, divisor, currency_code}) is refused on the way back.
            raise InventoryError(f"price must be a number, got {price!r}")
        if price < 0.2 or price > 50_000:
            raise InventoryError(f"price must be between 0.20 and 50000.00, got {price}")
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 <= quantity <= self.max_quantity
        ):
            raise InventoryError(
                f"quantity must be an integer between 0 and {self.max_quantity}, got {quantity!r}"
            )
        if not isinstance(enabled, bool):
            raise InventoryError("is_enabled must be a boolean")
        readiness = offering.get("readiness_state_id")
        return Offering(self.next_id(), round(price * DIVISOR), quantity, enabled, readiness)

    # -- receipts ---------------------------------------------------------------------------

    def add_receipt(self, listing: Listing, product: Product, quantity: int) -> dict[str, Any]:
        now = self.now()
        receipt_id = self.next_id()
        amount = product.stock.amount
        transaction = {
            "transaction_id": self.next_id(),
            "title": listing.title,
            "description": "",
            "seller_user_id": self.user_id,
            "buyer_user_id": 7_000_001,
            "create_timestamp": now,
            "created_timestamp": now,
            "paid_timestamp": now,
            "shipped_timestamp": None,
            "quantity": quantity,
            "listing_image_id": None,
            "receipt_id": receipt_id,
            "is_digital": False,
            "file_data": "",
            "listing_id": listing.listing_id,
            "transaction_type": "listing",
            "product_id": product.product_id,
            "sku": product.sku,
            "price": self.money(amount),
            "shipping_cost": self.money(0),
            "variations": [
                {
                    "property_id": v["property_id"],
                    "value_id": (v.get("value_ids") or [None])[0],
                    "formatted_name": v.get("property_name") or "",
                    "formatted_value": ", ".join(v.get("values") or []),
                }
                for v in product.property_values
            ],
            "product_data": [_rendered_value(v) for v in product.property_values],
            "shipping_profile_id": None,
            "min_processing_days": 1,
            "max_processing_days": 3,
            "shipping_method": None,
            "shipping_upgrade": None,
            "expected_ship_date": now + 3 * 86_400,
            "buyer_coupon": 0,
            "shop_coupon": 0,
        }
        total = self.money(amount * quantity)
        receipt = {
            "receipt_id": receipt_id,
            "receipt_type": 0,
            "seller_user_id": self.user_id,
            "seller_email": None,
            "buyer_user_id": 7_000_001,
            "buyer_email": None,
            "name": "Sandbox Buyer",
            "status": "Paid",
            "payment_method": "cc",
            "is_paid": True,
            "is_shipped": False,
            "create_timestamp": now,
            "created_timestamp": now,
            "update_timestamp": now,
            "updated_timestamp": now,
            "is_gift": False,
            "grandtotal": total,
            "subtotal": total,
            "total_price": total,
            "total_shipping_cost": self.money(0),
            "total_tax_cost": self.money(0),
            "total_vat_cost": self.money(0),
            "discount_amt": self.money(0),
            "gift_wrap_price": self.money(0),
            "shipments": [],
            "transactions": [transaction],
            "refunds": [],
        }
        self.receipts[receipt_id] = receipt
        return receipt


def _rendered_value(value: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "property_id": value.get("property_id"),
        "property_name": value.get("property_name"),
        "scale_id": value.get("scale_id"),
        "scale_name": value.get("scale_name"),
        "value_ids": list(value.get("value_ids") or []),
        "values": list(value.get("values") or []),
    }
