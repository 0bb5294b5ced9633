"""Shopify's push protocol: `inventorySetQuantities`, split and retried.

One request sets up to 250 items at one location, with an `@idempotent` key and, per item,
`changeFromQuantity` (compare-and-set; explicit null opts out). The mutation is all-or-nothing:
one bad item rejects the request. So after a rejection the items are sorted into "at fault"
(stale, invalid) and "innocent", and the innocent ones are re-sent once, under a new key, in the
same push call. Stale items get the channel's current level, read back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nexus.channels.shopify import queries
from nexus.channels.shopify.client import GraphQLResult
from nexus.channels.shopify.normalize import to_gid
from nexus.channels.wire import parse_timestamp
from nexus.drivers.dto import NexusInventoryUpdate, PushResult
from nexus.errors import ChannelError, QuotaExhausted, TransientChannelError

if TYPE_CHECKING:
    from nexus.channels.shopify.driver import ShopifyDriver

MAX_BATCH_SIZE = 250  # items per inventorySetQuantities request
# A lost answer is asked again this many times (same idempotency key), after 0.25 s, 0.5 s, ...
LOST_ANSWER_RETRIES = 3
LOST_ANSWER_BACKOFF = 0.25

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


@dataclass
class _Outcome:
    """What one mutation round decided; items not mentioned were applied (`ok`) or await a re-send."""

    ok: dict[int, PushResult] = field(default_factory=dict)
    final: dict[int, PushResult] = field(default_factory=dict)
    stale: list[int] = field(default_factory=list)
    innocent: list[int] = field(default_factory=list)


class InventorySetPush:
    """The push protocol of one Shopify driver (its client, settings, location and level reads)."""

    def __init__(self, driver: ShopifyDriver) -> None:
        self._driver = driver

    async def push(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        """One result per update, same order. Channel failures become results, never exceptions."""
        results: list[PushResult] = []
        job = f"gid://nexus/SyncJob/{uuid.uuid4()}"
        for start in range(0, len(updates), MAX_BATCH_SIZE):
            results.extend(await self._push_chunk(updates[start : start + MAX_BATCH_SIZE], job))
        return results

    async def _push_chunk(self, updates: Sequence[NexusInventoryUpdate], job: str) -> list[PushResult]:
        results: dict[int, PushResult] = {}
        try:
            location = await self._driver.resolve_location_id()
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
                "reason": self._driver.settings.reason,
                "referenceDocumentUri": job,
                "quantities": quantities,
            },
            "idempotencyKey": str(uuid.uuid4()),
        }
        outcome = _Outcome()
        try:
            result = await self._execute_idempotently(variables)
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

    async def _execute_idempotently(self, variables: Mapping[str, Any]) -> GraphQLResult:
        """Send the mutation; when its answer is lost (a 5xx, a timeout, a dropped connection)
        send the very same request again, same idempotency key: Shopify answers a key it has
        applied with the original result instead of applying it twice, so the answer tells
        whether the first one landed. Without it, a compare-and-set retried from the old level
        is refused by our own push, which would be booked as a sale."""
        attempt = 0
        while True:
            try:
                return await self._driver.client.execute(
                    queries.INVENTORY_SET_QUANTITIES,
                    variables,
                    cost=self._driver.settings.rate_limit.cost_per_push,
                    operation_name="NexusInventorySet",
                )
            except TransientChannelError as exc:
                throttled = exc.status == 429 or isinstance(exc, QuotaExhausted)
                if throttled or attempt >= LOST_ANSWER_RETRIES:
                    raise
                attempt += 1
                await asyncio.sleep(LOST_ANSWER_BACKOFF * 2 ** (attempt - 1))

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
            if "INVALID_LOCATION" in codes:
                self._driver.forget_location()  # a discovered location that vanished: ask again next push
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
            levels = await self._driver.levels_at([items[indexes[p]] for p in checked], location)
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
            levels = await self._driver.levels_at([items[i] for i in stale], location)
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
    return PushResult.from_error(update.listing_id, error, prefix=prefix)
