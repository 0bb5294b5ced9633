"""The Shopify driver: inventory pushes through `inventorySetQuantities`, imports, webhooks.

Push semantics (API 2026-04 and later): one request sets up to 250 items at one location, with an
`@idempotent` key and, per item, `changeFromQuantity` (compare-and-set; explicit null opts out).
The mutation is all-or-nothing: one bad item rejects the request. So after a rejection the driver
sorts the items into "at fault" (stale, invalid) and "innocent", and re-sends the innocent ones once,
under a new key, in the same push call. Stale items get the channel's current level, read back.

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
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nexus.channels.shopify import queries, webhooks
from nexus.channels.shopify.client import GraphQLResult, ShopifyGraphQLClient, ShopifyQueryCostError
from nexus.channels.shopify.normalize import numeric_id, product_from_shopify, to_gid
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
from nexus.errors import (
    ChannelError,
    ConfigError,
    QuotaExhausted,
    TerminalChannelError,
    TransientChannelError,
)
from nexus.ratelimit.config import RateLimitConfig

DEFAULT_API_VERSION = "2026-10"
DEFAULT_REASON = "correction"
DEFAULT_MAX_THROTTLE_RETRIES = 5
MAX_BATCH_SIZE = 250

DEFAULT_RATE_LIMIT = RateLimitConfig(
    capacity=2000, refill_per_second=100, cost_per_push=queries.MUTATION_COST
)

# userError codes that blame one quantity (found by its index in `field`): that listing cannot succeed.
# Unknown codes that carry an index are treated the same way.
ITEM_TERMINAL_CODES = frozenset(
    {
        "INVALID_INVENTORY_ITEM",
        "ITEM_NOT_STOCKED_AT_LOCATION",
        "INVALID_QUANTITY_NEGATIVE",
        "INVALID_QUANTITY_TOO_HIGH",
        "INVALID_QUANTITY_TOO_LOW",
        "NON_MUTABLE_INVENTORY_ITEM",
        "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
    }
)
# Codes about the request as a whole (our configuration): every listing in it fails the same way.
_REQUEST_TERMINAL_CODES = frozenset(
    {
        "INVALID_LOCATION",
        "INVALID_NAME",
        "INVALID_REASON",
        "INVALID_REFERENCE_DOCUMENT",
        "COMPARE_QUANTITY_REQUIRED",
    }
)
# Idempotency bookkeeping on Shopify's side: nothing wrong with the items, try again later.
_REQUEST_RETRY_CODES = frozenset(
    {
        "IDEMPOTENCY_CONCURRENT_REQUEST",
        "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
        "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED",
    }
)
_STALE = "CHANGE_FROM_QUANTITY_STALE"


@dataclass(frozen=True, slots=True)
class ShopifySettings:
    """The channel's Shopify settings, checked once when the driver is built."""

    base_url: str
    access_token: str
    webhook_secret: str | None
    api_version: str = DEFAULT_API_VERSION
    location_id: str | None = None
    reason: str = DEFAULT_REASON
    max_throttle_retries: int = DEFAULT_MAX_THROTTLE_RETRIES
    variants_per_product: int = queries.DEFAULT_VARIANTS_PER_PRODUCT
    rate_limit: RateLimitConfig = field(default_factory=lambda: DEFAULT_RATE_LIMIT)

    @classmethod
    def from_context(cls, ctx: ChannelContext) -> ShopifySettings:
        source = f"channel {ctx.name}"
        if not ctx.base_url or not ctx.base_url.startswith(("https://", "http://")):
            # Without a scheme every request would fail as a "connection error" and be retried forever.
            raise ConfigError(
                "the Shopify driver needs the store URL, e.g. https://example.myshopify.com",
                key="base_url",
                source=source,
            )
        token = ctx.credentials.get("access_token")
        if not token:
            raise ConfigError("the Shopify driver needs an access token", key="access_token", source=source)
        settings = ctx.settings
        location = settings.get("location_id")
        try:
            location_id = numeric_id(location) if location not in (None, "") else None
        except ValueError as exc:
            raise ConfigError(
                f"not a Shopify location id: {location!r}", key="location_id", source=source
            ) from exc
        return cls(
            base_url=ctx.base_url,
            access_token=token,
            webhook_secret=ctx.credentials.get("webhook_secret") or None,
            api_version=_text(settings, "api_version", DEFAULT_API_VERSION, source),
            location_id=location_id,
            reason=_text(settings, "reason", DEFAULT_REASON, source),
            max_throttle_retries=_count(
                settings, "max_throttle_retries", DEFAULT_MAX_THROTTLE_RETRIES, source
            ),
            variants_per_product=max(
                1, _count(settings, "variants_per_product", queries.DEFAULT_VARIANTS_PER_PRODUCT, source)
            ),
            rate_limit=RateLimitConfig(
                capacity=_positive(settings, "capacity", DEFAULT_RATE_LIMIT.capacity, source),
                refill_per_second=_positive(
                    settings, "refill_per_second", DEFAULT_RATE_LIMIT.refill_per_second, source
                ),
                cost_per_push=DEFAULT_RATE_LIMIT.cost_per_push,
            ),
        )


