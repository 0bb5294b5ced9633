"""The Etsy driver: whole-inventory pushes per listing, imports, Standard Webhooks, receipts.

Push semantics: Etsy has no per-product stock call. For each listing in a push the driver GETs
the listing's inventory, changes the stock offering of the targeted products only, and PUTs the
whole inventory back (every other product and offering untouched, prices turned from Money
objects back into floats, property values and the *_on_property arrays kept). The GET doubles
as a compare-and-set read: an update whose `change_from` differs from the level just read is
answered STALE (the channel sold meanwhile) and its product keeps Etsy's quantity. What Etsy
sells between the GET and the PUT is still overwritten: Etsy offers no conditional write.

Listings in one push are handled concurrently (bounded); a failure of one listing's GET or PUT
becomes the result of that listing's updates only. Two pushes to the same listing (different
products, different workers of this process) take turns on a per-listing lock: interleaved, the
second PUT would restore the first one's product from its older GET. Across processes nothing
prevents that: Etsy has no conditional write.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nexus.channels.etsy import webhooks
from nexus.channels.etsy.auth import TokenManager
from nexus.channels.etsy.client import EtsyClient
from nexus.channels.etsy.inventory import (
    ProductRef,
    live_products,
    parse_ref,
    product_keys,
    put_body,
    quantity_of,
    values_key,
)
from nexus.channels.etsy.normalize import product_from_etsy
from nexus.channels.etsy.settings import EtsySettings
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
    TerminalChannelError,
    TransientChannelError,
)
from nexus.ratelimit.config import RateLimitConfig

MAX_PAGE_SIZE = 100  # getListingsByShop: limit 1..100


@dataclass
class _ListingPush:
    """One listing's share of a push: positions in the push and the products they target."""

    listing_id: int
    positions: list[int] = field(default_factory=list)


