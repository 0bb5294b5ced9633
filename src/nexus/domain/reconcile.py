"""What a level read back by the reconciler means (docs/consistency.md, "Reconciliation").

The reconciler reads a listing while it holds the listing's lease: no push of ours is in
flight, so the reading is placed after every push recorded and the consistency rules apply to it
as to a read-back. What those rules prove is booked; what they cannot explain is a conflict,
settled by the channel's policy.

- Equal to our belief: nothing to do.
- Lower, on a channel whose levels book sales: a sale whose report never came. Booked as drift,
  which the order absorbs if it comes after all (counted once).
- Lower, where orders book sales: an order may still be on its way. The reading waits for it for
  `order_grace`; still lower after that, the difference is a conflict.
- Higher: nothing we know of raises a channel's level (a restock or an edit in the channel's
  admin, a cancelled order the channel restocked): a conflict.
- Never read (no belief): not learnt (an order still to come would count twice); a push settles
  it, as everywhere else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from nexus.domain.belief import Belief, Semantics, Sent, level_read
from nexus.domain.vocabulary import ConflictPolicy

UNEXPLAINED = "unexplained"  # the timeline key of a lower reading waiting for its order


class Finding(enum.Enum):
    AGREES = "agrees"
    BOOKED = "booked"  # the rules booked the difference (a sale the channel never reported)
    AWAITS_ORDER = "awaits_order"  # lower, on an orders channel, within the grace
    PUSHED = "pushed"  # conflict, Nexus wins: the listing is pushed over the channel's level
    ADOPTED = "adopted"  # conflict, the channel wins: its level is booked
    REVIEW = "review"  # conflict left to a person
    UNKNOWN = "unknown"  # nothing believed: a push settles it


@dataclass(frozen=True, slots=True)
class Reading:
    """One listing's reconciliation: `delta` is what the ledger books (0 unless BOOKED or
    ADOPTED); `believed` is the level Nexus believed before the read."""

    finding: Finding
    believed: int | None
    observed: int
    delta: int = 0

    @property
    def differs(self) -> bool:
        return self.finding not in (Finding.AGREES, Finding.UNKNOWN)


def judge(believed: int | None, observed: int, semantics: Semantics, policy: ConflictPolicy) -> Finding:
    """What a reading means, before any grace: for `nexus reconcile --dry-run`, which books
    nothing, and for `reconcile_reading`."""
    if believed is None:
        return Finding.UNKNOWN
    if observed == believed:
        return Finding.AGREES
    if observed < believed and semantics.levels_book_sales:
        return Finding.BOOKED
    if observed < believed and semantics.orders:
        return Finding.AWAITS_ORDER
    return _settle(policy, believed, observed)


def _settle(policy: ConflictPolicy, believed: int, observed: int) -> Finding:
    if policy is ConflictPolicy.NEXUS_WINS:
        return Finding.PUSHED
    if policy is ConflictPolicy.CHANNEL_WINS:
        return Finding.ADOPTED
    if policy is ConflictPolicy.CONSERVATIVE:
        return Finding.ADOPTED if observed < believed else Finding.PUSHED
    return Finding.REVIEW


def reconcile_reading(
    belief: Belief,
    sent: Sent,
    observed: int,
    semantics: Semantics,
    policy: ConflictPolicy,
    *,
    now: datetime,
    order_grace: timedelta,
) -> Reading:
    """Apply a reading taken under the lease to the belief; returns what to book and do."""
    believed = sent.remote_qty if belief.remote_qty is not None else None
    finding = judge(believed, observed, semantics, policy)
    if finding is Finding.AWAITS_ORDER and believed is not None:
        finding = _awaited(belief, observed, now, order_grace) or _settle(policy, believed, observed)
    if finding is not Finding.AWAITS_ORDER and UNEXPLAINED in (belief.timeline or {}):
        belief.timeline = {k: v for k, v in belief.timeline.items() if k != UNEXPLAINED}
    delta = 0
    if finding in (Finding.BOOKED, Finding.ADOPTED, Finding.AGREES, Finding.UNKNOWN):
        # level_read books the difference from the belief the read started from, applies sales
        # reported meanwhile on top, and leaves an unknown level unknown (verified by a push).
        delta = level_read(belief, sent, observed)
    elif finding is Finding.PUSHED:
        # Learn the level without booking it, so the push (a compare-and-set from it, where
        # the channel has one) overwrites exactly what the channel shows.
        belief.remote_qty = observed + belief.inflight_delta
        belief.inflight_delta = 0
    else:  # AWAITS_ORDER, REVIEW: the belief stands; sales reported meanwhile still count
        if belief.remote_qty is not None:
            belief.remote_qty += belief.inflight_delta
        belief.inflight_delta = 0
    return Reading(finding, believed, observed, delta)


def _awaited(belief: Belief, observed: int, now: datetime, grace: timedelta) -> Finding | None:
    """AWAITS_ORDER while the same lower level was first seen less than `grace` ago; None once
    the grace is over (the order is not coming: a conflict)."""
    seen = (belief.timeline or {}).get(UNEXPLAINED)
    if isinstance(seen, dict) and seen.get("level") == observed:
        since = datetime.fromisoformat(str(seen["since"]))
        if now - since >= grace:
            return None
        return Finding.AWAITS_ORDER
    # A new level restarts the wait: the order we wait for may be another one.
    belief.timeline = {**(belief.timeline or {}), UNEXPLAINED: {"level": observed, "since": now.isoformat()}}
    return Finding.AWAITS_ORDER
