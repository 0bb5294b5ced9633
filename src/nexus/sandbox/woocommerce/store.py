"""The in-memory shop: products, variations and orders with WooCommerce's id and stock rules.

Products and variations share one id space (WordPress posts), as on a real store; orders and
order line items have their own counters. Timestamps are whole seconds in GMT, as WooCommerce
stores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

SIMPLE = "simple"
VARIABLE = "variable"
VARIATION = "variation"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Product:
    """A product post: simple, variable (a parent) or variation (a child of a variable product)."""

    id: int
    type: str
    name: str
    sku: str = ""
    price: str = ""
    global_unique_id: str = ""
    manage_stock: bool = False
    stock_quantity: int | None = None
    backorders: str = "no"  # no | notify | yes
    parent_id: int = 0
    attributes: list[dict[str, object]] = field(default_factory=list)  # variation: [{"name", "option"}]
    children: list[int] = field(default_factory=list)  # variable: variation ids
    date_created: datetime = field(default_factory=utc_now)
    date_modified: datetime = field(default_factory=utc_now)

    @property
    def stock_status(self) -> str:
        if not self.manage_stock or self.stock_quantity is None or self.stock_quantity > 0:
            return "instock"
        return "outofstock" if self.backorders == "no" else "onbackorder"


@dataclass
class LineItem:
    id: int
    product: Product
    quantity: int


@dataclass
class Order:
    id: int
    status: str
    lines: list[LineItem]
    date_created: datetime
    order_key: str


class Store:
    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.now = clock
        self.products: dict[int, Product] = {}
        self.by_sku: dict[str, int] = {}
        self.orders: dict[int, Order] = {}
        self._next_post_id = 10
        self._next_line_id = 1

    def next_post_id(self) -> int:
        self._next_post_id += 1
        return self._next_post_id

    def next_line_id(self) -> int:
        self._next_line_id += 1
        return self._next_line_id

    def add(self, product: Product) -> Product:
        if product.sku:
            if product.sku in self.by_sku:
                # WooCommerce refuses a duplicate SKU (product_invalid_sku).
                raise ValueError(f"SKU {product.sku!r} is already used by product {self.by_sku[product.sku]}")
            self.by_sku[product.sku] = product.id
        self.products[product.id] = product
        if product.parent_id:
            self.products[product.parent_id].children.append(product.id)
        return product

    def by_sku_or_raise(self, sku: str) -> Product:
        """KeyError for an unknown SKU."""
        return self.products[self.by_sku[sku]]

    def listed(self) -> list[Product]:
        """What `GET /products` lists: everything but variations (they live under their parent)."""
        return [p for p in self.products.values() if p.type != VARIATION]

    def delete(self, product_id: int) -> None:
        product = self.products.pop(product_id)
        if product.sku:
            self.by_sku.pop(product.sku, None)
        for child in list(product.children):
            self.delete(child)
        parent = self.products.get(product.parent_id)
        if parent is not None:
            parent.children.remove(product_id)

    def touch(self, product: Product) -> None:
        product.date_modified = self.now()
