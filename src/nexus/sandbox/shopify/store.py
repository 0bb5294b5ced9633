"""The in-memory shop: locations, products, variants, inventory items and levels.

Plain dataclasses with integer ids, the way Shopify's database keys them; GIDs are made at the
edge (`gid`). Ids come from separate, far-apart ranges per resource so that a client that mixes
up a variant id and an inventory item id gets "not found" instead of silently hitting the wrong
object. Everything is synchronous: the ASGI handlers run it inside the event loop, so a
mutation is atomic with respect to other requests without any lock.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GID_PREFIX = "gid://shopify/"
_GID_RE = re.compile(r"^gid://shopify/([A-Za-z]+)/(\d+)(?:\?(.*))?$")

# Far-apart id ranges (all below 2**53 so JavaScript clients would not lose precision either).
_ID_BASES = {
    "Location": 74_000_000_000,
    "Product": 8_100_000_000_000,
    "ProductVariant": 44_100_000_000_000,
    "InventoryItem": 46_100_000_000_000,
    "InventoryAdjustmentGroup": 30_100_000_000_000,
    "Order": 5_600_000_000_000,
    "LineItem": 14_100_000_000_000,
}

MAX_PAGE_SIZE = 250


def utc_now() -> datetime:
    """Now, truncated to whole seconds: Shopify timestamps carry no fractions."""
    return datetime.now(UTC).replace(microsecond=0)


def iso_z(moment: datetime) -> str:
    """GraphQL `DateTime` form: "2026-11-21T10:00:00Z"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_offset(moment: datetime) -> str:
    """REST / webhook form, with the shop's UTC offset: "2026-11-21T10:00:00+00:00"."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def gid(kind: str, number: int) -> str:
    return f"{GID_PREFIX}{kind}/{number}"


def level_gid(location_id: int, item_id: int) -> str:
    """InventoryLevel GIDs are keyed by location with the item as a query parameter."""
    return f"{GID_PREFIX}InventoryLevel/{location_id}?inventory_item_id={item_id}"


@dataclass(frozen=True, slots=True)
class ParsedGid:
    kind: str
    number: int
    params: Mapping[str, str]


def parse_gid(value: str) -> ParsedGid | None:
    match = _GID_RE.match(value)
    if match is None:
        return None
    params: dict[str, str] = {}
    if match.group(3):
        for pair in match.group(3).split("&"):
            key, _, val = pair.partition("=")
            params[key] = val
    return ParsedGid(match.group(1), int(match.group(2)), params)


def parse_gid_of(value: str, kind: str) -> int | None:
    parsed = parse_gid(value)
    return parsed.number if parsed is not None and parsed.kind == kind else None


def encode_cursor(number: int) -> str:
    # Shopify cursors are base64 JSON; clients must treat them as opaque, and so do we.
    raw = json.dumps({"last_id": number, "last_value": str(number)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        payload = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return int(payload["last_id"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise ValueError("Invalid cursor for current pagination sort.") from exc


@dataclass(frozen=True, slots=True)
class Page:
    ids: list[int]
    has_next: bool
    has_previous: bool


def paginate(
    ordered_ids: Sequence[int],
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    reverse: bool = False,
    field_name: str = "connection",
) -> Page:
    """Relay pagination over ascending ids. Raises ValueError with Shopify's messages."""
    if first is None and last is None:
        raise ValueError("you must provide one of first or last")
    if first is not None and last is not None:
        raise ValueError("providing both first and last is not supported")
    for label, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            # Wording unconfirmed against a live shop; the 250 ceiling is documented.
            raise ValueError(
                f"Argument '{label}' on Field '{field_name}' has an invalid value ({size}). "
                f"Expected a page size from 0 to {MAX_PAGE_SIZE}."
            )
    ids: Sequence[int] = list(reversed(ordered_ids)) if reverse else ordered_ids
    start, stop = 0, len(ids)
    if after is not None:
        start = _position_after(ids, decode_cursor(after), reverse)
    if before is not None:
        stop = _position_before(ids, decode_cursor(before), reverse)
    window = list(ids[start:stop])
    if first is not None:
        selected = window[:first]
        return Page(selected, has_next=len(window) > first or stop < len(ids), has_previous=start > 0)
    assert last is not None
    selected = window[max(0, len(window) - last) :]
    return Page(selected, has_next=stop < len(ids), has_previous=len(window) > last or start > 0)


