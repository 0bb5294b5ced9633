"""A scripted channel for the deterministic consistency scenarios: the real write path, inbound
rules and push worker, against a MemoryChannel whose level, compare-and-set and stamps the test sets.

A plain module with a unique name (not conftest.py): pytest puts this directory on sys.path for
the test files in it (tests/consistency stays no package: soak.py runs beside it as a script).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from nexus.domain.catalog import ImportReport, ItemSpec, add_items, link_variants
from nexus.domain.inbound import InboundOutcome, apply_inbound
from nexus.drivers.contract import ChannelContext, InboundEvent, ListingRef, ObservedLevel, SaleEvent
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, NexusVariant, PushResult, PushStatus
from nexus.engine import Nexus
from nexus.storage.models import ChannelMapping, Item, StockMovement
from nexus.testing import MemoryChannel

SKU = "S"
REMOTE_ID = "v"


class ScriptedChannel(MemoryChannel):
    """One listing (remote id "v") on a MemoryChannel. `stamp`: the time the channel puts on a
    push's answer (None: it stamps nothing, like Amazon); levels and orders are delivered by the
    test, stamped. `sale_in_flight`: a buyer's sale landing while our next push is on its way,
    just before it applies."""

    name = "scripted"

    def __init__(
        self,
        context: ChannelContext,
        *,
        compare_and_set: bool,
        sales_from_orders: bool = True,
        stamp_precision: float = 1.0,
        levels_book_sales: bool | None = None,
    ) -> None:
        super().__init__(
            context,
            max_batch_size=10,
            compare_and_set=compare_and_set,
            sales_from_orders=sales_from_orders,
            stamp_precision=stamp_precision,
            levels_book_sales=levels_book_sales,
            reads_levels=True,
        )
        self.levels[REMOTE_ID] = 0
        self.applied_at: datetime | None = None  # when the last push landed, on the channel's clock
        self.sale_in_flight = 0
        self.sold_in_flight_at: datetime | None = None

    @property
    def level(self) -> int:
        return self.levels[REMOTE_ID]

    @level.setter
    def level(self, quantity: int) -> None:
        self.levels[REMOTE_ID] = quantity

    @property
    def pushes(self) -> list[NexusInventoryUpdate]:
        return self.pushed

    def sell(self, quantity: int = 1) -> int:
        """A buyer takes units on the channel; returns the level it now shows."""
        return self.simulate_sale(REMOTE_ID, quantity)

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        if self.sale_in_flight:
            self.sell(self.sale_in_flight)
            self.sold_in_flight_at, self.sale_in_flight = datetime.now(UTC), 0
        results = await super().push_inventory(updates)
        if any(result.status is PushStatus.OK for result in results):
            self.applied_at = datetime.now(UTC)
        return results


class Scenario:
    def __init__(self, nexus: Nexus, channel: ScriptedChannel) -> None:
        self.nexus = nexus
        self.channel = channel
        self._deliveries = 0

    @classmethod
    async def start(cls, make_nexus: Any, on_hand: int, **channel_options: Any) -> Scenario:
        nexus: Nexus = await make_nexus(channels={"c": {"driver": "scripted"}})
        scripted = ScriptedChannel.factory(**channel_options)
        nexus.extend("scripted", scripted)
        nexus.channel("c")
        channel = scripted["c"]
        channel.level = on_hand
        async with nexus.db.transaction() as session:
            await add_items(session, [ItemSpec(SKU, title=SKU, on_hand=on_hand)])
            await session.flush()
            variant = NexusVariant(remote_id=REMOTE_ID, sku=SKU, title="", quantity=on_hand)
            product = NexusProduct(remote_id="p", title=SKU, variants=(variant,))
            await link_variants(session, "c", [product], nexus.allocator, ImportReport("c"))
        return cls(nexus, channel)

    async def deliver(self, *events: InboundEvent) -> InboundOutcome:
        self._deliveries += 1
        async with self.nexus.db.transaction() as session:
            outcome = await apply_inbound(
                session,
                "c",
                list(events),
                self.nexus.allocator,
                delivery_key=f"d{self._deliveries}",
                semantics=self.nexus.channel("c").semantics,
            )
        await self.nexus.after_changes(outcome.changes)
        return outcome

    async def level(self, quantity: int, at: datetime) -> InboundOutcome:
        return await self.deliver(ObservedLevel(ListingRef(remote_id="v"), quantity, observed_at=at))

    async def order(self, order_id: str, quantity: int, at: datetime) -> InboundOutcome:
        sale = SaleEvent(ListingRef(remote_id="v"), quantity, order_id, "1", occurred_at=at)
        return await self.deliver(sale)

    async def push(self) -> None:
        await self.nexus.push_worker("c").run_once()

    async def settle(self, rounds: int = 10) -> int:
        """Push until nothing is left to push; returns how many rounds it took."""
        for done in range(rounds):
            if await self.nexus.push_worker("c").run_once() is None:
                return done
        raise AssertionError(f"still pushing after {rounds} rounds")

    async def on_hand(self) -> int:
        async with self.nexus.db.read() as session:
            return (await session.execute(select(Item.on_hand).where(Item.sku == SKU))).scalar_one()

    async def listing(self) -> ChannelMapping:
        async with self.nexus.db.read() as session:
            return (await session.execute(select(ChannelMapping))).scalar_one()

    async def booked(self) -> list[tuple[str, int]]:
        """Every movement after the starting stock: (reason, delta)."""
        async with self.nexus.db.read() as session:
            rows = (await session.execute(select(StockMovement).order_by(StockMovement.id))).scalars()
            return [(m.reason, m.delta) for m in rows if not m.idempotency_key.startswith("initial:")]


def second(at: datetime, offset: float = 0.0) -> datetime:
    """A whole-second channel stamp."""
    return (at + timedelta(seconds=offset)).replace(microsecond=0)


def now() -> datetime:
    return datetime.now(UTC)
