"""Items: search, show with listings, create, set the on-hand count, adjust, the ledger.

Stock changes go through `nexus.product(sku)` (`ProductHandle`), the same write path as the
Python API and webhooks. An adjustment needs an `Idempotency-Key`: it is the ledger movement's
key (namespaced `rest:`), so a repeated request books nothing and answers the movement the first
one booked; the same key on a different change is refused (409 `idempotency_conflict`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from nexus.domain.catalog import ItemSpec
from nexus.domain.vocabulary import MovementReason
from nexus.errors import UnknownSkuError
from nexus.sync.history import MovementView, ledger, list_items, movement_by_key
from nexus.web.api.common import PageParams, recorded, resource_router
from nexus.web.api.schemas import (
    AdjustmentIn,
    ItemCreateIn,
    ItemDetailOut,
    ItemOut,
    MovementOut,
    Page,
    QuantityIn,
    StockChangeOut,
)
from nexus.web.auth import ManageAccess, ViewAccess
from nexus.web.errors import ApiError

if TYPE_CHECKING:
    from nexus.engine import Nexus

KEY_PREFIX = "rest:"
REPLAYED_HEADER = "Idempotent-Replayed"
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a unique string per change; a retry with the same key changes nothing",
    ),
]
OptionalIdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


async def item_detail(nexus: Nexus, sku: str) -> dict[str, Any]:
    handle = nexus.product(sku)
    state = await handle.get()
    if state is None:
        raise UnknownSkuError(f"unknown SKU {sku!r}")
    return {
        "sku": state.sku,
        "title": state.title,
        "barcode": state.barcode,
        "on_hand": state.on_hand,
        "reserved": state.reserved,
        "available": state.available,
        "updated_at": state.updated_at,
        "listings": [
            {
                "channel": listing.channel,
                "listing_id": listing.listing_id,
                "desired": listing.desired,
                "remote": listing.remote,
                "in_sync": listing.in_sync,
                "last_error": listing.last_error,
            }
            for listing in await handle.listings()
        ],
    }


def _answer(movement: MovementView) -> dict[str, Any]:
    return {
        "sku": movement.sku,
        "movement_id": movement.id,
        "delta": movement.delta,
        "previous_on_hand": movement.on_hand_after - movement.delta,
        "on_hand": movement.on_hand_after,
        "reason": movement.reason,
        "reference": movement.reference,
        "created_at": movement.created_at,
    }


async def _book(
    nexus: Nexus,
    sku: str,
    key: str,
    reason: MovementReason,
    reference: str | None,
    *,
    delta: int | None = None,
    quantity: int | None = None,
) -> tuple[MovementView, bool]:
    """Book the change under `key` unless a movement has it already; (the movement, replayed)."""
    stored = KEY_PREFIX + key
    movement = await movement_by_key(nexus.db, stored)
    replayed = movement is not None
    if movement is None:
        handle = nexus.product(sku)
        if delta is not None:
            result = await handle.adjust(delta, reason=reason, reference=reference, idempotency_key=stored)
        else:
            assert quantity is not None
            result = await handle.update_inventory(
                quantity=quantity, reason=reason, reference=reference, idempotency_key=stored
            )
        replayed = not result.applied  # the same key was booked meanwhile, by a concurrent retry
        movement = await movement_by_key(nexus.db, stored)
        if movement is None:  # never: the key was booked, by this request or another one
            raise ApiError(409, "conflict", "the change was not booked; try again")
    same = (
        movement.sku == sku
        and movement.reason == str(reason)
        and (delta is None or movement.delta == delta)
        and (quantity is None or movement.on_hand_after == quantity)
    )
    if not same:
        raise ApiError(
            409,
            "idempotency_conflict",
            "this Idempotency-Key was used for a different stock change",
            {"movement_id": movement.id},
        )
    return movement, replayed


def router(nexus: Nexus) -> APIRouter:
    api = resource_router("items")

    @api.get("/items", response_model=Page[ItemOut], summary="Search items by SKU or title prefix")
    async def search_items(
        principal: ViewAccess,
        page: PageParams,
        q: Annotated[str | None, Query(max_length=255, description="SKU or title prefix")] = None,
    ) -> dict[str, Any]:
        found = await list_items(nexus.db, query=q, limit=page.limit, offset=page.offset)
        return found.as_dict()

    @api.post(
        "/items",
        response_model=ItemDetailOut,
        status_code=201,
        summary="Create an item",
        responses={409: {"description": "the SKU exists (code `exists`)"}},
    )
    async def create_item(principal: ManageAccess, body: ItemCreateIn) -> dict[str, Any]:
        spec = ItemSpec(body.sku, title=body.title, barcode=body.barcode, on_hand=body.on_hand)
        if not await nexus.add_items([spec]):
            raise ApiError(409, "exists", f"SKU {body.sku!r} exists")
        await recorded(nexus, principal, "item.create", body.sku, {"on_hand": body.on_hand})
        return await item_detail(nexus, body.sku)

    @api.get("/items/{sku}", response_model=ItemDetailOut, summary="An item with its listings")
    async def get_item(principal: ViewAccess, sku: str) -> dict[str, Any]:
        return await item_detail(nexus, sku)

    @api.put(
        "/items/{sku}/quantity",
        response_model=StockChangeOut,
        summary="Set the on-hand count (the ledger books the difference)",
    )
    async def set_quantity(
        principal: ManageAccess,
        sku: str,
        body: QuantityIn,
        response: Response,
        key: OptionalIdempotencyKey = None,
    ) -> dict[str, Any]:
        movement, replayed = await _book(
            nexus, sku, key or str(uuid.uuid4()), body.reason, body.reference, quantity=body.on_hand
        )
        if replayed:
            response.headers[REPLAYED_HEADER] = "true"
        await recorded(
            nexus, principal, "item.set_quantity", sku, {"on_hand": body.on_hand, "replayed": replayed}
        )
        return _answer(movement)

    @api.post(
        "/items/{sku}/adjustments",
        response_model=StockChangeOut,
        summary="Add or remove units, once per Idempotency-Key",
        responses={409: {"description": "the key was used for another change (`idempotency_conflict`)"}},
    )
    async def adjust(
        principal: ManageAccess, sku: str, body: AdjustmentIn, key: IdempotencyKey, response: Response
    ) -> dict[str, Any]:
        movement, replayed = await _book(nexus, sku, key, body.reason, body.reference, delta=body.delta)
        if replayed:
            response.headers[REPLAYED_HEADER] = "true"
        await recorded(nexus, principal, "item.adjust", sku, {"delta": body.delta, "replayed": replayed})
        return _answer(movement)

    @api.get("/items/{sku}/ledger", response_model=Page[MovementOut], summary="A SKU's stock movements")
    async def item_ledger(principal: ViewAccess, sku: str, page: PageParams) -> dict[str, Any]:
        return (await ledger(nexus.db, sku, limit=page.limit, offset=page.offset)).as_dict()

    return api
