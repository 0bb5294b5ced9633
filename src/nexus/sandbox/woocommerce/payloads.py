"""REST v3 JSON shapes (products, variations, orders, WordPress REST errors) and PHP-style JSON.

Field lists follow the WooCommerce REST API docs (wp-api-v3 products, product variations,
orders) and the v3 controllers' `prepare_object_for_response`. Fields Nexus never reads are
kept so a driver meets the real shape, not a trimmed one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from nexus.sandbox.woocommerce.store import VARIATION, Order, Product, Store


def php_json(payload: Any) -> bytes:
    """`wp_json_encode` output: compact, non-ASCII and "/" escaped as PHP's json_encode does.

    Signatures cover these exact bytes; a receiver that re-serialises before verifying fails."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def wp_error(code: str, message: str, status: int, **data: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status, **data}}


def _local(value: datetime) -> str:
    # The sandbox's site timezone is UTC, so local and GMT times agree.
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _stock_fields(product: Product) -> dict[str, Any]:
    return {
        "manage_stock": product.manage_stock,
        "stock_quantity": product.stock_quantity if product.manage_stock else None,
        "stock_status": product.stock_status,
        "backorders": product.backorders,
        "backorders_allowed": product.backorders != "no",
        "backordered": product.manage_stock and (product.stock_quantity or 0) < 0,
        "low_stock_amount": None,
    }


def _dates(product: Product) -> dict[str, Any]:
    return {
        "date_created": _local(product.date_created),
        "date_created_gmt": _local(product.date_created),
        "date_modified": _local(product.date_modified),
        "date_modified_gmt": _local(product.date_modified),
    }


def product_json(store: Store, product: Product, base_url: str) -> dict[str, Any]:
    """`GET /products/{id}`; for a variation id this is what WooCommerce answers too (and what a
    variation's product.updated webhook carries): product-shaped, `type: "variation"`."""
    variable_attributes: list[dict[str, Any]] = []
    if product.children:
        names: dict[str, list[str]] = {}
        for child in product.children:
            for attribute in store.products[child].attributes:
                options = names.setdefault(str(attribute["name"]), [])
                if attribute["option"] not in options:
                    options.append(str(attribute["option"]))
        variable_attributes = [
            {"id": 0, "name": n, "position": i, "visible": True, "variation": True, "options": o}
            for i, (n, o) in enumerate(names.items())
        ]
    return {
        "id": product.id,
        "name": product.name,
        "slug": f"product-{product.id}",
        "permalink": f"{base_url}/product/product-{product.id}/",
        **_dates(product),
        "type": product.type,
        "status": "publish",
        "featured": False,
        "catalog_visibility": "visible",
        "description": "",
        "short_description": "",
        "sku": product.sku,
        "global_unique_id": product.global_unique_id,
        "price": product.price,
        "regular_price": product.price,
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_from_gmt": None,
        "date_on_sale_to": None,
        "date_on_sale_to_gmt": None,
        "on_sale": False,
        "purchasable": product.price != "",
        "total_sales": 0,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "external_url": "",
        "button_text": "",
        "tax_status": "taxable",
        "tax_class": "",
        **_stock_fields(product),
        "sold_individually": False,
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_required": True,
        "shipping_taxable": True,
        "shipping_class": "",
        "shipping_class_id": 0,
        "reviews_allowed": True,
        "average_rating": "0.00",
        "rating_count": 0,
        "related_ids": [],
        "upsell_ids": [],
        "cross_sell_ids": [],
        "parent_id": product.parent_id,
        "purchase_note": "",
        "categories": [],
        "tags": [],
        "images": [],
        "attributes": (
            [{"id": 0, "name": a["name"], "option": a["option"]} for a in product.attributes]
            if product.type == VARIATION
            else variable_attributes
        ),
        "default_attributes": [],
        "variations": list(product.children),
        "grouped_products": [],
        "menu_order": 0,
        "meta_data": [],
        "_links": {
            "self": [{"href": f"{base_url}/wp-json/wc/v3/products/{product.id}"}],
            "collection": [{"href": f"{base_url}/wp-json/wc/v3/products"}],
        },
    }


