"""Items and listings: creating SKUs, linking them to a channel's products, importing a channel."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nexus.domain.allocation import Allocator
from nexus.domain.stock import refresh_desired
from nexus.domain.vocabulary import MovementReason
from nexus.drivers.dto import NexusProduct, NexusVariant
from nexus.storage.models import ChannelMapping, Item, StockMovement, utcnow

ITEM_TYPE = "nexus_item"


@dataclass(frozen=True, slots=True)
class ItemSpec:
    sku: str
    title: str = ""
    barcode: str | None = None
    on_hand: int = 0


@dataclass(slots=True)
class ImportReport:
    channel: str
    products: int = 0
    variants: int = 0
    linked: int = 0
    relinked: int = 0
    matched_by_barcode: int = 0
    unmatched: list[tuple[str, str | None, str]] = field(default_factory=list)  # (remote id, sku, title)


async def add_items(session: AsyncSession, specs: Sequence[ItemSpec]) -> int:
    """Create the SKUs that do not exist yet; their starting stock enters the ledger like any change."""
    existing = set(
        (await session.execute(select(Item.sku).where(Item.sku.in_([s.sku for s in specs])))).scalars()
    )
    now = utcnow()
    created = 0
    for spec in specs:
        if spec.sku in existing:
            continue
        existing.add(spec.sku)
        session.add(
            Item(sku=spec.sku, title=spec.title, barcode=spec.barcode, on_hand=spec.on_hand, version=1)
        )
        if spec.on_hand:
            session.add(
                StockMovement(
                    sku=spec.sku,
                    delta=spec.on_hand,
                    on_hand_after=spec.on_hand,
                    reason=MovementReason.RESTOCK,
                    reference="initial stock",
                    idempotency_key=f"initial:{spec.sku}",
                    created_at=now,
                )
            )
        created += 1
    return created


async def link_variants(
    session: AsyncSession,
    channel: str,
    products: Iterable[NexusProduct],
    allocator: Allocator,
    report: ImportReport,
) -> None:
    """Link each remote variant to the local SKU with the same SKU, else the same barcode."""
    variants = [(product, variant) for product in products for variant in product.variants]
    report.products += len({product.remote_id for product, _ in variants})
    report.variants += len(variants)
    skus = [v.sku for _, v in variants if v.sku]
    barcodes = [v.barcode for _, v in variants if v.barcode]
    items_by_sku = {
        i.sku: i for i in (await session.execute(select(Item).where(Item.sku.in_(skus)))).scalars()
    }
    items_by_barcode = {
        i.barcode: i
        for i in (await session.execute(select(Item).where(Item.barcode.in_(barcodes)))).scalars()
    }
    item_ids = [str(i.id) for i in (*items_by_sku.values(), *items_by_barcode.values())]
    existing = {
        m.syncable_id: m
        for m in (
            await session.execute(
                select(ChannelMapping).where(
                    ChannelMapping.channel == channel,
                    ChannelMapping.syncable_type == ITEM_TYPE,
                    ChannelMapping.syncable_id.in_(item_ids),
                )
            )
        ).scalars()
    }
    for product, variant in variants:
        item = items_by_sku.get(variant.sku) if variant.sku else None
        if item is None and variant.barcode:
            item = items_by_barcode.get(variant.barcode)
            if item is not None:
                report.matched_by_barcode += 1
        if item is None:
            report.unmatched.append((variant.remote_id, variant.sku, f"{product.title} / {variant.title}"))
            continue
        mapping = existing.get(str(item.id))
        if mapping is None:
            mapping = ChannelMapping(
                syncable_type=ITEM_TYPE,
                syncable_id=str(item.id),
                sku=item.sku,
                channel=channel,
                desired_qty=0,
                drift_qty=0,
                inflight_delta=0,
                attempts=0,
                priority=1,
            )
            session.add(mapping)
            existing[str(item.id)] = mapping
            report.linked += 1
        else:
            report.relinked += 1
        _copy_remote(mapping, product, variant)
        refresh_desired([mapping], item, allocator)


def _copy_remote(mapping: ChannelMapping, product: NexusProduct, variant: NexusVariant) -> None:
    mapping.remote_id = variant.remote_id
    mapping.remote_inventory_id = variant.inventory_id or variant.remote_id
    mapping.remote_sku = variant.sku
    mapping.channel_meta = {"product_id": product.remote_id, **dict(variant.channel_meta)}
    if variant.quantity is not None and mapping.lease_owner is None:
        mapping.remote_qty = variant.quantity
