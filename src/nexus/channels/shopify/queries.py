"""The GraphQL documents the driver sends, and what each is expected to cost.

These are the only operations the driver uses (the sandbox implements exactly these). Costs follow
Shopify's documented calculation: scalars and enums 0, an object 1, a connection 2 plus `first`
times the cost of one node (`pageInfo` is part of the connection's 2), a mutation 10.

Shopify refuses any single query whose requested cost is over 1000 points (MAX_COST_EXCEEDED), on
every plan, and a query requesting more than the store's whole bucket (`maximumAvailable`) can
never run. The estimates here are computed from the documents below, independently of what
Shopify answers, so the driver can size a page before sending it.
"""

from __future__ import annotations

MAX_QUERY_COST = 1000
MUTATION_COST = 10

# The key is a variable so a THROTTLED retry re-sends byte-identical variables, same key included.
INVENTORY_SET_QUANTITIES = """
mutation NexusInventorySet($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup {
      createdAt
      reason
      referenceDocumentUri
      changes {
        name
        delta
        quantityAfterChange
        item {
          id
        }
      }
    }
    userErrors {
      code
      field
      message
    }
  }
}
""".strip()

INVENTORY_LEVELS = """
query NexusInventoryLevels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) {
        quantities(names: ["available"]) {
          name
          quantity
        }
        updatedAt
      }
    }
  }
}
""".strip()

LOCATIONS = """
query NexusLocations($first: Int!) {
  locations(first: $first) {
    nodes {
      id
      name
      isActive
    }
  }
}
""".strip()

# The variant fields every query reads, so every page normalises the same shape.
_VARIANT_NODES = """\
      nodes {
        id
        sku
        barcode
        title
        price
        inventoryQuantity
        inventoryPolicy
        inventoryItem {
          id
          tracked
        }
      }
"""

# Shared by list and fetch so both normalise the same shape.
_PRODUCT_FIELDS = """
    id
    title
    handle
    status
    variants(first: %(variants)d) {
      pageInfo {
        hasNextPage
        endCursor
      }
%(nodes)s    }
"""

DEFAULT_VARIANTS_PER_PRODUCT = 100
MAX_PAGE_SIZE = 250
# One variant node: itself (1) and its inventoryItem (1); every other selected field is a scalar.
VARIANT_COST = 2


def _product_fields(variants_per_product: int) -> str:
    return _PRODUCT_FIELDS % {"variants": variants_per_product, "nodes": _VARIANT_NODES}


def products_query(variants_per_product: int) -> str:
    return (
        "query NexusProducts($first: Int!, $after: String) {\n"
        "  products(first: $first, after: $after) {\n"
        "    pageInfo {\n      hasNextPage\n      endCursor\n    }\n"
        "    nodes {" + _product_fields(variants_per_product) + "    }\n"
        "  }\n"
        "}"
    )


def product_query(variants_per_product: int) -> str:
    return (
        "query NexusProduct($id: ID!) {\n"
        "  product(id: $id) {" + _product_fields(variants_per_product) + "  }\n"
        "}"
    )


# The rest of a product's variants when its first page said hasNextPage.
PRODUCT_VARIANTS = (
    """
query NexusProductVariants($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    variants(first: $first, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
%(nodes)s    }
  }
}
""".strip()
    % {"nodes": _VARIANT_NODES}
)


def product_cost(variants_per_product: int) -> int:
    """One product: itself (1) + its variants connection (2 + n variants)."""
    return 1 + 2 + variants_per_product * VARIANT_COST


def products_page_cost(first: int, variants_per_product: int) -> int:
    """The products connection (2) + `first` products."""
    return 2 + first * product_cost(variants_per_product)


def product_variants_cost(first: int) -> int:
    """NexusProductVariants: the product (1) + one page of its variants (2 + n variants)."""
    return product_cost(first)


def query_budget(bucket_size: float | None) -> int:
    """The most points one query may request: Shopify's single-query cap, or the whole bucket
    when the store's bucket is smaller (such a query would be THROTTLED for ever)."""
    if bucket_size is None:
        return MAX_QUERY_COST
    return max(0, min(MAX_QUERY_COST, int(bucket_size)))


def products_page_shape(per_page: int, variants_per_product: int, budget: int) -> tuple[int, int]:
    """(`first`, variants per product) of the largest products page whose cost fits `budget`.

    Products per page give way before variants per product: a product whose variants do not all
    fit in the listing has to be completed with further queries, one product at a time. Only when
    a single product with all its requested variants is over the budget do the variants shrink.
    Returns (1, 1) even when that does not fit: nothing smaller can be asked.
    """
    variants = max(1, min(MAX_PAGE_SIZE, variants_per_product))
    first = max(1, min(MAX_PAGE_SIZE, per_page, (budget - 2) // product_cost(variants)))
    if products_page_cost(first, variants) > budget:
        variants = max(1, (budget - 2 - product_cost(0)) // VARIANT_COST)
    return first, variants


def variants_page_size(limit: int, budget: int) -> int:
    """The most variants (at most `limit`) one product query (NexusProduct, NexusProductVariants)
    can ask for within `budget`; at least 1."""
    fits = (budget - product_cost(0)) // VARIANT_COST
    return max(1, min(MAX_PAGE_SIZE, limit, fits))


def inventory_levels_cost(count: int) -> int:
    """`nodes(ids:)` is a list: per id, the InventoryItem (1) + its inventoryLevel (1) + one
    quantity (the `names` list has one element)."""
    return count * 3


def max_levels_per_query(budget: int) -> int:
    return max(1, budget // inventory_levels_cost(1))


LOCATIONS_COST = 2 + 1
