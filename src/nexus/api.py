"""The fluent Python API: `nexus.product(sku)`, `nexus.catalog(products)`, `nexus.batch(id)`."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from nexus.domain.stock import StockChange, StockChangeResult
from nexus.domain.vocabulary import BatchState, MovementReason
from nexus.drivers.dto import NexusProduct
from nexus.errors import InvalidArgumentError, UnknownChannelError, UnknownSkuError
from nexus.storage.database import IN_LIST_CHUNK
from nexus.storage.models import ChannelMapping, Item
from nexus.sync.batches import queue_batch, read_batch, settle_stranded
from nexus.sync.outcomes import PushRound

if TYPE_CHECKING:
    from nexus.engine import Nexus


@dataclass(frozen=True, slots=True)
class ListingState:
    """One listing of a SKU on one channel: what Nexus wants it to show and believes it shows."""

    channel: str
    listing_id: int
    desired: int
    remote: int | None
    in_sync: bool
    last_error: str | None

    @classmethod
    def of(cls, row: ChannelMapping) -> ListingState:
        return cls(
            channel=row.channel,
            listing_id=row.id,
            desired=row.desired_qty,
            remote=row.remote_qty,
            in_sync=row.dirty_since is None and row.failed_at is None,
            last_error=row.last_error,
        )


@dataclass(frozen=True, slots=True)
class ProductState:
    """A SKU's stock as the ledger has it: `available` is on hand less reserved."""

    sku: str
    title: str
    barcode: str | None
    on_hand: int
    reserved: int
    updated_at: datetime

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(slots=True)
class SyncOutcome:
    """A stock change and, when it was pushed right away, what each channel now shows."""

    change: StockChangeResult
    listings: list[ListingState] = field(default_factory=list)
    rounds: list[PushRound] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return all(listing.in_sync for listing in self.listings)


class PendingChange:
    """A stock change not applied yet. `await` it to apply only; `await .sync()` to apply and push."""

    def __init__(self, nexus: Nexus, change: StockChange) -> None:
        self._nexus = nexus
        self._change = change

    def __await__(self) -> Generator[Any, None, StockChangeResult]:
        return self._nexus.apply(self._change).__await__()

    async def sync(self, channels: Sequence[str] | None = None, *, timeout: float = 30.0) -> SyncOutcome:
        """Apply the change, then push the SKU to `channels` (default: every channel it is listed on)
        now, in this task, and return what each channel acknowledged.

        Every channel's desired quantity follows the change either way; `channels` only chooses
        which of them are pushed before this call returns (the others go through the workers).
        """
        result = await self._nexus.apply(self._change)
        outcome = SyncOutcome(change=result)
        outcome.rounds, outcome.listings = await push_sku_now(self._nexus, result.sku, channels, timeout)
        return outcome


async def push_sku_now(
    nexus: Nexus, sku: str, channels: Sequence[str] | None, timeout: float
) -> tuple[list[PushRound], list[ListingState]]:
    deadline = time.monotonic() + timeout
    rounds: list[PushRound] = []
    targets = set(channels) if channels is not None else set(nexus.channel_names())
    while True:
        pending = await nexus.queue.queued_for_sku(sku, targets)
        if not pending or time.monotonic() > deadline:
            break
        progressed = False
        for channel, ids in pending.items():
            round_ = await nexus.push_worker(channel).run_once(ids)
            if round_ is not None:
                rounds.append(round_)
                progressed = progressed or round_.ok + round_.failed + round_.vetoed > 0
        if not progressed:
            # Another worker holds the lease, or the channel asked us to wait: give it a moment.
            await asyncio.sleep(0.05)
    states = [state for state in await ProductHandle(nexus, sku).listings() if state.channel in targets]
    return rounds, states


class ProductHandle:
    def __init__(self, nexus: Nexus, sku: str) -> None:
        self._nexus = nexus
        self.sku = sku

    def update_inventory(
        self,
        *,
        quantity: int,
        reason: MovementReason | str = MovementReason.ADJUSTMENT,
        reference: str | None = None,
        idempotency_key: str | None = None,
    ) -> PendingChange:
        """Set the on-hand count to `quantity` (the ledger records the difference)."""
        return self._change(quantity=quantity, reason=reason, reference=reference, key=idempotency_key)

    def adjust(
        self,
        delta: int,
        *,
        reason: MovementReason | str = MovementReason.ADJUSTMENT,
        reference: str | None = None,
        idempotency_key: str | None = None,
    ) -> PendingChange:
        """Add `delta` (negative for a sale) to the on-hand count.

        Give `idempotency_key` when the caller may retry: the same key twice changes nothing.
        """
        return self._change(delta=delta, reason=reason, reference=reference, key=idempotency_key)

    def _change(
        self,
        *,
        reason: MovementReason | str,
        reference: str | None,
        key: str | None,
        delta: int | None = None,
        quantity: int | None = None,
    ) -> PendingChange:
        change = StockChange(
            sku=self.sku,
            reason=movement_reason(reason),
            idempotency_key=key or f"api:{uuid.uuid4()}",
            delta=delta,
            quantity=quantity,
            reference=reference,
        )
        return PendingChange(self._nexus, change)

    async def get(self) -> ProductState | None:
        """The SKU's stock now, or None when no such SKU exists."""
        async with self._nexus.db.read() as session:
            item = (await session.execute(select(Item).where(Item.sku == self.sku))).scalar_one_or_none()
        if item is None:
            return None
        return ProductState(item.sku, item.title, item.barcode, item.on_hand, item.reserved, item.updated_at)

    async def listings(self) -> list[ListingState]:
        """The SKU's listings on every channel, oldest first."""
        async with self._nexus.db.read() as session:
            statement = (
                select(ChannelMapping).where(ChannelMapping.sku == self.sku).order_by(ChannelMapping.id)
            )
            return [ListingState.of(row) for row in (await session.execute(statement)).scalars()]


