"""Helpers for the domain tests: seed items and listings, apply inbound events, read state back,
on an engine whose channels are `nexus.testing.MemoryChannel`s acknowledging every push."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from nexus.domain.belief import Semantics
from nexus.domain.catalog import ImportReport, ItemSpec, add_items, link_variants
from nexus.domain.inbound import InboundOutcome, apply_inbound
from nexus.drivers.contract import InboundEvent, ListingRef, ObservedLevel, SaleEvent
from nexus.drivers.dto import NexusProduct, NexusVariant, PushResult
from nexus.engine import Nexus
from nexus.errors import UnknownDriverError
from nexus.storage.models import ChannelMapping, Item, StockMovement
from nexus.testing import MemoryChannel

# The channel these tests model unless they build one: compare-and-set, orders and levels, and
# stamps precise enough that a level stamped now comes after everything done before.
PRECISE = timedelta(microseconds=1)
KIT_SEMANTICS = Semantics(compare_and_set=True, stamp_precision=PRECISE)


def semantics_of(nexus: Nexus, channel: str) -> Semantics:
    try:
        return nexus.channel(channel).semantics
    except UnknownDriverError:
        return KIT_SEMANTICS


def remote_id(channel: str, sku: str) -> str:
    return f"v-{channel}-{sku}"


def ref(channel: str, sku: str) -> ListingRef:
    return ListingRef(remote_id=remote_id(channel, sku))


async def seed(nexus: Nexus, sku: str, on_hand: int, listings: Mapping[str, int | None]) -> dict[str, int]:
    """Create `sku` with `on_hand` and link it on each channel, the channel showing the given
    quantity (None: never read). Returns the listing id per channel."""
    async with nexus.db.transaction() as session:
        await add_items(session, [ItemSpec(sku, title=sku, on_hand=on_hand)])
        await session.flush()
        for channel, quantity in listings.items():
            product = NexusProduct(
                remote_id=f"p-{channel}-{sku}",
                title=sku,
                variants=(
                    NexusVariant(remote_id=remote_id(channel, sku), sku=sku, title="", quantity=quantity),
                ),
            )
            await link_variants(session, channel, [product], nexus.allocator, ImportReport(channel))
    async with nexus.db.read() as session:
        rows = (await session.execute(select(ChannelMapping).where(ChannelMapping.sku == sku))).scalars()
        return {row.channel: row.id for row in rows}


async def inbound(nexus: Nexus, channel: str, events: Sequence[InboundEvent], key: str) -> InboundOutcome:
    async with nexus.db.transaction() as session:
        outcome = await apply_inbound(
            session,
            channel,
            list(events),
            nexus.allocator,
            delivery_key=key,
            semantics=semantics_of(nexus, channel),
        )
    await nexus.after_changes(outcome.changes)
    return outcome


async def sale(
    nexus: Nexus,
    channel: str,
    sku: str,
    quantity: int,
    order: str,
    line: str = "1",
    *,
    at: datetime | None = None,
) -> InboundOutcome:
    """An order webhook, its sale stamped `at` (default: now)."""
    event = SaleEvent(
        ref(channel, sku),
        quantity=quantity,
        order_id=order,
        line_id=line,
        occurred_at=at or datetime.now(UTC),
    )
    return await inbound(nexus, channel, [event], key=f"order-{order}-{line}")


async def level(
    nexus: Nexus, channel: str, sku: str, quantity: int, *, at: datetime | None = None, key: str | None = None
) -> InboundOutcome:
    """A level webhook, stamped `at` (default: now, after everything done so far)."""
    event = ObservedLevel(ref(channel, sku), quantity=quantity, observed_at=at or datetime.now(UTC))
    return await inbound(nexus, channel, [event], key=key or f"level-{channel}-{sku}-{quantity}-{at}")


@dataclass(frozen=True)
class State:
    on_hand: int
    reserved: int
    movements: list[StockMovement]
    listings: dict[str, ChannelMapping]

    @property
    def ledger_sum(self) -> int:
        return sum(m.delta for m in self.movements)

    def listing(self, channel: str) -> ChannelMapping:
        return self.listings[channel]

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a change could touch, comparable with ==."""
        return (
            self.on_hand,
            self.reserved,
            tuple((m.idempotency_key, m.delta, m.on_hand_after) for m in self.movements),
            tuple(
                (
                    c,
                    row.desired_qty,
                    row.remote_qty,
                    row.pushed_qty,
                    row.drift_qty,
                    row.dirty_since,
                    row.priority,
                )
                for c, row in sorted(self.listings.items())
            ),
        )


async def state(nexus: Nexus, sku: str) -> State:
    async with nexus.db.read() as session:
        item = (await session.execute(select(Item).where(Item.sku == sku))).scalar_one()
        movements = list(
            (
                await session.execute(
                    select(StockMovement).where(StockMovement.sku == sku).order_by(StockMovement.id)
                )
            ).scalars()
        )
        listings = {
            row.channel: row
            for row in (
                await session.execute(select(ChannelMapping).where(ChannelMapping.sku == sku))
            ).scalars()
        }
    return State(item.on_hand, item.reserved, movements, listings)


def acknowledging(channel: MemoryChannel) -> MemoryChannel:
    """The channel acknowledges every push as sent (stamped with its `stamp`): these tests deliver
    the channel's sales to the engine themselves, so its own levels would only refuse pushes."""
    channel.plan = lambda u: PushResult.ok(u.listing_id, u.quantity, remote_updated_at=channel.stamp)
    return channel


async def build(
    make_nexus: Callable[..., Any], *, compare_and_set: bool = True, **overrides: Any
) -> tuple[Nexus, Mapping[str, MemoryChannel]]:
    """An engine whose channels (default `a` and `b`, default rules) are acknowledging
    MemoryChannels (driver `kit`): batches of 50, precise stamps, no reads."""
    overrides.setdefault("channels", {"a": {"driver": "kit"}, "b": {"driver": "kit"}})
    nexus: Nexus = await make_nexus(**overrides)
    memory = MemoryChannel.factory(
        max_batch_size=50,
        compare_and_set=compare_and_set,
        reads_levels=False,
        stamp_precision=PRECISE.total_seconds(),
    )
    nexus.extend("kit", memory)
    for name in nexus.channel_names():
        nexus.channel(name)
    for channel in memory.channels.values():
        acknowledging(channel)
    return nexus, memory.channels
