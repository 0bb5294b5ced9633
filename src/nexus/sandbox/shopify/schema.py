"""A faithful subset of Shopify's Admin GraphQL schema (API version 2026-04 and later).

Every type, field, argument and enum name below exists under the same name in the real Admin
schema; fields the sandbox does not model are simply absent, so a query that asks for them fails
validation here exactly as a query with a typo fails on Shopify. Sources: shopify.dev
admin-graphql reference pages (`inventorySetQuantities`, `InventoryQuantityInput`,
`InventorySetQuantitiesUserErrorCode`, `InventoryChange`, `InventoryLevel`, `ProductVariant`).

Shape decisions worth knowing:
- The root types are named `QueryRoot` and `Mutation`, as in the real schema.
- `InventorySetQuantitiesInput` no longer has `ignoreCompareQuantity` and `InventoryQuantityInput`
  no longer has `compareQuantity` (both removed in 2026-04 in favour of `changeFromQuantity`).
- `changeFromQuantity` is nullable in the schema; that the key must be *present* is checked at
  run time, as Shopify does ("InventoryQuantityInput must include the following argument: ...").
- `@idempotent(key: String!)` is a FIELD directive, not an operation directive; it is optional
  at the schema level and required at run time for the inventory mutations.
"""

from __future__ import annotations

from graphql import GraphQLSchema, build_schema

SCHEMA_SDL = '''
schema {
  query: QueryRoot
  mutation: Mutation
}

"""Makes a mutation safe to retry: the same key returns the original result."""
directive @idempotent(key: String!) on FIELD

"""An ISO-8601 date-time string in UTC, e.g. "2026-11-21T10:00:00Z"."""
scalar DateTime

"""A monetary value string without a currency symbol or code, e.g. "100.57"."""
scalar Money

"""An unsigned 64-bit integer, serialised as a string."""
scalar UnsignedInt64

interface Node {
  id: ID!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

enum ProductStatus {
  ACTIVE
  ARCHIVED
  DRAFT
  UNLISTED
}

enum ProductVariantInventoryPolicy {
  DENY
  CONTINUE
}

enum ProductSortKeys {
  CREATED_AT
  ID
  INVENTORY_TOTAL
  PRODUCT_TYPE
  PUBLISHED_AT
  RELEVANCE
  TITLE
  UPDATED_AT
  VENDOR
}

type Shop implements Node {
  id: ID!
  name: String!
  email: String!
  myshopifyDomain: String!
}

type Location implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  isActive: Boolean!
  fulfillsOnlineOrders: Boolean!
  createdAt: DateTime!
  updatedAt: DateTime!
  inventoryLevel(inventoryItemId: ID!): InventoryLevel
  inventoryLevels(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    query: String
  ): InventoryLevelConnection!
}

type LocationEdge {
  cursor: String!
  node: Location!
}

type LocationConnection {
  edges: [LocationEdge!]!
  nodes: [Location!]!
  pageInfo: PageInfo!
}

type Product implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  title: String!
  handle: String!
  status: ProductStatus!
  vendor: String!
  productType: String!
  createdAt: DateTime!
  updatedAt: DateTime!
  totalInventory: Int!
  tracksInventory: Boolean!
  variants(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): ProductVariantConnection!
}

type ProductEdge {
  cursor: String!
  node: Product!
}

type ProductConnection {
  edges: [ProductEdge!]!
  nodes: [Product!]!
  pageInfo: PageInfo!
}

type ProductVariant implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  title: String!
  displayName: String!
  sku: String
  barcode: String
  price: Money!
  compareAtPrice: Money
  position: Int!
  inventoryQuantity: Int
  inventoryPolicy: ProductVariantInventoryPolicy!
  inventoryItem: InventoryItem!
  product: Product!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type ProductVariantEdge {
  cursor: String!
  node: ProductVariant!
}

type ProductVariantConnection {
  edges: [ProductVariantEdge!]!
  nodes: [ProductVariant!]!
  pageInfo: PageInfo!
}

type InventoryItem implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  sku: String
  tracked: Boolean!
  requiresShipping: Boolean!
  createdAt: DateTime!
  updatedAt: DateTime!
  variant: ProductVariant!
  inventoryLevel(locationId: ID!): InventoryLevel
  inventoryLevels(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    query: String
  ): InventoryLevelConnection!
}

type InventoryQuantity {
  id: ID!
  name: String!
  quantity: Int!
  updatedAt: DateTime
}

type InventoryLevel implements Node {
  id: ID!
  canDeactivate: Boolean!
  createdAt: DateTime!
  updatedAt: DateTime!
  item: InventoryItem!
  location: Location!
  quantities(names: [String!]!): [InventoryQuantity!]!
}

type InventoryLevelEdge {
  cursor: String!
  node: InventoryLevel!
}

type InventoryLevelConnection {
  edges: [InventoryLevelEdge!]!
  nodes: [InventoryLevel!]!
  pageInfo: PageInfo!
}

type InventoryChange {
  delta: Int!
  item: InventoryItem
  ledgerDocumentUri: String
  location: Location
  name: String!
  quantityAfterChange: Int
}

type InventoryAdjustmentGroup implements Node {
  id: ID!
  createdAt: DateTime!
  reason: String!
  referenceDocumentUri: String
  changes(inventoryItemIds: [ID!], locationIds: [ID!], quantityNames: [String!]): [InventoryChange!]!
}

enum InventorySetQuantitiesUserErrorCode {
  CHANGE_FROM_QUANTITY_STALE
  COMPARE_QUANTITY_REQUIRED
  COMPARE_QUANTITY_STALE
  IDEMPOTENCY_CONCURRENT_REQUEST
  IDEMPOTENCY_KEY_PARAMETER_MISMATCH
  INVALID_INVENTORY_ITEM
  INVALID_LOCATION
  INVALID_NAME
  INVALID_QUANTITY_NEGATIVE
  INVALID_QUANTITY_TOO_HIGH
  INVALID_QUANTITY_TOO_LOW
  INVALID_REASON
  INVALID_REFERENCE_DOCUMENT
  ITEM_NOT_STOCKED_AT_LOCATION
  NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR
  NON_MUTABLE_INVENTORY_ITEM
}

type InventorySetQuantitiesUserError {
  code: InventorySetQuantitiesUserErrorCode
  field: [String!]
  message: String!
}

type InventorySetQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup
  userErrors: [InventorySetQuantitiesUserError!]!
}

input InventoryQuantityInput {
  inventoryItemId: ID!
  locationId: ID!
  quantity: Int!
  changeFromQuantity: Int
}

input InventorySetQuantitiesInput {
  name: String!
  reason: String!
  referenceDocumentUri: String
  quantities: [InventoryQuantityInput!]!
}

type QueryRoot {
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  shop: Shop!
  product(id: ID!): Product
  products(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: ProductSortKeys = ID
    query: String
  ): ProductConnection!
  productVariant(id: ID!): ProductVariant
  productVariants(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    query: String
  ): ProductVariantConnection!
  inventoryItem(id: ID!): InventoryItem
  inventoryLevel(id: ID!): InventoryLevel
  location(id: ID): Location
  locations(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    query: String
    includeInactive: Boolean = false
    includeLegacy: Boolean = false
  ): LocationConnection!
}

type Mutation {
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
}
'''


def build_admin_schema() -> GraphQLSchema:
    """The executable schema, without resolvers (see `resolvers.bind`)."""
    return build_schema(SCHEMA_SDL)
