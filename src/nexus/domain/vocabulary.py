"""The words of the inventory domain. Storage imports them; they do not depend on storage.

StrEnums: each member is its own string, so a value read from the database compares equal.
"""

from __future__ import annotations

import enum


class MovementReason(enum.StrEnum):
    """Why a ledger movement changed the stock (`adjust(reason=...)` takes these)."""

    SALE = "sale"
    RESTOCK = "restock"
    ADJUSTMENT = "adjustment"
    RESERVATION = "reservation"
    RELEASE = "release"
    CHANNEL_ADJUSTMENT = "channel_adjustment"  # a channel's level moved without an order explaining it
    RECONCILE = "reconcile"


class Priority(enum.IntEnum):
    """Push order of dirty listings: going out of stock first, bulk catalog work last."""

    IMMEDIATE = 0
    NORMAL = 1
    LOW = 2


class BatchState(enum.StrEnum):
    """marking: its listings are being queued, a chunk at a time, and pushed meanwhile; it cannot
    complete before it runs. running: every member is queued. completed: every member finished."""

    MARKING = "marking"
    RUNNING = "running"
    COMPLETED = "completed"


class WebhookStatus(enum.StrEnum):
    """A stored delivery: received -> processed | failed (bad payload after verification);
    rejected deliveries (refused at the door) are never processed."""

    RECEIVED = "received"
    PROCESSED = "processed"
    FAILED = "failed"
    REJECTED = "rejected"


class DeadLetterStatus(enum.StrEnum):
    FAILED = "failed"
    REPLAYING = "replaying"
    RESOLVED = "resolved"


class ConflictPolicy(enum.StrEnum):
    """What the reconciler does with a difference the consistency rules cannot explain
    (docs/consistency.md, "Reconciliation")."""

    NEXUS_WINS = "nexus_wins"  # push what Nexus wants over the channel's level
    CHANNEL_WINS = "channel_wins"  # book the channel's level in the ledger
    CONSERVATIVE = "conservative"  # the lower of the two: book a lower level, push over a higher
    REVIEW = "review"  # leave both alone and open a conflict for a person


class ConflictStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