def variation_json(product: Product, base_url: str) -> dict[str, Any]:
    """`GET /products/{parent}/variations/{id}` (WC_REST_Product_Variations_Controller)."""
    return {
        "id": product.id,
        **_dates(product),
        "description": "",
        "permalink": f"{base_url}/product/product-{product.parent_id}/?variation_id={product.id}",
        "sku": product.sku,
        "global_unique_id": product.global_unique_id,
        "price": product.price,
        "regular_price": product.price,
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_from_gmt": None,
        "date_on_sale_to": None,
        "date_on_sale_to_gmt": None,
        "on_sale": False,
        "status": "publish",
        "purchasable": product.price != "",
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "tax_status": "taxable",
        "tax_class": "",
        **_stock_fields(product),
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_class": "",
        "shipping_class_id": 0,
        "image": None,
        "attributes": [{"id": 0, "name": a["name"], "option": a["option"]} for a in product.attributes],
        "menu_order": 0,
        "meta_data": [],
        "_links": {
            "self": [
                {"href": f"{base_url}/wp-json/wc/v3/products/{product.parent_id}/variations/{product.id}"}
            ],
            "collection": [{"href": f"{base_url}/wp-json/wc/v3/products/{product.parent_id}/variations"}],
            "up": [{"href": f"{base_url}/wp-json/wc/v3/products/{product.parent_id}"}],
        },
    }


def order_json(store: Store, order: Order, base_url: str) -> dict[str, Any]:
    """`GET /orders/{id}`: what an order.created delivery carries."""
    created = _local(order.date_created)
    lines = []
    total = 0.0
    for line in order.lines:
        product = line.product
        price = float(product.price or 0)
        line_total = f"{price * line.quantity:.2f}"
        total += price * line.quantity
        parent = store.products.get(product.parent_id)
        lines.append(
            {
                "id": line.id,
                "name": product.name,
                "product_id": product.parent_id or product.id,
                "variation_id": product.id if product.type == VARIATION else 0,
                "quantity": line.quantity,
                "tax_class": "",
                "subtotal": line_total,
                "subtotal_tax": "0.00",
                "total": line_total,
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [],
                "sku": product.sku,
                "price": price,
                "image": {"id": "", "src": ""},
                "parent_name": parent.name if parent is not None else None,
            }
        )
    address = {
        "first_name": "Sandbox",
        "last_name": "Customer",
        "company": "",
        "address_1": "",
        "address_2": "",
        "city": "",
        "state": "",
        "postcode": "",
        "country": "",
    }
    return {
        "id": order.id,
        "parent_id": 0,
        "status": order.status,
        "currency": "EUR",
        "version": "9.8.0",
        "prices_include_tax": False,
        "date_created": created,
        "date_modified": created,
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": "0.00",
        "shipping_tax": "0.00",
        "cart_tax": "0.00",
        "total": f"{total:.2f}",
        "total_tax": "0.00",
        "customer_id": 0,
        "order_key": order.order_key,
        "billing": {**address, "email": "customer@example.invalid", "phone": ""},
        "shipping": {**address, "phone": ""},
        "payment_method": "bacs",
        "payment_method_title": "Direct bank transfer",
        "transaction_id": "",
        "customer_ip_address": "127.0.0.1",
        "customer_user_agent": "nexus-sandbox",
        "created_via": "checkout",
        "customer_note": "",
        "date_completed": None,
        "date_paid": created,
        "cart_hash": "",
        "number": str(order.id),
        "meta_data": [],
        "line_items": lines,
        "tax_lines": [],
        "shipping_lines": [],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "payment_url": f"{base_url}/checkout/order-pay/{order.id}/?pay_for_order=true&key={order.order_key}",
        "is_editable": False,
        "needs_payment": False,
        "needs_processing": True,
        "date_created_gmt": created,
        "date_modified_gmt": created,
        "date_completed_gmt": None,
        "date_paid_gmt": created,
        "currency_symbol": "€",
        "_links": {
            "self": [{"href": f"{base_url}/wp-json/wc/v3/orders/{order.id}"}],
            "collection": [{"href": f"{base_url}/wp-json/wc/v3/orders"}],
        },
    }