def _position_after(ids: Sequence[int], anchor: int, reverse: bool) -> int:
    if not reverse:
        return bisect.bisect_right(ids, anchor)
    return next((i for i, value in enumerate(ids) if value < anchor), len(ids))


def _position_before(ids: Sequence[int], anchor: int, reverse: bool) -> int:
    if not reverse:
        return bisect.bisect_left(ids, anchor)
    return next((i for i, value in enumerate(ids) if value <= anchor), len(ids))


@dataclass(slots=True)
class Location:
    id: int
    name: str
    is_active: bool
    created_at: datetime
    fulfills_online_orders: bool = True


@dataclass(slots=True)
class Product:
    id: int
    title: str
    handle: str
    created_at: datetime
    updated_at: datetime
    status: str = "ACTIVE"
    vendor: str = "Nexus Demo"
    product_type: str = ""
    variant_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Variant:
    id: int
    product_id: int
    inventory_item_id: int
    title: str
    sku: str | None
    barcode: str | None
    price: str
    inventory_policy: str  # the GraphQL enum value: "DENY" or "CONTINUE"
    position: int
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class InventoryItem:
    id: int
    variant_id: int
    sku: str | None
    created_at: datetime
    updated_at: datetime
    tracked: bool = True


@dataclass(slots=True)
class InventoryLevel:
    item_id: int
    location_id: int
    available: int
    created_at: datetime
    updated_at: datetime
    committed: int = 0  # sold but not yet fulfilled: part of on_hand, not of available

    @property
    def on_hand(self) -> int:
        return self.available + self.committed

    def quantity(self, name: str) -> int | None:
        if name == "available":
            return self.available
        if name == "on_hand":
            return self.on_hand
        if name == "committed":
            return self.committed
        if name in ("incoming", "reserved", "damaged", "safety_stock", "quality_control"):
            return 0
        return None


@dataclass(frozen=True, slots=True)
class InventoryChange:
    name: str
    delta: int
    quantity_after_change: int
    item_id: int
    location_id: int


@dataclass(slots=True)
class AdjustmentGroup:
    id: int
    created_at: datetime
    reason: str
    reference_document_uri: str | None
    changes: list[InventoryChange]


