"""The Shopify driver: imports, level reads, webhooks, and pushes through `push.py`.

Pushes follow `push.py` (inventorySetQuantities, split and retried after a rejection).

Query cost: Shopify refuses any query whose calculated cost is over 1000 points (MAX_COST_EXCEEDED,
on every plan), and a query asking for more than the store's whole bucket is THROTTLED for ever.
So every read is sized from its calculated cost (queries.py: a connection costs 2 + `first` times
one node, an object 1, as Shopify counts) to at most `query_budget()`: min(1000, the bucket's
`maximumAvailable` from the last throttleStatus, until then the channel's configured capacity).
A products page takes as many products as fit with `variants_per_product` variants each; when not
even one product fits, fewer variants are asked and a product's remaining variants are read with
NexusProductVariants queries under the same budget. If Shopify still refuses a query for its cost,
the driver learns the limit from the refusal, halves the page and asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from nexus.channels.shopify import queries, webhooks
from nexus.channels.shopify.client import GraphQLResult, ShopifyGraphQLClient, ShopifyQueryCostError
from nexus.channels.shopify.normalize import numeric_id, product_from_shopify, to_gid
from nexus.channels.shopify.push import MAX_BATCH_SIZE, InventorySetPush
from nexus.channels.shopify.settings import ShopifySettings
from nexus.channels.wire import parse_timestamp
from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, Page, PushResult
from nexus.errors import TerminalChannelError, TransientChannelError
from nexus.ratelimit.config import RateLimitConfig

READ_BATCH_SIZE = 250  # inventory items per levels query (the query budget may allow fewer)


class ShopifyDriver(InventoryDriver):
    name = "shopify"

    def __init__(self, ctx: ChannelContext, settings: ShopifySettings | None = None) -> None:
        self._ctx = ctx
        self.settings = settings or ShopifySettings.from_context(ctx)
        self.capabilities = DriverCapabilities(
            max_batch_size=MAX_BATCH_SIZE,
            compare_and_set=True,
            reads_levels=True,
            read_batch_size=READ_BATCH_SIZE,
            # The cost bucket governs, not a connection count: Shopify takes concurrent requests
            # and charges each its cost. A round's own work is ~40 ms and its round trip 100-300
            # ms, so eight rounds of 250 keep the bucket busy across the network (measured at
            # 150 ms: 8 in flight 1.42x the limit-allowed minimum, 4 in flight 1.66x, 1 4.45x).
            max_in_flight=8,
        )
        self.client = ShopifyGraphQLClient(
            http=ctx.http,
            rate=ctx.rate,
            base_url=self.settings.base_url,
            access_token=self.settings.access_token,
            api_version=self.settings.api_version,
            max_throttle_retries=self.settings.max_throttle_retries,
        )
        self._location_id = self.settings.location_id
        self._location_lock = asyncio.Lock()
        self._learnt_budget = queries.MAX_QUERY_COST
        self._push = InventorySetPush(self)

    def rate_limit_config(self) -> RateLimitConfig:
        return self.settings.rate_limit

    # -- location ---------------------------------------------------------------------------------

    @property
    def location_id(self) -> str | None:
        """The numeric location id, once configured or discovered."""
        return self._location_id

    async def resolve_location_id(self) -> str:
        """The configured location, else the store's first location (asked once, then cached)."""
        if self._location_id is not None:
            return self._location_id
        async with self._location_lock:
            if self._location_id is None:
                result = await self.client.execute(
                    queries.LOCATIONS,
                    {"first": 1},
                    cost=queries.LOCATIONS_COST,
                    operation_name="NexusLocations",
                )
                locations = result.data.get("locations")
                nodes = locations.get("nodes") if isinstance(locations, Mapping) else None
                first = nodes[0] if isinstance(nodes, list) and nodes else None
                try:
                    self._location_id = numeric_id(first.get("id") if isinstance(first, Mapping) else None)
                except ValueError as exc:
                    raise TerminalChannelError(
                        "the Shopify store has no location to stock inventory at"
                    ) from exc
            return self._location_id

    def forget_location(self) -> None:
        """A discovered location vanished: ask for the store's first location again next time."""
        if self.settings.location_id is None:
            self._location_id = None

    # -- products ---------------------------------------------------------------------------------

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        """One page of products, sized so that its requested cost fits `query_budget()`.

        `per_page` and `variants_per_product` are upper bounds. A product with more variants than
        the page asked for is completed with NexusProductVariants queries (same budget).
        """
        result, _ = await self._sized_query(
            (max(1, per_page), self.settings.variants_per_product),
            queries.products_page_shape,
            lambda first, variants: (
                queries.products_query(variants),
                {"first": first, "after": cursor},
                queries.products_page_cost(first, variants),
                "NexusProducts",
            ),
        )
        connection = result.data.get("products")
        if not isinstance(connection, Mapping):
            raise TransientChannelError("Shopify products answer has no products connection")
        nodes = connection.get("nodes")
        items: list[NexusProduct] = []
        for node in nodes if isinstance(nodes, list) else []:
            if not isinstance(node, Mapping):
                continue
            complete = await self._with_all_variants(node)
            if complete is not None:
                items.append(_product(complete))
        return Page(items=items, next_cursor=_next_cursor(connection))

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        try:
            gid = to_gid("Product", remote_id)
        except ValueError as exc:
            raise TerminalChannelError(f"not a Shopify product id: {remote_id!r}") from exc
        result, _ = await self._sized_query(
            (1, self.settings.variants_per_product),
            _one_product_shape,
            lambda _, variants: (
                queries.product_query(variants),
                {"id": gid},
                queries.product_cost(variants),
                "NexusProduct",
            ),
        )
        node = result.data.get("product")
        complete = await self._with_all_variants(node) if isinstance(node, Mapping) else None
        if complete is None:
            raise TerminalChannelError(f"Shopify product {remote_id} not found", status=404)
        return _product(complete)

    def query_budget(self) -> int:
        """The most points one query may request: Shopify's single-query cap (1000), the store's
        bucket (`maximumAvailable` from the last throttleStatus; until one came back, the
        channel's configured `rate_limit.capacity`), and less if a refused query showed that
        Shopify counts more than our estimate."""
        bucket = self.client.maximum_available
        if bucket is None:
            # The engine's limiter carries the channel's rate_limit override; other limiters may not.
            configured = getattr(self._ctx.rate, "limit", None)
            limit = configured if isinstance(configured, RateLimitConfig) else self.settings.rate_limit
            bucket = limit.capacity
        return min(queries.query_budget(bucket), self._learnt_budget)

    async def _sized_query(
        self,
        shape: tuple[int, int],
        fit: Callable[[int, int, int], tuple[int, int]],
        build: Callable[[int, int], tuple[str, dict[str, Any], int, str]],
    ) -> tuple[GraphQLResult, tuple[int, int]]:
        """Send the query `build(first, variants)` at the largest shape within `shape` that `fit`
        says costs at most `query_budget()`; the answer and the shape that was sent.

        When Shopify still refuses it for its cost, learn from the refusal and try again smaller:
        the shape shrinks on every round, so this ends."""
        first, variants = shape
        while True:
            first, variants = fit(first, variants, self.query_budget())
            query, variables, cost, operation = build(first, variants)
            try:
                result = await self.client.execute(query, variables, cost=cost, operation_name=operation)
                return result, (first, variants)
            except ShopifyQueryCostError as exc:
                self._learn_budget(exc, cost)
                smaller = fit(first, variants, self.query_budget())
                if smaller != (first, variants):
                    first, variants = smaller
                elif first > 1:
                    first //= 2
                elif variants > 1:
                    variants //= 2
                else:
                    raise

    def _learn_budget(self, refusal: ShopifyQueryCostError, estimated: int) -> None:
        if refusal.limit is None or not refusal.requested or refusal.requested <= estimated:
            return
        # Shopify counted more than we did: scale our budget so our estimate lands under its limit.
        scaled = int(refusal.limit * estimated / refusal.requested)
        self._learnt_budget = min(self._learnt_budget, scaled)

    async def _with_all_variants(self, node: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """`node` with every variant: the first page came with the product, the rest are asked
        for here. None when the product was deleted in between."""
        connection = node.get("variants")
        if not isinstance(connection, Mapping):
            return node
        after = _next_cursor(connection)
        product_id = node.get("id")
        if after is None or not isinstance(product_id, str):
            return node
        variants = [v for v in connection.get("nodes") or [] if isinstance(v, Mapping)]
        while after is not None:
            page = await self._variants_page(product_id, after)
            if page is None:
                return None
            variants.extend(v for v in page.get("nodes") or [] if isinstance(v, Mapping))
            after = _next_cursor(page)
        return {**node, "variants": {"nodes": variants}}

    async def _variants_page(self, product_gid: str, after: str) -> Mapping[str, Any] | None:
        result, _ = await self._sized_query(
            (1, queries.MAX_PAGE_SIZE),
            _one_product_shape,
            lambda _, size: (
                queries.PRODUCT_VARIANTS,
                {"id": product_gid, "first": size, "after": after},
                queries.product_variants_cost(size),
                "NexusProductVariants",
            ),
        )
        product = result.data.get("product")
        page = product.get("variants") if isinstance(product, Mapping) else None
        return page if isinstance(page, Mapping) else None

    # -- pushing ----------------------------------------------------------------------------------

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        """One result per update, same order. Channel failures become results, never exceptions."""
        return await self._push.push(updates)

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        """Current `available` per listing id, up to READ_BATCH_SIZE items per query."""
        location = await self.resolve_location_id()
        gids: dict[str, int] = {}
        for update in updates:
            with contextlib.suppress(ValueError):
                gids[to_gid("InventoryItem", update.inventory_id)] = update.listing_id
        found: dict[int, int] = {}
        items = list(gids)
        for start in range(0, len(items), MAX_BATCH_SIZE):
            levels = await self.levels_at(items[start : start + MAX_BATCH_SIZE], location)
            found.update({gids[gid]: level[0] for gid, level in levels.items() if gid in gids})
        return found

    async def levels_at(
        self, item_gids: Sequence[str], location: str
    ) -> dict[str, tuple[int, datetime | None]]:
        """Current `available` and its timestamp per inventory item GID, at the channel's location.

        As many items per query as the query budget allows (a small bucket cannot hold 250)."""
        levels: dict[str, tuple[int, datetime | None]] = {}
        pending = list(item_gids)
        location_gid = to_gid("Location", location)
        while pending:
            found, sent = await self._levels_chunk(pending, location_gid)
            levels.update(found)
            pending = pending[sent:]
        return levels

    async def _levels_chunk(
        self, item_gids: Sequence[str], location_gid: str
    ) -> tuple[dict[str, tuple[int, datetime | None]], int]:
        """The levels of the first items of `item_gids` that fit one query, and how many were sent."""
        result, (sent, _) = await self._sized_query(
            (len(item_gids), 1),
            _levels_shape,
            lambda count, _: (
                queries.INVENTORY_LEVELS,
                {"ids": list(item_gids[:count]), "locationId": location_gid},
                queries.inventory_levels_cost(count),
                "NexusInventoryLevels",
            ),
        )
        return _levels_of(result.data.get("nodes")), sent

    # -- webhooks ---------------------------------------------------------------------------------

    async def verify_webhook(self, request: WebhookRequest) -> None:
        webhooks.verify(request, self.settings.webhook_secret)

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        return webhooks.describe(request)

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        # Before the location is known (not configured, not yet discovered) levels cannot be filtered.
        return webhooks.parse(request, location_id=self._location_id)


def _levels_shape(count: int, _: int, budget: int) -> tuple[int, int]:
    return max(1, min(count, MAX_BATCH_SIZE, queries.max_levels_per_query(budget))), 1


def _levels_of(nodes: object) -> dict[str, tuple[int, datetime | None]]:
    levels: dict[str, tuple[int, datetime | None]] = {}
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            continue
        level = node.get("inventoryLevel")
        if not isinstance(level, Mapping):
            continue
        for quantity in level.get("quantities") or []:
            if (
                isinstance(quantity, Mapping)
                and quantity.get("name") == "available"
                and isinstance(quantity.get("quantity"), int)
            ):
                levels[node["id"]] = (quantity["quantity"], parse_timestamp(level.get("updatedAt")))
    return levels


def _one_product_shape(_: int, variants: int, budget: int) -> tuple[int, int]:
    return 1, queries.variants_page_size(variants, budget)


def _next_cursor(connection: Mapping[str, Any]) -> str | None:
    page_info = connection.get("pageInfo")
    if not isinstance(page_info, Mapping) or page_info.get("hasNextPage") is not True:
        return None
    end_cursor = page_info.get("endCursor")
    return end_cursor if isinstance(end_cursor, str) else None


def _product(node: Mapping[str, Any]) -> NexusProduct:
    try:
        return product_from_shopify(node)
    except ValueError as exc:
        raise TerminalChannelError(f"Shopify sent a product Nexus cannot read: {exc}", payload=node) from exc