class EtsyDriver(InventoryDriver):
    name = "etsy"

    def __init__(self, ctx: ChannelContext, settings: EtsySettings | None = None) -> None:
        self.settings = settings or EtsySettings.from_context(ctx)
        s = self.settings
        self.capabilities = DriverCapabilities(
            max_batch_size=s.max_batch_size,
            # Etsy has no conditional write: a sale between our GET and our PUT is written over.
            # Declaring no compare-and-set makes the engine re-assert the level after every sale,
            # which is what converges; the driver still honours `change_from` when it is given.
            compare_and_set=False,
            reads_levels=True,
            # The QPS bucket governs and a round already sends `concurrency` requests side by
            # side; a second round only overlaps one round's claim and record with the other's
            # requests.
            max_in_flight=2,
        )
        self.tokens = TokenManager(
            http=ctx.http,
            token_url=s.token_url,
            client_id=s.keystring,
            refresh_token=s.refresh_token,
            access_token=s.access_token,
            expires_at=s.access_token_expires_at,
        )
        self.client = EtsyClient(
            http=ctx.http,
            base_url=s.base_url,
            api_key=s.api_key,
            tokens=self.tokens,
            per_second=ctx.rate,
            per_day=ctx.limiter("daily", RateLimitConfig.daily(s.requests_per_day)),
            default_retry_after=s.default_retry_after,
            max_throttle_retries=s.max_throttle_retries,
        )

        # Held only while a push works on the listing: entries vanish with their last user.
        self._listing_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def rate_limit_config(self) -> RateLimitConfig:
        """The per-second bucket (`ctx.rate`); the daily one is `ctx.limiter("daily", ...)`."""
        rate = self.settings.requests_per_second
        return RateLimitConfig(capacity=rate, refill_per_second=rate)

    # -- products ---------------------------------------------------------------------------------

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        """Shop listings in each configured state, 100 per page; cursor "state-index:offset"."""
        state_index, offset = _cursor(cursor, len(self.settings.listing_states))
        state = self.settings.listing_states[state_index]
        limit = max(1, min(per_page, MAX_PAGE_SIZE))
        page = await self.client.get(
            f"/v3/application/shops/{self.settings.shop_id}/listings",
            {"state": state, "limit": limit, "offset": offset, "includes": "Inventory"},
        )
        results = page.get("results") if isinstance(page, Mapping) else None
        listings = [r for r in results if isinstance(r, Mapping)] if isinstance(results, list) else []
        items = [await self._product(listing) for listing in listings]
        count = page.get("count") if isinstance(page, Mapping) else None
        after = offset + len(listings)
        if listings and isinstance(count, int) and after < count:
            return Page(items=items, next_cursor=f"{state_index}:{after}")
        if state_index + 1 < len(self.settings.listing_states):
            return Page(items=items, next_cursor=f"{state_index + 1}:0")
        return Page(items=items)

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        if not remote_id.isdigit():
            raise TerminalChannelError(f"not an Etsy listing id: {remote_id!r}")
        listing = await self.client.get(f"/v3/application/listings/{remote_id}", {"includes": "Inventory"})
        if not isinstance(listing, Mapping):
            raise TransientChannelError("Etsy answered a listing request without a listing object")
        return await self._product(listing)

    async def _product(self, listing: Mapping[str, Any]) -> NexusProduct:
        inventory = listing.get("inventory")
        if not isinstance(inventory, Mapping):
            # `includes=Inventory` not honoured for this listing: ask for the inventory itself.
            inventory = await self._inventory(_listing_id(listing))
        try:
            return product_from_etsy(listing, inventory)
        except ValueError as exc:
            raise TerminalChannelError(
                f"Etsy sent a listing Nexus cannot read: {exc}", payload=listing
            ) from exc

    async def _inventory(self, listing_id: int) -> Mapping[str, Any]:
        inventory = await self.client.get(f"/v3/application/listings/{listing_id}/inventory")
        if not isinstance(inventory, Mapping):
            raise TransientChannelError(f"Etsy answered listing {listing_id}'s inventory without an object")
        return inventory

    # -- pushing ----------------------------------------------------------------------------------

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        """One result per update, same order. Channel failures become results, never exceptions."""
        results: dict[int, PushResult] = {}
        groups: dict[int, _ListingPush] = {}
        for position, update in enumerate(updates):
            ref = _ref(update)
            if ref is None:
                results[position] = PushResult.terminal(
                    update.listing_id,
                    "listing has no Etsy product reference (re-import the channel)",
                    detail={"remote_id": update.remote_id},
                )
            elif not 0 <= update.quantity <= self.settings.max_quantity:
                results[position] = PushResult.terminal(
                    update.listing_id,
                    f"Etsy accepts quantities 0..{self.settings.max_quantity}, not {update.quantity}",
                )
            else:
                groups.setdefault(ref.listing_id, _ListingPush(ref.listing_id)).positions.append(position)
        gate = asyncio.Semaphore(self.settings.concurrency)

        async def run(group: _ListingPush) -> dict[int, PushResult]:
            lock = self._listing_locks.setdefault(group.listing_id, asyncio.Lock())
            async with gate, lock:
                return await self._push_listing(group, updates)

        for outcome in await asyncio.gather(*(run(g) for g in groups.values())):
            results.update(outcome)
        return [results[position] for position in range(len(updates))]

    async def _push_listing(
        self, group: _ListingPush, updates: Sequence[NexusInventoryUpdate]
    ) -> dict[int, PushResult]:
        try:
            inventory = await self._inventory(group.listing_id)
        except ChannelError as exc:
            return {p: PushResult.from_error(updates[p].listing_id, exc) for p in group.positions}
        products = live_products(inventory)
        index = _index(group.listing_id, products)
        results: dict[int, PushResult] = {}
        quantities: dict[int, int] = {}  # product index -> quantity to write
        seen: set[int] = set()
        writes: list[int] = []  # positions whose quantity goes into the PUT
        for position in group.positions:
            update = updates[position]
            product = _find(index, update)
            current = quantity_of(products[product]) if product is not None else None
            if product is None or current is None:
                results[position] = PushResult.terminal(
                    update.listing_id,
                    f"Etsy listing {group.listing_id} has no product {update.remote_id} "
                    "(deleted, or its SKU changed)",
                    detail={"remote_id": update.remote_id, "inventory_id": update.inventory_id},
                )
            elif product in seen:
                results[position] = PushResult.terminal(
                    update.listing_id,
                    "the same Etsy product appears twice in one push",
                    detail={"remote_id": update.remote_id},
                )
            elif update.change_from is not None and current != update.change_from:
                seen.add(product)
                results[position] = PushResult.stale(update.listing_id, current)
            else:
                seen.add(product)
                quantities[product] = update.quantity
                writes.append(position)
        if not writes:
            return results
        try:
            body = put_body(inventory, quantities)
        except ValueError as exc:
            error = TerminalChannelError(
                f"Etsy listing {group.listing_id}'s inventory cannot be rewritten: {exc}"
            )
            return {**results, **{p: PushResult.from_error(updates[p].listing_id, error) for p in writes}}
        try:
            answer = await self.client.put(f"/v3/application/listings/{group.listing_id}/inventory", body)
        except ChannelError as exc:
            return {**results, **{p: PushResult.from_error(updates[p].listing_id, exc) for p in writes}}
        after = _index(group.listing_id, live_products(answer)) if isinstance(answer, Mapping) else {}
        answered = live_products(answer) if isinstance(answer, Mapping) else []
        for position in writes:
            update = updates[position]
            found = _find(after, update)
            level = quantity_of(answered[found]) if found is not None else None
            # The PUT answers with the new inventory; without it, what was sent is what Etsy holds.
            results[position] = PushResult.ok(update.listing_id, update.quantity if level is None else level)
        return results

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        """Current quantity per listing id, one inventory GET per Etsy listing."""
        by_listing: dict[int, list[NexusInventoryUpdate]] = {}
        for update in updates:
            ref = _ref(update)
            if ref is not None:
                by_listing.setdefault(ref.listing_id, []).append(update)
        levels: dict[int, int] = {}
        for listing_id, group in by_listing.items():
            products = live_products(await self._inventory(listing_id))
            index = _index(listing_id, products)
            for update in group:
                found = _find(index, update)
                level = quantity_of(products[found]) if found is not None else None
                if level is not None:
                    levels[update.listing_id] = level
        return levels

    # -- webhooks ---------------------------------------------------------------------------------

    async def verify_webhook(self, request: WebhookRequest) -> None:
        webhooks.verify(
            request, self.settings.webhook_secret, tolerance=self.settings.webhook_tolerance_seconds
        )

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        return webhooks.describe(request)

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        """Checks the body only: `order.paid` names a receipt that `resolve_webhook` fetches."""
        webhooks.check(request)
        return []

    async def resolve_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        """The sales of an `order.paid` delivery, from the receipt it points at."""
        webhooks.check(request)
        body = webhooks.body_of(request)
        if webhooks.topic(body) != webhooks.ORDER_PAID:
            return []
        location = webhooks.receipt_location(
            body.get("resource_url"),
            base_url=self.settings.base_url,
            allowed_hosts=self.settings.resource_hosts,
            shop_id=self.settings.shop_id,
        )
        receipt = await self.client.get(location.path)
        if not isinstance(receipt, Mapping):
            raise TransientChannelError(f"Etsy answered receipt {location.receipt_id} without an object")
        return webhooks.receipt_sales(receipt)


