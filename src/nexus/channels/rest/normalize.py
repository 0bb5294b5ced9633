"""One item of the REST channel's list answer as a `NexusProduct` (one product, one variant),
read through the dotted paths the settings name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nexus.channels.rest import paths
from nexus.channels.rest.settings import RestSettings
from nexus.drivers.dto import NexusProduct, NexusVariant
from nexus.errors import TerminalChannelError


def product_from_item(item: Mapping[str, Any], settings: RestSettings) -> NexusProduct:
    remote_id = text(paths.get(item, settings.id_path))
    if remote_id is None:
        raise TerminalChannelError(f"an item has nothing at id_path {settings.id_path!r}", payload=item)
    title = text(paths.get(item, settings.title_path)) or remote_id
    quantity = paths.get(item, settings.quantity_path)
    variant = NexusVariant(
        remote_id=remote_id,
        sku=text(paths.get(item, settings.sku_path)),
        title=title,
        quantity=quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None,
        barcode=text(paths.get(item, settings.barcode_path)) if settings.barcode_path else None,
    )
    return NexusProduct(remote_id=remote_id, title=title, variants=(variant,))


def text(value: object) -> str | None:
    """A string or integer at a path as stripped text; None for missing, empty or other types."""
    if value is paths.MISSING or value is None or isinstance(value, bool):
        return None
    if isinstance(value, str | int):
        stripped = str(value).strip()
        return stripped or None
    return None
