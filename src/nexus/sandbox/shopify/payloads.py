"""Webhook bodies in the REST shape Shopify sends (`orders/create`, `inventory_levels/update`).

Field names and types follow Shopify's sample payloads for these topics: ids are JSON numbers,
money is a decimal string, timestamps carry the shop's UTC offset ("...+00:00"), and
`admin_graphql_api_id` links each object to its GraphQL GID. An InventoryLevel GID is keyed by
location with the item as a query parameter.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from nexus.sandbox.shopify.store import InventoryLevel, Product, Variant, gid, iso_offset, level_gid


def inventory_level_update(level: InventoryLevel) -> dict[str, Any]:
    return {
        "inventory_item_id": level.item_id,
        "location_id": level.location_id,
        "available": level.available,
        "updated_at": iso_offset(level.updated_at),
        "admin_graphql_api_id": level_gid(level.location_id, level.item_id),
    }


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    value = {"amount": f"{amount:.2f}", "currency_code": currency}
    return {"shop_money": value, "presentment_money": dict(value)}


def order_created(
    *,
    order_id: int,
    number: int,
    line_id: int,
    variant: Variant,
    product: Product,
    quantity: int,
    location_id: int,
    created_at: datetime,
    currency: str = "USD",
) -> dict[str, Any]:
    """An order with one line item, as `orders/create` delivers it."""
    price = Decimal(variant.price)
    total = price * quantity
    stamp = iso_offset(created_at)
    line_item = {
        "id": line_id,
        "admin_graphql_api_id": gid("LineItem", line_id),
        "attributed_staffs": [],
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": 0,
        "name": product.title if variant.title == "Default Title" else f"{product.title} - {variant.title}",
        "price": f"{price:.2f}",
        "price_set": _money(price, currency),
        "product_exists": True,
        "product_id": product.id,
        "properties": [],
        "quantity": quantity,
        "requires_shipping": True,
        "sku": variant.sku,
        "taxable": True,
        "title": product.title,
        "total_discount": "0.00",
        "total_discount_set": _money(Decimal(0), currency),
        "variant_id": variant.id,
        "variant_inventory_management": "shopify",
        "variant_title": None if variant.title == "Default Title" else variant.title,
        "vendor": product.vendor,
        "tax_lines": [],
        "duties": [],
        "discount_allocations": [],
    }
    return {
        "id": order_id,
        "admin_graphql_api_id": gid("Order", order_id),
        "app_id": None,
        "browser_ip": None,
        "buyer_accepts_marketing": False,
        "cancel_reason": None,
        "cancelled_at": None,
        "confirmation_number": f"NX{order_id % 10**8:08d}",
        "confirmed": True,
        "contact_email": "buyer@example.com",
        "created_at": stamp,
        "currency": currency,
        "current_subtotal_price": f"{total:.2f}",
        "current_total_price": f"{total:.2f}",
        "email": "buyer@example.com",
        "financial_status": "paid",
        "fulfillment_status": None,
        "location_id": location_id,
        "name": f"#{number}",
        "note": None,
        "number": number - 1000,
        "order_number": number,
        "presentment_currency": currency,
        "processed_at": stamp,
        "source_name": "web",
        "subtotal_price": f"{total:.2f}",
        "subtotal_price_set": _money(total, currency),
        "tags": "",
        "test": False,
        "total_discounts": "0.00",
        "total_price": f"{total:.2f}",
        "total_price_set": _money(total, currency),
        "total_tax": "0.00",
        "updated_at": stamp,
        "line_items": [line_item],
        "shipping_lines": [],
        "fulfillments": [],
        "refunds": [],
    }
