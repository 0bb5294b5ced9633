"""The reconciler: read every listing back, in turn, and settle what differs.

Nothing else finds a wrong belief whose listing looks clean (desired = what we believe the
channel shows): a webhook the channel dropped, an edit in the channel's admin, a sale whose
notification never came. The reconciler leases quiet listings (the oldest read first), reads
them with the driver's `read_levels`, and hands the levels to the `ReadingWriter`, which applies
the consistency rules and the channel's conflict policy (nexus.domain.reconcile).

Pacing: one read request at a time, at most `budget_share` of the channel's request rate (a bucket
of its own, shared by every process's reconciler), and no faster than reading the whole catalog
once per `period` needs. Holds no SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from nexus.config import ReconcileConfig
from nexus.domain.reconcile import Finding, judge
from nexus.errors import ChannelAuthError
from nexus.ratelimit.bucket import BoundLimiter
from nexus.ratelimit.config import RateLimitConfig
from nexus.storage.models import utcnow
from nexus.sync.queue import ClaimedListing, ListingQueue
from nexus.sync.readings import Difference, ReadingWriter, ReconcileRound

if TYPE_CHECKING:
    from nexus.engine import ChannelRuntime
    from nexus.sync.channel_state import ChannelStates
    from nexus.sync.worker import Signals

log = structlog.get_logger("nexus.reconciler")


class Reconciler:
    """One channel's read-back loop. Build it with `Nexus.reconciler`."""

    def __init__(
        self,
        runtime: ChannelRuntime,
        *,
        queue: ListingQueue,
        writer: ReadingWriter,
        signals: Signals,
        config: ReconcileConfig,
        states: ChannelStates | None = None,
    ) -> None:
        self.runtime = runtime
        self.channel = runtime.name
        self.queue = queue
        self.writer = writer
        self.owner = writer.owner
        self.signals = signals
        self.config = config
        self.states = states

    @property
    def step(self) -> int:
        """Listings per read request."""
        capabilities = self.runtime.driver.capabilities
        return max(1, min(capabilities.read_batch_size, capabilities.max_batch_size))

    def request_interval(self) -> float:
        """Seconds between read requests that keep them within the budget share."""
        limit = self.runtime.limiter.limit
        per_second = limit.refill_per_second * self.config.budget_share / max(limit.cost_per_push, 1.0)
        return math.inf if per_second <= 0 else 1.0 / per_second

    def _budget(self) -> BoundLimiter:
        """The budget share as a bucket of its own beside the channel's, in the same store (Redis
        in scaled mode): the reconcilers of every process share it, so N processes still read
        within one share, not N."""
        channel = self.runtime.limiter
        interval = self.request_interval()
        per_second = 0.0 if math.isinf(interval) else 1.0 / interval
        return BoundLimiter(channel.bucket, f"{channel.key}:reconcile", RateLimitConfig(1.0, per_second))

    # -- one round --------------------------------------------------------------------------

    async def run_once(
        self, *, read_before: datetime | None = None, listing_ids: Sequence[int] | None = None
    ) -> ReconcileRound | None:
        """Read back the next `step` quiet listings (those not read since `read_before`, when
        given) and record what they show. None when there is nothing left to read."""
        claimed = await self.queue.claim_for_reconcile(
            self.channel, self.owner, self.step, listing_ids, read_before=read_before
        )
        if not claimed:
            return None
        try:
            levels = await self._read(claimed)
            round_ = ReconcileRound(self.channel)
            await self.writer.record(claimed, levels, round_)
        except BaseException:
            await asyncio.shield(self.queue.release(self.owner, [c.id for c in claimed], sent=False))
            raise
        self.runtime.metrics.reconciled(self.channel, round_.differences)
        if round_.differences:
            log.warning(
                "channel levels differ from what Nexus believed",
                channel=self.channel,
                listings=len(round_.differences),
                findings={finding.value: count for finding, count in round_.findings.items() if count},
            )
        await self.signals.after_changes(round_.changes)
        if any(d.finding is Finding.PUSHED for d in round_.differences):
            self.signals.notify([self.channel])
        return round_

    async def _read(self, claimed: Sequence[ClaimedListing]) -> dict[int, int]:
        try:
            return await self.runtime.driver.read_levels(
                [listing.update(listing.desired) for listing in claimed]
            )
        except ChannelAuthError as exc:  # channel-wide: a state, as when a push is refused
            if self.states is not None:
                await self.states.disconnect(self.channel, str(exc))
            return {}
        except Exception as exc:  # the listings are read again next cycle
            log.warning("reading levels back failed", channel=self.channel, error=str(exc))
            return {}

    async def cycle(self, *, paced: bool = False, stop: asyncio.Event | None = None) -> ReconcileRound:
        """Read every quiet listing once; `paced` spaces the requests as `run` does."""
        started = utcnow()
        total = ReconcileRound(self.channel)
        interval = await self._interval() if paced else 0.0
        budget = self._budget() if paced else None
        while stop is None or not stop.is_set():
            if budget is not None:
                await budget.acquire()
            if paced and not await self._may_read():
                break  # paused or disconnected: the next cycle starts where this one stopped
            round_ = await self.run_once(read_before=started)
            if round_ is None:
                break
            total.absorb(round_)
            if interval:
                await _sleep(interval, stop)
        return total

    async def differences(self) -> list[Difference]:
        """What a read shows against what Nexus believes, for every quiet listing, changing
        nothing (no lease, no booking): `nexus reconcile --dry-run`."""
        listings = await self.queue.quiet_listings(self.channel)
        semantics = self.runtime.semantics
        found: list[Difference] = []
        for start in range(0, len(listings), self.step):
            chunk = listings[start : start + self.step]
            levels = await self._read(chunk)
            for listing in chunk:
                level = levels.get(listing.id)
                if level is None:
                    continue
                finding = judge(listing.remote_qty, level, semantics, self.config.policy)
                if finding not in (Finding.AGREES, Finding.UNKNOWN):
                    found.append(
                        Difference(
                            self.channel,
                            listing.id,
                            listing.sku,
                            listing.remote_qty,
                            level,
                            listing.desired,
                            finding,
                        )
                    )
        return found

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        if not self.runtime.driver.capabilities.reads_levels:
            log.warning("channel cannot read its levels back: no reconciliation", channel=self.channel)
            return
        log.info("reconciler started", channel=self.channel, owner=self.owner)
        # The first read waits one pacing step: a process that starts (or a fleet that restarts
        # together) spends its first moments on the pushes waiting for it, not on reading back.
        await _sleep(await self._interval(), stop)
        while not stop.is_set():
            started = utcnow()
            try:
                total = await self.cycle(paced=True, stop=stop)
                log.info(
                    "reconciliation cycle done",
                    channel=self.channel,
                    read=total.read,
                    differences=len(total.differences),
                )
            except Exception:
                log.exception("reconciliation cycle failed", channel=self.channel)
            elapsed = (utcnow() - started).total_seconds()
            if elapsed > self.config.period:
                log.warning(
                    "a reconciliation cycle took longer than its period: raise budget_share or period",
                    channel=self.channel,
                    seconds=round(elapsed),
                    period=self.config.period,
                )
            await _sleep(max(0.0, self.config.period - elapsed), stop)
        log.info("reconciler stopped", channel=self.channel)

    async def _may_read(self) -> bool:
        """The background loop reads nothing from a paused or disconnected channel (a person
        running `nexus reconcile` still may)."""
        return self.states is None or (await self.states.get(self.channel)).may_push

    async def _interval(self) -> float:
        """No faster than reading the catalog once per period needs (the shared budget bucket
        keeps every process together within the budget share)."""
        quiet = await self.queue.queued_quiet(self.channel)
        return self.config.period / max(1, math.ceil(quiet / self.step))


async def _sleep(seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
