"""The GraphQL documents the driver sends, and what each is expected to cost.

These are the only operations the driver uses (the sandbox implements exactly these). Costs follow
Shopify's documented calculation: scalars and enums 0, an object 1, a connection 2 plus `first`
times the cost of one node, a mutation 10. A single query may request at most 1000 points.
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

# Shared by list and fetch so both normalise the same shape.
_PRODUCT_FIELDS = """
    id
    title
    handle
    status
    variants(first: %(variants)d) {
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
    }
"""

DEFAULT_VARIANTS_PER_PRODUCT = 100
MAX_PAGE_SIZE = 250


def products_query(variants_per_product: int) -> str:
    return (
        "query NexusProducts($first: Int!, $after: String) {\n"
        "  products(first: $first, after: $after) {\n"
        "    pageInfo {\n      hasNextPage\n      endCursor\n    }\n"
        "    nodes {" + _PRODUCT_FIELDS % {"variants": variants_per_product} + "    }\n"
        "  }\n"
        "}"
    )


def product_query(variants_per_product: int) -> str:
    return (
        "query NexusProduct($id: ID!) {\n"
        "  product(id: $id) {" + _PRODUCT_FIELDS % {"variants": variants_per_product} + "  }\n"
        "}"
    )


def product_cost(variants_per_product: int) -> int:
    """One product node: itself (1) + its variants connection (2 + n * (variant 1 + inventoryItem 1))."""
    return 1 + 2 + variants_per_product * 2


def products_page_cost(first: int, variants_per_product: int) -> int:
    # pageInfo is an object (1) beside the nodes.
    return 2 + 1 + first * product_cost(variants_per_product)


def max_products_per_page(variants_per_product: int) -> int:
    """The largest `first` whose requested cost stays within Shopify's single-query limit."""
    fits = (MAX_QUERY_COST - 3) // product_cost(variants_per_product)
    return max(1, min(MAX_PAGE_SIZE, fits))


def inventory_levels_cost(count: int) -> int:
    # Each node: the item (1) + its inventoryLevel (1); the quantities list adds at most 1 more.
    return 1 + count * 3


LOCATIONS_COST = 2 + 1
