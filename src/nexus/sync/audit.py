"""The audit row of a push round: one `sync_jobs` row per round.

Its payload holds no secret by construction: every key is written here, and the values are
listing ids, SKUs, remote ids, quantities and statuses. So it is not run through `mask_secrets`,
which walked all of a round's updates (9 % of a profiled catalog sync, though no gain showed end
to end: docs/benchmarks.md, section 1); `nexus.sync.history` masks every payload it reads back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nexus.storage.models import SyncJob

if TYPE_CHECKING:
    from nexus.sync.outcomes import PushRound, RoundAnswers


def audit_row(channel: str, driver: str, owner: str, answers: RoundAnswers, outcome: PushRound) -> SyncJob:
    """The `sync_jobs` row of one round: what was sent and what came back."""
    claimed, updates, results, vetoed = answers.claimed, answers.updates, answers.results, answers.vetoed
    if outcome.failed == len(updates) and updates:
        status = "failed"
    elif outcome.ok == len(updates):
        status = "ok"
    elif outcome.ok == 0 and outcome.failed == 0:
        status = "stale" if outcome.stale and not outcome.retried else "retry"
    else:
        status = "partial"
    errors = sorted({r.error for r in results.values() if r.error})
    batch_ids = {c.batch_id for c in claimed if c.batch_id}
    return SyncJob(
        channel=channel,
        batch_id=next(iter(batch_ids)) if len(batch_ids) == 1 else None,
        count=len(updates),
        succeeded=outcome.ok,
        status=status,
        duration_ms=round(outcome.duration * 1000, 3),
        error="; ".join(errors)[:2000] or None,
        payload={
            "driver": driver,
            "worker": owner,
            "updates": [
                {
                    "listing_id": u.listing_id,
                    "sku": u.sku,
                    "remote_id": u.remote_id,
                    "quantity": u.quantity,
                    "change_from": u.change_from,
                }
                for u in updates
            ],
            "results": {str(i): r.status.value for i, r in results.items()},
            "vetoed": {str(i): reason for i, reason in vetoed.items()},
        },
    )