class Store:
    """The shop's catalogue and stock. Not thread-safe; used from one event loop."""

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._now = clock
        self._last_moment = datetime.min.replace(tzinfo=UTC)
        self._counters = dict.fromkeys(_ID_BASES, 0)
        self.locations: dict[int, Location] = {}
        self.products: dict[int, Product] = {}
        self.product_ids: list[int] = []  # ascending, for cursor pagination
        self.variants: dict[int, Variant] = {}
        self.variant_ids: list[int] = []
        self.items: dict[int, InventoryItem] = {}
        self.levels: dict[tuple[int, int], InventoryLevel] = {}
        # Recent adjustment groups only (for `node(id:)`): a long benchmark makes millions of changes.
        self.groups: OrderedDict[int, AdjustmentGroup] = OrderedDict()
        self.by_sku: dict[str, int] = {}  # sku -> variant id
        self._handles: set[str] = set()
        self.primary_location = self.add_location("Shop location", active=True)
        # A closed warehouse: a write aimed at it is "not stocked", as on a real shop.
        self.add_location("Old warehouse (closed)", active=False)

    def now(self) -> datetime:
        moment = self._now()
        # Hand out one shared object per second: 100k products then share a few datetimes.
        if moment == self._last_moment:
            return self._last_moment
        self._last_moment = moment
        return moment

    def next_id(self, kind: str) -> int:
        self._counters[kind] += 1
        return _ID_BASES[kind] + self._counters[kind]

    def remember_group(self, group: AdjustmentGroup, keep: int = 2_000) -> None:
        self.groups[group.id] = group
        while len(self.groups) > keep:
            self.groups.popitem(last=False)

    def add_location(self, name: str, *, active: bool) -> Location:
        location = Location(self.next_id("Location"), name, active, self.now())
        self.locations[location.id] = location
        return location

    def add_product(self, title: str, variants: Sequence[Mapping[str, Any]]) -> Product:
        if not variants:
            raise ValueError("a product needs at least one variant")
        skus = [spec.get("sku") for spec in variants]
        for sku in skus:
            if sku is not None and (sku in self.by_sku or skus.count(sku) > 1):
                raise ValueError(f"duplicate SKU {sku!r}")
        now = self.now()
        product = Product(self.next_id("Product"), title, self._unique_handle(title), now, now)
        for position, spec in enumerate(variants, start=1):
            self._add_variant(product, spec, position, now)
        self.products[product.id] = product
        self.product_ids.append(product.id)
        return product

    def _add_variant(self, product: Product, spec: Mapping[str, Any], position: int, now: datetime) -> None:
        policy = str(spec.get("inventory_policy", "deny")).upper()
        if policy not in ("DENY", "CONTINUE"):
            raise ValueError(f"inventory_policy must be 'deny' or 'continue', not {policy.lower()!r}")
        sku = spec.get("sku")
        variant_id = self.next_id("ProductVariant")
        item = InventoryItem(self.next_id("InventoryItem"), variant_id, sku, now, now)
        variant = Variant(
            id=variant_id,
            product_id=product.id,
            inventory_item_id=item.id,
            title=str(spec.get("title", "Default Title")),
            sku=sku,
            barcode=spec.get("barcode"),
            price=sys.intern(f"{float(spec.get('price', 0)):.2f}"),
            inventory_policy=policy,
            position=position,
            created_at=now,
            updated_at=now,
        )
        location_id = self.primary_location.id
        level = InventoryLevel(item.id, location_id, int(spec.get("quantity", 0)), now, now)
        self.items[item.id] = item
        self.variants[variant.id] = variant
        self.variant_ids.append(variant.id)
        self.levels[(item.id, location_id)] = level
        product.variant_ids.append(variant.id)
        if sku is not None:
            self.by_sku[sku] = variant.id

    def _unique_handle(self, title: str) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"
        handle, n = base, 1
        while handle in self._handles:
            handle, n = f"{base}-{n}", n + 1
        self._handles.add(handle)
        return handle

    def variant_by_sku(self, sku: str) -> Variant:
        try:
            return self.variants[self.by_sku[sku]]
        except KeyError:
            raise KeyError(f"no variant with SKU {sku!r}") from None

    def level(self, item_id: int, location_id: int) -> InventoryLevel | None:
        return self.levels.get((item_id, location_id))

    def primary_level(self, variant: Variant) -> InventoryLevel:
        level = self.level(variant.inventory_item_id, self.primary_location.id)
        assert level is not None, "every variant is stocked at the primary location"
        return level

    def item_levels(self, item_id: int) -> list[InventoryLevel]:
        # A shop has a handful of locations, so probing each beats an index per item in memory.
        found = (self.levels.get((item_id, loc)) for loc in self.locations)
        return [level for level in found if level is not None]

    def location_levels(self, location_id: int) -> list[InventoryLevel]:
        return [level for level in self.levels.values() if level.location_id == location_id]

    def total_inventory(self, product: Product) -> int:
        return sum(
            level.available
            for vid in product.variant_ids
            for level in self.item_levels(self.variants[vid].inventory_item_id)
        )

    def find(self, global_id: str) -> object | None:
        """The object behind a GID, or None (what `node`/`nodes` answer for unknown ids)."""
        parsed = parse_gid(global_id)
        if parsed is None:
            return None
        if parsed.kind == "InventoryLevel":
            item = parsed.params.get("inventory_item_id", "")
            return self.level(int(item), parsed.number) if item.isdigit() else None
        tables: dict[str, Mapping[int, object]] = {
            "Product": self.products,
            "ProductVariant": self.variants,
            "InventoryItem": self.items,
            "Location": self.locations,
            "InventoryAdjustmentGroup": self.groups,
        }
        table = tables.get(parsed.kind)
        return table.get(parsed.number) if table is not None else None