def movement_reason(reason: MovementReason | str) -> MovementReason:
    """`reason` as a MovementReason; anything else is an InvalidArgumentError naming the valid ones."""
    try:
        return MovementReason(reason)
    except ValueError:
        valid = ", ".join(member.value for member in MovementReason)
        raise InvalidArgumentError(
            f"reason {reason!r} is not a movement reason; use one of: {valid}"
        ) from None


def _sku_of(product: Any) -> str:
    if isinstance(product, str):
        return product
    if isinstance(product, NexusProduct):
        if product.local_sku is None:
            raise ValueError(f"product {product.remote_id} has several variants; pass their SKUs")
        return product.local_sku
    sku = getattr(product, "sku", None)
    if not isinstance(sku, str):
        raise TypeError(f"cannot find a SKU on {product!r}")
    return sku


class CatalogHandle:
    def __init__(self, nexus: Nexus, products: Iterable[Any] | None) -> None:
        self._nexus = nexus
        self._products = products

    async def sync_all(self, channels: Sequence[str] | None = None, *, trigger: str = "catalog") -> str:
        """Queue a push of every listing of these products (all products when none were given) to
        `channels` (default: all), at low priority, and return the batch id to follow it by."""
        nexus = self._nexus
        targets = list(channels) if channels is not None else nexus.channel_names()
        unknown = [name for name in targets if name not in nexus.settings.channels]
        if unknown:
            configured = ", ".join(nexus.channel_names()) or "none"
            raise UnknownChannelError(f"unknown channel {', '.join(unknown)} (configured: {configured})")
        skus = None if self._products is None else list(dict.fromkeys(_sku_of(p) for p in self._products))
        if skus is not None:
            await _check_skus(nexus, skus, targets)
        batch_id = str(uuid.uuid4())

        async def wake_workers() -> None:  # a chunk is queued: push it while the rest is
            nexus.notify(targets)

        await queue_batch(
            nexus.db, batch_id, trigger, targets, skus, queued=wake_workers, dispatch=nexus.events.dispatch
        )
        return batch_id


async def _check_skus(nexus: Nexus, skus: Sequence[str], channels: Sequence[str]) -> None:
    """Every SKU must exist and be listed on at least one of `channels`; an UnknownSkuError names
    those that do not exist and those not linked (`nexus import <channel>` links them)."""
    found: set[str] = set()
    linked: set[str] = set()
    async with nexus.db.read() as session:
        for start in range(0, len(skus), IN_LIST_CHUNK):
            chunk = skus[start : start + IN_LIST_CHUNK]
            found.update((await session.execute(select(Item.sku).where(Item.sku.in_(chunk)))).scalars())
            statement = select(ChannelMapping.sku).where(
                ChannelMapping.sku.in_(chunk), ChannelMapping.channel.in_(channels)
            )
            linked.update((await session.execute(statement)).scalars())
    unknown = [sku for sku in skus if sku not in found]
    unlinked = [sku for sku in skus if sku in found and sku not in linked]
    problems = []
    if unknown:
        problems.append(f"unknown SKU {_few(unknown)}")
    if unlinked:
        where = ", ".join(channels)
        problems.append(f"SKU {_few(unlinked)} not linked to {where} (run `nexus import <channel>`)")
    if problems:
        raise UnknownSkuError("; ".join(problems) + ": nothing queued")


def _few(names: Sequence[str], shown: int = 10) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


@dataclass(frozen=True, slots=True)
class BatchStatus:
    id: str
    trigger: str
    status: str
    total: int
    processed: int
    failed: int

    @property
    def progress(self) -> float:
        return 1.0 if self.total == 0 else (self.processed + self.failed) / self.total

    @property
    def done(self) -> bool:
        return self.status == BatchState.COMPLETED


class BatchHandle:
    def __init__(self, nexus: Nexus, batch_id: str) -> None:
        self._nexus = nexus
        self.id = batch_id

    async def status(self) -> BatchStatus:
        # A batch whose last round could not settle it completes here, for whoever waits on it.
        async for event in settle_stranded(self._nexus.db, self.id):
            await self._nexus.events.dispatch(event)
        view = await read_batch(self._nexus.db, self.id)
        return BatchStatus(view.id, view.trigger, view.status, view.total, view.processed, view.failed)

    async def wait(
        self,
        timeout: float | None = 600.0,
        interval: float = 0.1,
        on_progress: Callable[[BatchStatus], None] | None = None,
    ) -> BatchStatus:
        """Poll until the batch completes (or `timeout` seconds pass; None waits for ever),
        handing every status read to `on_progress`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = await self.status()
            if on_progress is not None:
                on_progress(status)
            if status.done or (deadline is not None and time.monotonic() > deadline):
                return status
            await asyncio.sleep(interval)