def _cursor(cursor: str | None, states: int) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    state, _, offset = cursor.partition(":")
    if not state.isdigit() or not offset.isdigit() or int(state) >= states:
        raise TerminalChannelError(f"not an Etsy listings cursor: {cursor!r}")
    return int(state), int(offset)


def _listing_id(listing: Mapping[str, Any]) -> int:
    listing_id = listing.get("listing_id")
    if isinstance(listing_id, bool) or not isinstance(listing_id, int):
        raise TerminalChannelError("Etsy sent a listing without a listing_id", payload=listing)
    return listing_id


def _ref(update: NexusInventoryUpdate) -> ProductRef | None:
    return parse_ref(update.remote_id) or parse_ref(update.inventory_id)


def _index(listing_id: int, products: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Remote id -> product index, by the product's key and by its property values."""
    index: dict[str, int] = {}
    for position, (product, key) in enumerate(zip(products, product_keys(products), strict=True)):
        index.setdefault(
            ProductRef(listing_id, values_key(product.get("property_values"))).remote_id, position
        )
        index[ProductRef(listing_id, key).remote_id] = position
    return index


def _find(index: Mapping[str, int], update: NexusInventoryUpdate) -> int | None:
    for candidate in (update.remote_id, update.inventory_id):
        if candidate is not None and candidate in index:
            return index[candidate]
    return None
