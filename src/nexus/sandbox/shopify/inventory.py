"""`inventorySetQuantities`: compare-and-set, all-or-nothing, idempotent.

Rules (shopify.dev `inventorySetQuantities`, `InventoryQuantityInput`,
`InventorySetQuantitiesUserErrorCode`; changelogs "compare-and-swap redesign for inventory set
quantities" and "making idempotency mandatory for inventory adjustments"):
- every quantity carries `changeFromQuantity`; an integer that differs from the stored quantity
  fails with CHANGE_FROM_QUANTITY_STALE, `null` skips the check;
- the docs say "the mutation fails" on a stale value: when any item has a user error, nothing in
  the input is applied and `inventoryAdjustmentGroup` is null;
- the `@idempotent` key makes a retry return the original result without applying it again; the
  same key with different input is IDEMPOTENCY_KEY_PARAMETER_MISMATCH.

Two knobs imitate behaviour reported from live shops that contradicts the docs, so a client can
be tested against both: `stale_field_path=False` answers CHANGE_FROM_QUANTITY_STALE with
`field: null` (seen on 2026-07 development stores), and `replay_idempotent=False` re-executes a
same-key retry instead of replaying it (one report saw a fresh stale error on such a retry).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nexus.sandbox.shopify.store import (
    AdjustmentGroup,
    InventoryChange,
    InventoryLevel,
    Store,
    parse_gid_of,
)

MAX_QUANTITY = 1_000_000_000
QUANTITY_NAMES = ("available", "on_hand")
# The documented reasons for inventory changes (shopify.dev, "Manage inventory quantities and states").
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:.+$")
_GID_URI_RE = re.compile(r"^gid://[^/]+/[^/]+/[^/]+$")

MESSAGES = {
    "CHANGE_FROM_QUANTITY_STALE": "The changeFromQuantity argument no longer matches the persisted quantity.",
    "IDEMPOTENCY_KEY_PARAMETER_MISMATCH": (
        "The same idempotency key cannot be used with different operation parameters."
    ),
    "INVALID_INVENTORY_ITEM": "The specified inventory item could not be found.",
    "INVALID_LOCATION": "The specified location could not be found.",
    "INVALID_NAME": "The quantity name must be either 'available' or 'on_hand'.",
    "INVALID_QUANTITY_NEGATIVE": "The quantity can't be negative.",
    "INVALID_QUANTITY_TOO_HIGH": "The total quantity can't be higher than 1,000,000,000.",
    "INVALID_REASON": "The specified reason is invalid.",
    "INVALID_REFERENCE_DOCUMENT": "The specified reference document is invalid.",
    "ITEM_NOT_STOCKED_AT_LOCATION": "The specified inventory item is not stocked at the location.",
    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR": (
        "The combination of inventoryItemId and locationId must be unique."
    ),
}


def user_error(code: str, field: Sequence[str | int] | None) -> dict[str, Any]:
    return {
        "code": code,
        "field": [str(part) for part in field] if field is not None else None,
        "message": MESSAGES[code],
    }


@dataclass(slots=True)
class SetOutcome:
    payload: dict[str, Any]  # {"inventoryAdjustmentGroup": AdjustmentGroup | None, "userErrors": [...]}
    replayed: bool = False
    changed_levels: list[InventoryLevel] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Record:
    fingerprint: str
    payload: dict[str, Any]


class InventorySetter:
    """Applies inventorySetQuantities and remembers idempotency keys.

    Shopify keeps a key for 24 hours; the sandbox keeps the most recent `remembered_keys` (each
    record holds a whole adjustment group), which covers any retry a client makes in practice.
    """

    def __init__(
        self,
        store: Store,
        *,
        stale_field_path: bool = True,
        replay_idempotent: bool = True,
        remembered_keys: int = 2_000,
    ) -> None:
        self._store = store
        self._stale_field_path = stale_field_path
        self._replay = replay_idempotent
        self._capacity = remembered_keys
        self._keys: OrderedDict[str, _Record] = OrderedDict()

    def set_quantities(self, data: Mapping[str, Any], key: str) -> SetOutcome:
        fingerprint = json.dumps(data, sort_keys=True, default=str)
        record = self._keys.get(key)
        if record is not None:
            if record.fingerprint != fingerprint:
                mismatch = user_error("IDEMPOTENCY_KEY_PARAMETER_MISMATCH", None)
                return SetOutcome({"inventoryAdjustmentGroup": None, "userErrors": [mismatch]})
            if self._replay:
                return SetOutcome(record.payload, replayed=True)
        outcome = self._execute(data)
        self._keys[key] = _Record(fingerprint, outcome.payload)
        self._keys.move_to_end(key)
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return outcome

    def _execute(self, data: Mapping[str, Any]) -> SetOutcome:
        name = str(data.get("name", ""))
        reason = str(data.get("reason", ""))
        reference = data.get("referenceDocumentUri")
        quantities: Sequence[Mapping[str, Any]] = data.get("quantities") or []
        errors: list[dict[str, Any]] = []
        if name not in QUANTITY_NAMES:
            errors.append(user_error("INVALID_NAME", ["input", "name"]))
        if reason not in REASONS:
            errors.append(user_error("INVALID_REASON", ["input", "reason"]))
        if reference is not None and not _valid_reference(str(reference)):
            errors.append(user_error("INVALID_REFERENCE_DOCUMENT", ["input", "referenceDocumentUri"]))
        targets: list[tuple[InventoryLevel, int]] = []
        seen: set[tuple[int, int]] = set()
        for index, entry in enumerate(quantities):
            target = self._check_entry(index, entry, name, seen, errors)
            if target is not None:
                targets.append(target)
        if errors:
            return SetOutcome({"inventoryAdjustmentGroup": None, "userErrors": errors})
        return self._apply(name, reason, reference, targets)

    def _check_entry(
        self,
        index: int,
        entry: Mapping[str, Any],
        name: str,
        seen: set[tuple[int, int]],
        errors: list[dict[str, Any]],
    ) -> tuple[InventoryLevel, int] | None:
        at = ["input", "quantities", str(index)]
        item_id = parse_gid_of(str(entry.get("inventoryItemId", "")), "InventoryItem")
        location_id = parse_gid_of(str(entry.get("locationId", "")), "Location")
        quantity = int(entry.get("quantity", 0))
        entry_errors: list[dict[str, Any]] = []
        known_item = item_id is not None and item_id in self._store.items
        known_location = location_id is not None and location_id in self._store.locations
        if not known_item:
            entry_errors.append(user_error("INVALID_INVENTORY_ITEM", [*at, "inventoryItemId"]))
        if not known_location:
            entry_errors.append(user_error("INVALID_LOCATION", [*at, "locationId"]))
        if quantity < 0:
            entry_errors.append(user_error("INVALID_QUANTITY_NEGATIVE", [*at, "quantity"]))
        elif quantity > MAX_QUANTITY:
            entry_errors.append(user_error("INVALID_QUANTITY_TOO_HIGH", [*at, "quantity"]))
        level = None
        if item_id is not None and location_id is not None and known_item and known_location:
            level = self._store.level(item_id, location_id)
            if level is None:
                entry_errors.append(user_error("ITEM_NOT_STOCKED_AT_LOCATION", [*at, "locationId"]))
            elif (item_id, location_id) in seen:
                entry_errors.append(user_error("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", at))
            else:
                seen.add((item_id, location_id))
                expected = entry.get("changeFromQuantity")
                current = level.quantity(name) if name in QUANTITY_NAMES else None
                if expected is not None and current is not None and int(expected) != current:
                    where = [*at, "changeFromQuantity"] if self._stale_field_path else None
                    entry_errors.append(user_error("CHANGE_FROM_QUANTITY_STALE", where))
        errors.extend(entry_errors)
        return (level, quantity) if level is not None and not entry_errors else None

    def _apply(
        self, name: str, reason: str, reference: Any, targets: list[tuple[InventoryLevel, int]]
    ) -> SetOutcome:
        now = self._store.now()
        changes: list[InventoryChange] = []
        changed: list[InventoryLevel] = []
        skus: list[str] = []
        for level, quantity in targets:
            before_available, before_on_hand = level.available, level.on_hand
            level.available = quantity if name == "available" else quantity - level.committed
            delta_available = level.available - before_available
            delta_on_hand = level.on_hand - before_on_hand
            first, second = ("available", "on_hand") if name == "available" else ("on_hand", "available")
            deltas = {"available": delta_available, "on_hand": delta_on_hand}
            afters = {"available": level.available, "on_hand": level.on_hand}
            for quantity_name in (first, second):
                changes.append(
                    InventoryChange(
                        quantity_name,
                        deltas[quantity_name],
                        afters[quantity_name],
                        level.item_id,
                        level.location_id,
                    )
                )
            item = self._store.items[level.item_id]
            if item.sku is not None:
                skus.append(item.sku)
            if delta_available or delta_on_hand:
                level.updated_at = now
                changed.append(level)
        group = AdjustmentGroup(
            self._store.next_id("InventoryAdjustmentGroup"),
            now,
            reason,
            str(reference) if reference is not None else None,
            changes,
        )
        self._store.remember_group(group)
        return SetOutcome(
            {"inventoryAdjustmentGroup": group, "userErrors": []}, changed_levels=changed, skus=skus
        )


def _valid_reference(uri: str) -> bool:
    if uri.startswith("gid://"):
        return _GID_URI_RE.match(uri) is not None
    return _URI_RE.match(uri) is not None
