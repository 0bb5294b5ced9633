"""Helpers for the domain tests: seed items and listings, apply inbound events, read state back.

A plain module with a unique name (not conftest.py): pytest puts this directory on sys.path for
the test files in it, so they import it directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from nexus.domain.belief import Semantics
from nexus.domain.catalog import ImportReport, ItemSpec, add_items, link_variants
from nexus.domain.inbound import InboundOutcome, apply_inbound
from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    ListingRef,
    ObservedLevel,
    RateLimitConfig,
    SaleEvent,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, NexusVariant, Page, PushResult
from nexus.engine import Nexus
from nexus.errors import UnknownDriverError
from nexus.storage.models import ChannelMapping, Item, StockMovement

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


class KitDriver(InventoryDriver):
    """A channel that acknowledges every push, optionally holding it open until `gate` is set."""

    name = "kit"

    def __init__(self, context: ChannelContext, *, compare_and_set: bool = True) -> None:
        self.context = context
        self.capabilities = DriverCapabilities(
            max_batch_size=50, compare_and_set=compare_and_set, stamp_precision=PRECISE.total_seconds()
        )
        self.pushes: list[list[NexusInventoryUpdate]] = []
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self.stamp: datetime | None = None  # the channel's own timestamp of the quantities it acknowledges

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        self.pushes.append(list(updates))
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return [PushResult.ok(u.listing_id, u.quantity, remote_updated_at=self.stamp) for u in updates]

    def rate_limit_config(self) -> RateLimitConfig:
        return RateLimitConfig(1_000, 1_000)

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        raise NotImplementedError

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        raise NotImplementedError

    async def verify_webhook(self, request: WebhookRequest) -> None:
        raise NotImplementedError

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        raise NotImplementedError

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        raise NotImplementedError


async def build(
    make_nexus: Callable[..., Any], *, compare_and_set: bool = True, **overrides: Any
) -> tuple[Nexus, dict[str, KitDriver]]:
    """An engine whose channels (default `a` and `b`, default rules) use KitDriver."""
    overrides.setdefault("channels", {"a": {"driver": "kit"}, "b": {"driver": "kit"}})
    nexus: Nexus = await make_nexus(**overrides)
    drivers: dict[str, KitDriver] = {}

    def factory(context: ChannelContext) -> KitDriver:
        drivers[context.name] = KitDriver(context, compare_and_set=compare_and_set)
        return drivers[context.name]

    nexus.extend("kit", factory)
    for name in nexus.channel_names():
        nexus.channel(name)
    return nexus, drivers