def _text(settings: Mapping[str, Any], key: str, default: str, source: str) -> str:
    value = settings.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string", key=key, source=source)
    return value.strip()


def _count(settings: Mapping[str, Any], key: str, default: int, source: str) -> int:
    value = settings.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a whole number", key=key, source=source) from exc
    if number < 0 or isinstance(value, bool):
        raise ConfigError(f"{key} must be a whole number >= 0", key=key, source=source)
    return number


def _positive(settings: Mapping[str, Any], key: str, default: float, source: str) -> float:
    value = settings.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a number", key=key, source=source) from exc
    if number <= 0 or isinstance(value, bool):
        raise ConfigError(f"{key} must be > 0", key=key, source=source)
    return number


@dataclass
class _Outcome:
    """What one mutation round decided; items not mentioned were applied (`ok`) or await a re-send."""

    ok: dict[int, PushResult] = field(default_factory=dict)
    final: dict[int, PushResult] = field(default_factory=dict)
    stale: list[int] = field(default_factory=list)
    innocent: list[int] = field(default_factory=list)


class ShopifyDriver(InventoryDriver):
    name = "shopify"

    def __init__(self, ctx: ChannelContext, settings: ShopifySettings | None = None) -> None:
        self._ctx = ctx
        self.settings = settings or ShopifySettings.from_context(ctx)
        self.capabilities = DriverCapabilities(
            max_batch_size=MAX_BATCH_SIZE,
            compare_and_set=True,
            reads_levels=True,
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
        results: list[PushResult] = []
        job = f"gid://nexus/SyncJob/{uuid.uuid4()}"
        for start in range(0, len(updates), MAX_BATCH_SIZE):
            results.extend(await self._push_chunk(updates[start : start + MAX_BATCH_SIZE], job))
        return results

    async def _push_chunk(self, updates: Sequence[NexusInventoryUpdate], job: str) -> list[PushResult]:
        results: dict[int, PushResult] = {}
        try:
            location = await self.resolve_location_id()
        except ChannelError as exc:
            return [_failure(u, exc) for u in updates]
        items: dict[int, str] = {}  # index -> inventory item GID
        seen: set[str] = set()
        for index, update in enumerate(updates):
            try:
                gid = to_gid("InventoryItem", update.inventory_id)
            except ValueError:
                results[index] = PushResult.terminal(
                    update.listing_id,
                    "listing has no Shopify inventory item id",
                    detail={"inventory_id": update.inventory_id, "remote_id": update.remote_id},
                )
                continue
            if gid in seen:
                results[index] = PushResult.terminal(
                    update.listing_id,
                    "the same inventory item appears twice in one push",
                    detail={"item": gid},
                )
                continue
            seen.add(gid)
            items[index] = gid

        pending = list(items)
        # Round 1 sends everything; round 2 re-sends only items that were rejected for others' faults.
        for round_number in (1, 2):
            if not pending:
                break
            outcome = await self._send(updates, items, pending, location, job)
            results.update(outcome.ok)
            results.update(outcome.final)
            if outcome.stale:
                results.update(await self._stale_results(updates, items, outcome.stale, location))
            pending = outcome.innocent
            if round_number == 2:
                for index in pending:
                    results[index] = PushResult.retry(
                        updates[index].listing_id,
                        "not applied: Shopify rejected the request because of other items in it",
                    )
        return [results[i] for i in range(len(updates))]

    async def _send(
        self,
        updates: Sequence[NexusInventoryUpdate],
        items: Mapping[int, str],
        indexes: Sequence[int],
        location: str,
        job: str,
    ) -> _Outcome:
        location_gid = to_gid("Location", location)
        quantities = [
            {
                "inventoryItemId": items[i],
                "locationId": location_gid,
                "quantity": updates[i].quantity,
                # Always present: from 2026-04 a missing key is an error, null opts out of the check.
                "changeFromQuantity": updates[i].change_from,
            }
            for i in indexes
        ]
        variables = {
            "input": {
                "name": "available",
                "reason": self.settings.reason,
                "referenceDocumentUri": job,
                "quantities": quantities,
            },
            "idempotencyKey": str(uuid.uuid4()),
        }
        outcome = _Outcome()
        try:
            result = await self.client.execute(
                queries.INVENTORY_SET_QUANTITIES,
                variables,
                cost=self.settings.rate_limit.cost_per_push,
                operation_name="NexusInventorySet",
            )
        except ChannelError as exc:
            outcome.final = {i: _failure(updates[i], exc) for i in indexes}
            return outcome

        payload = result.data.get("inventorySetQuantities")
        if not isinstance(payload, Mapping):
            error = TransientChannelError("Shopify answered without an inventorySetQuantities payload")
            outcome.final = {i: _failure(updates[i], error) for i in indexes}
            return outcome
        group = payload.get("inventoryAdjustmentGroup")
        group = group if isinstance(group, Mapping) else None
        user_errors = [e for e in payload.get("userErrors") or [] if isinstance(e, Mapping)]
        if not user_errors:
            if group is None:
                error = TransientChannelError("Shopify reported neither changes nor errors")
                outcome.final = {i: _failure(updates[i], error) for i in indexes}
            else:
                outcome.ok = self._applied(updates, items, indexes, group)
            return outcome
        return await self._rejected(updates, items, indexes, location, group, user_errors)

    def _applied(
        self,
        updates: Sequence[NexusInventoryUpdate],
        items: Mapping[int, str],
        indexes: Sequence[int],
        group: Mapping[str, Any],
    ) -> dict[int, PushResult]:
        created_at = parse_timestamp(group.get("createdAt"))
        after: dict[str, int] = {}
        for change in group.get("changes") or []:
            if not isinstance(change, Mapping) or change.get("name") != "available":
                continue
            item = change.get("item")
            quantity = change.get("quantityAfterChange")
            if isinstance(item, Mapping) and isinstance(item.get("id"), str) and isinstance(quantity, int):
                after[item["id"]] = quantity
        # An unchanged item produces no change entry; its acknowledged quantity is what we asked for.
        return {
            i: PushResult.ok(
                updates[i].listing_id, after.get(items[i], updates[i].quantity), remote_updated_at=created_at
            )
            for i in indexes
        }

    async def _rejected(
        self,
        updates: Sequence[NexusInventoryUpdate],
        items: Mapping[int, str],
        indexes: Sequence[int],
        location: str,
        group: Mapping[str, Any] | None,
        user_errors: list[Mapping[str, Any]],
    ) -> _Outcome:
        outcome = _Outcome()
        codes = {str(e.get("code")) for e in user_errors}
        request_terminal = codes & _REQUEST_TERMINAL_CODES
        if request_terminal:
            if "INVALID_LOCATION" in codes and self.settings.location_id is None:
                self._location_id = None  # a discovered location that vanished: ask again next push
            detail = {"userErrors": [dict(e) for e in user_errors]}
            message = f"Shopify rejected the request: {', '.join(sorted(request_terminal))}"
            outcome.final = {
                i: PushResult.terminal(updates[i].listing_id, message, detail=detail) for i in indexes
            }
            return outcome

        faults: dict[int, Mapping[str, Any]] = {}  # position in `indexes` -> the error blaming it
        stale_positions: set[int] = set()
        unplaced: list[Mapping[str, Any]] = []
        for error in user_errors:
            position = _quantity_index(error.get("field"))
            code = error.get("code")
            if position is None or position >= len(indexes):
                unplaced.append(error)
            elif code == _STALE:
                stale_positions.add(position)
            else:
                faults.setdefault(position, error)

        if any(e.get("code") == _STALE for e in unplaced):
            # A stale error without an index: find the culprits by reading the levels we compared against.
            stale_positions |= await self._find_stale(updates, items, indexes, location)
        retry_codes = {str(e.get("code")) for e in unplaced} & _REQUEST_RETRY_CODES
        unexplained = [
            e for e in unplaced if e.get("code") != _STALE and str(e.get("code")) not in retry_codes
        ]
        if retry_codes or unexplained or (not faults and not stale_positions):
            # Nothing to pin the rejection on: every item not already blamed is retried later.
            detail_errors = retry_codes or {str(e.get("code")) for e in unplaced} or {"unknown"}
            message = f"Shopify rejected the request: {', '.join(sorted(detail_errors))}"
            for position, index in enumerate(indexes):
                if position not in stale_positions and position not in faults:
                    outcome.final[index] = PushResult.retry(updates[index].listing_id, message)
        for position, error in faults.items():
            index, code = indexes[position], str(error.get("code"))
            if code in _REQUEST_RETRY_CODES:
                outcome.final[index] = PushResult.retry(updates[index].listing_id, code)
            else:
                # Known item codes and unknown ones alike: the same item would be refused again.
                outcome.final[index] = PushResult.terminal(
                    updates[index].listing_id, code, detail={"userError": dict(error)}
                )
        outcome.stale = [indexes[p] for p in sorted(stale_positions)]
        if group is not None:
            # Shopify documents the mutation as all-or-nothing; if it ever applies the rest anyway, say so.
            clean = [i for p, i in enumerate(indexes) if p not in faults and p not in stale_positions]
            outcome.ok = self._applied(updates, items, clean, group)
            return outcome
        blamed = set(outcome.final) | set(outcome.stale)
        outcome.innocent = [i for i in indexes if i not in blamed]
        return outcome

    async def _find_stale(
        self,
        updates: Sequence[NexusInventoryUpdate],
        items: Mapping[int, str],
        indexes: Sequence[int],
        location: str,
    ) -> set[int]:
        checked = [p for p, i in enumerate(indexes) if updates[i].change_from is not None]
        if not checked:
            return set()
        try:
            levels = await self._read_levels([items[indexes[p]] for p in checked], location)
        except ChannelError:
            return set()
        stale: set[int] = set()
        for position in checked:
            index = indexes[position]
            level = levels.get(items[index])
            if level is not None and level[0] != updates[index].change_from:
                stale.add(position)
        return stale

    async def _stale_results(
        self,
        updates: Sequence[NexusInventoryUpdate],
        items: Mapping[int, str],
        stale: Sequence[int],
        location: str,
    ) -> dict[int, PushResult]:
        try:
            levels = await self._read_levels([items[i] for i in stale], location)
        except ChannelError as exc:
            return {i: _failure(updates[i], exc, stale=True) for i in stale}
        results: dict[int, PushResult] = {}
        for index in stale:
            level = levels.get(items[index])
            if level is None:
                results[index] = PushResult.retry(
                    updates[index].listing_id, "stale on Shopify, and its current level could not be read"
                )
            else:
                results[index] = PushResult.stale(
                    updates[index].listing_id, level[0], remote_updated_at=level[1]
                )
        return results

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        """Current `available` per listing id, 250 items per query (LevelReader)."""
        location = await self.resolve_location_id()
        gids: dict[str, int] = {}
        for update in updates:
            with contextlib.suppress(ValueError):
                gids[to_gid("InventoryItem", update.inventory_id)] = update.listing_id
        found: dict[int, int] = {}
        items = list(gids)
        for start in range(0, len(items), MAX_BATCH_SIZE):
            levels = await self._read_levels(items[start : start + MAX_BATCH_SIZE], location)
            found.update({gids[gid]: level[0] for gid, level in levels.items() if gid in gids})
        return found

    async def _read_levels(
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


def _quantity_index(field_path: object) -> int | None:
    """["input", "quantities", "3", "changeFromQuantity"] -> 3."""
    if not isinstance(field_path, list) or len(field_path) < 3:
        return None
    if field_path[0] != "input" or field_path[1] != "quantities":
        return None
    position = field_path[2]
    if isinstance(position, int) and not isinstance(position, bool):
        return position
    if isinstance(position, str) and position.isdigit():
        return int(position)
    return None


def _failure(update: NexusInventoryUpdate, error: ChannelError, *, stale: bool = False) -> PushResult:
    prefix = "stale on Shopify; reading its level failed: " if stale else ""
    if isinstance(error, TransientChannelError):
        return PushResult.retry(
            update.listing_id,
            f"{prefix}{error}",
            retry_after=error.retry_after,
            counts_as_attempt=not isinstance(error, QuotaExhausted),
        )
    detail: dict[str, Any] = {"status": error.status} if error.status is not None else {}
    return PushResult.terminal(update.listing_id, f"{prefix}{error}", detail=detail)
