"""Resolvers that answer the schema subset from the in-memory store.

`bind(schema)` attaches a resolver to every field that is not a plain key of a dict; the
execution context (`info.context`) is the `ShopBackend` of one sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from graphql import GraphQLError, GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema
from graphql.execution.values import get_directive_values

from nexus.sandbox.shopify.store import (
    AdjustmentGroup,
    InventoryChange,
    InventoryItem,
    InventoryLevel,
    Location,
    Product,
    Store,
    Variant,
    encode_cursor,
    gid,
    iso_z,
    level_gid,
    paginate,
    parse_gid_of,
)

Resolver = Callable[..., Any]
Info = GraphQLResolveInfo[Any]


class ShopBackend(Protocol):
    """What the resolvers need from the sandbox."""

    @property
    def store(self) -> Store: ...

    @property
    def shop_domain(self) -> str: ...

    def set_inventory_quantities(self, data: Mapping[str, Any], key: str) -> dict[str, Any]: ...


def _store(info: Info) -> Store:
    backend: ShopBackend = info.context
    return backend.store


def _connection(
    ids: Sequence[int], lookup: Callable[[int], Any], args: Mapping[str, Any], field_name: str
) -> dict[str, Any]:
    try:
        page = paginate(
            ids,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            field_name=field_name,
        )
    except ValueError as exc:
        raise GraphQLError(str(exc), extensions={"code": "BAD_REQUEST"}) from None
    nodes = [lookup(number) for number in page.ids]
    cursors = [encode_cursor(number) for number in page.ids]
    return {
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": page.has_next,
            "hasPreviousPage": page.has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


# --- QueryRoot -------------------------------------------------------------------------------


def _node(_: Any, info: Info, id: str) -> object | None:
    return _store(info).find(id)


def _nodes(_: Any, info: Info, ids: list[str]) -> list[object | None]:
    store = _store(info)
    return [store.find(value) for value in ids]


def _shop(_: Any, info: Info) -> dict[str, str]:
    backend: ShopBackend = info.context
    domain = backend.shop_domain
    return {
        "id": gid("Shop", 1),
        "name": domain.split(".")[0].replace("-", " ").title(),
        "email": f"owner@{domain}",
        "myshopifyDomain": domain,
    }


def _by_gid(kind: str, table: Callable[[Store], Mapping[int, Any]]) -> Resolver:
    def resolve(_: Any, info: Info, id: str) -> Any:
        number = parse_gid_of(id, kind)
        return table(_store(info)).get(number) if number is not None else None

    return resolve


def _products(_: Any, info: Info, **args: Any) -> dict[str, Any]:
    store = _store(info)
    return _connection(store.product_ids, store.products.__getitem__, args, "products")


def _product_variants(_: Any, info: Info, **args: Any) -> dict[str, Any]:
    store = _store(info)
    return _connection(store.variant_ids, store.variants.__getitem__, args, "productVariants")


def _inventory_level(_: Any, info: Info, id: str) -> InventoryLevel | None:
    found = _store(info).find(id)
    return found if isinstance(found, InventoryLevel) else None


def _location(_: Any, info: Info, id: str | None = None) -> Location | None:
    store = _store(info)
    if id is None:
        return store.primary_location
    number = parse_gid_of(id, "Location")
    return store.locations.get(number) if number is not None else None


def _locations(_: Any, info: Info, **args: Any) -> dict[str, Any]:
    store = _store(info)
    ids = sorted(loc.id for loc in store.locations.values() if loc.is_active or args.get("includeInactive"))
    return _connection(ids, store.locations.__getitem__, args, "locations")


# --- objects -----------------------------------------------------------------------------------


def _product_variants_of(product: Product, info: Info, **args: Any) -> dict[str, Any]:
    store = _store(info)
    return _connection(product.variant_ids, store.variants.__getitem__, args, "variants")


def _variant_inventory_quantity(variant: Variant, info: Info) -> int:
    return sum(level.available for level in _store(info).item_levels(variant.inventory_item_id))


def _item_level(item: InventoryItem, info: Info, locationId: str) -> InventoryLevel | None:
    location_id = parse_gid_of(locationId, "Location")
    return _store(info).level(item.id, location_id) if location_id is not None else None


def _item_levels(item: InventoryItem, info: Info, **args: Any) -> dict[str, Any]:
    store = _store(info)
    location_ids = sorted(level.location_id for level in store.item_levels(item.id))
    return _connection(location_ids, lambda loc: store.levels[(item.id, loc)], args, "inventoryLevels")


def _quantities(level: InventoryLevel, _: Info, names: list[str]) -> list[dict[str, Any]]:
    answers = []
    for name in names:
        quantity = level.quantity(name)
        if quantity is None:
            raise GraphQLError(f"The quantity name '{name}' is invalid.", extensions={"code": "BAD_REQUEST"})
        answers.append(
            {
                "id": f"gid://shopify/InventoryQuantity/{level.location_id}"
                f"?inventory_item_id={level.item_id}&name={name}",
                "name": name,
                "quantity": quantity,
                "updatedAt": iso_z(level.updated_at),
            }
        )
    return answers


def _location_level(location: Location, info: Info, inventoryItemId: str) -> InventoryLevel | None:
    item_id = parse_gid_of(inventoryItemId, "InventoryItem")
    return _store(info).level(item_id, location.id) if item_id is not None else None


def _location_levels(location: Location, info: Info, **args: Any) -> dict[str, Any]:
    store = _store(info)
    item_ids = sorted(level.item_id for level in store.location_levels(location.id))
    return _connection(item_ids, lambda item: store.levels[(item, location.id)], args, "inventoryLevels")


def _group_changes(
    group: AdjustmentGroup,
    _: Info,
    inventoryItemIds: list[str] | None = None,
    locationIds: list[str] | None = None,
    quantityNames: list[str] | None = None,
) -> list[InventoryChange]:
    items = {parse_gid_of(v, "InventoryItem") for v in inventoryItemIds} if inventoryItemIds else None
    locations = {parse_gid_of(v, "Location") for v in locationIds} if locationIds else None
    return [
        change
        for change in group.changes
        if (items is None or change.item_id in items)
        and (locations is None or change.location_id in locations)
        and (quantityNames is None or change.name in quantityNames)
    ]


# --- Mutation ----------------------------------------------------------------------------------


def _inventory_set_quantities(_: Any, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    key = _idempotency_key(info)
    for entry in input.get("quantities") or []:
        if "changeFromQuantity" not in entry:
            raise GraphQLError(
                "InventoryQuantityInput must include the following argument: changeFromQuantity.",
                extensions={"code": "INVALID_FIELD_ARGUMENTS"},
            )
    backend: ShopBackend = info.context
    return backend.set_inventory_quantities(input, key)


def _idempotency_key(info: Info) -> str:
    directive = info.schema.get_directive("idempotent")
    assert directive is not None
    values = get_directive_values(directive, info.field_nodes[0], info.variable_values)
    if values is None:
        raise GraphQLError(
            "The @idempotent directive is required for this mutation but was not provided.",
            extensions={"code": "BAD_REQUEST"},
        )
    key = str(values.get("key") or "")
    if not key.strip():
        # Wording unconfirmed; Shopify refuses a blank key.
        raise GraphQLError(
            "The @idempotent directive key must not be blank.", extensions={"code": "BAD_REQUEST"}
        )
    return key


# --- wiring ------------------------------------------------------------------------------------


def _attr(name: str, convert: Callable[[Any], Any] = lambda v: v) -> Resolver:
    def resolve(source: Any, _: Info) -> Any:
        return convert(getattr(source, name))

    return resolve


def _gid_of(kind: str) -> Resolver:
    return lambda source, _info: gid(kind, source.id)


def _legacy(source: Any, _: Info) -> str:
    return str(source.id)


def _time(name: str) -> Resolver:
    return _attr(name, iso_z)


def _const(value: Any) -> Resolver:
    return lambda _source, _info, **_args: value


def _lookup(table: Callable[[Store], Mapping[int, Any]], attr: str) -> Resolver:
    def resolve(source: Any, info: Info) -> Any:
        return table(_store(info)).get(getattr(source, attr))

    return resolve


_RESOLVERS: dict[str, dict[str, Resolver]] = {
    "QueryRoot": {
        "node": _node,
        "nodes": _nodes,
        "shop": _shop,
        "product": _by_gid("Product", lambda s: s.products),
        "products": _products,
        "productVariant": _by_gid("ProductVariant", lambda s: s.variants),
        "productVariants": _product_variants,
        "inventoryItem": _by_gid("InventoryItem", lambda s: s.items),
        "inventoryLevel": _inventory_level,
        "location": _location,
        "locations": _locations,
    },
    "Mutation": {"inventorySetQuantities": _inventory_set_quantities},
    "Location": {
        "id": _gid_of("Location"),
        "legacyResourceId": _legacy,
        "isActive": _attr("is_active"),
        "fulfillsOnlineOrders": _attr("fulfills_online_orders"),
        "createdAt": _time("created_at"),
        "updatedAt": _time("created_at"),
        "inventoryLevel": _location_level,
        "inventoryLevels": _location_levels,
    },
    "Product": {
        "id": _gid_of("Product"),
        "legacyResourceId": _legacy,
        "productType": _attr("product_type"),
        "createdAt": _time("created_at"),
        "updatedAt": _time("updated_at"),
        "totalInventory": lambda product, info: _store(info).total_inventory(product),
        "tracksInventory": _const(True),
        "variants": _product_variants_of,
    },
    "ProductVariant": {
        "id": _gid_of("ProductVariant"),
        "legacyResourceId": _legacy,
        "displayName": lambda v, info: f"{_store(info).products[v.product_id].title} - {v.title}",
        "compareAtPrice": _const(None),
        "inventoryQuantity": _variant_inventory_quantity,
        "inventoryPolicy": _attr("inventory_policy"),
        "inventoryItem": _lookup(lambda s: s.items, "inventory_item_id"),
        "product": _lookup(lambda s: s.products, "product_id"),
        "createdAt": _time("created_at"),
        "updatedAt": _time("updated_at"),
    },
    "InventoryItem": {
        "id": _gid_of("InventoryItem"),
        "legacyResourceId": _legacy,
        "requiresShipping": _const(True),
        "createdAt": _time("created_at"),
        "updatedAt": _time("updated_at"),
        "variant": _lookup(lambda s: s.variants, "variant_id"),
        "inventoryLevel": _item_level,
        "inventoryLevels": _item_levels,
    },
    "InventoryLevel": {
        "id": lambda level, _info: level_gid(level.location_id, level.item_id),
        "canDeactivate": _const(True),
        "createdAt": _time("created_at"),
        "updatedAt": _time("updated_at"),
        "item": _lookup(lambda s: s.items, "item_id"),
        "location": _lookup(lambda s: s.locations, "location_id"),
        "quantities": _quantities,
    },
    "InventoryAdjustmentGroup": {
        "id": _gid_of("InventoryAdjustmentGroup"),
        "createdAt": _time("created_at"),
        "referenceDocumentUri": _attr("reference_document_uri"),
        "changes": _group_changes,
    },
    "InventoryChange": {
        "item": _lookup(lambda s: s.items, "item_id"),
        "location": _lookup(lambda s: s.locations, "location_id"),
        "ledgerDocumentUri": _const(None),
        "quantityAfterChange": _attr("quantity_after_change"),
    },
}

_TYPENAMES: dict[type, str] = {
    Product: "Product",
    Variant: "ProductVariant",
    InventoryItem: "InventoryItem",
    InventoryLevel: "InventoryLevel",
    Location: "Location",
    AdjustmentGroup: "InventoryAdjustmentGroup",
}


def _resolve_node_type(value: Any, _info: Info, _type: Any) -> str | None:
    return _TYPENAMES.get(type(value))


def bind(schema: GraphQLSchema) -> GraphQLSchema:
    """Attach the resolvers to `schema` (in place) and return it."""
    for type_name, fields in _RESOLVERS.items():
        object_type = schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType), type_name
        for field_name, resolver in fields.items():
            object_type.fields[field_name].resolve = resolver
    node = schema.get_type("Node")
    assert node is not None and hasattr(node, "resolve_type")
    node.resolve_type = _resolve_node_type
    return schema
