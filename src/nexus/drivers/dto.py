"""Data that crosses the boundary between the engine and a driver.

Frozen dataclasses: a driver translates them to and from its channel's wire format and never
touches the database. `channel_meta` keeps whatever the channel sent that Nexus does not model,
so nothing a later feature needs is thrown away at import time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from nexus.errors import ChannelAuthError, ChannelError, QuotaExhausted, TransientError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class NexusVariant:
    """One sellable unit on a channel: the thing that carries a stock level."""

    remote_id: str
    sku: str | None
    title: str
    quantity: int | None = None
    barcode: str | None = None
    price: Decimal | None = None
    # The id a channel's stock endpoints use when it differs from the variant id
    # (a Shopify InventoryItem); equal to remote_id where the channel has no such split.
    inventory_id: str | None = None
    channel_meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NexusProduct:
    """A channel's product, normalised. `variants` always has at least one entry."""

    remote_id: str
    title: str
    variants: tuple[NexusVariant, ...]
    channel_meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def local_sku(self) -> str | None:
        return self.variants[0].sku if len(self.variants) == 1 else None

    @property
    def barcode(self) -> str | None:
        return self.variants[0].barcode if len(self.variants) == 1 else None

    @property
    def quantity_available(self) -> int:
        return sum(v.quantity or 0 for v in self.variants)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class NexusInventoryUpdate:
    """One listing's quantity to set on a channel.

    `change_from` is the quantity Nexus believes the channel shows now; a driver whose channel
    supports compare-and-set sends it so the channel refuses the write if it sold something
    meanwhile. None means "no check" (the listing was never read or pushed).
    """

    listing_id: int
    sku: str
    remote_id: str
    quantity: int
    change_from: int | None = None
    inventory_id: str | None = None
    channel_meta: Mapping[str, Any] = field(default_factory=dict)


class PushStatus(enum.Enum):
    OK = "ok"
    STALE = "stale"  # compare-and-set refused: the channel's level moved since we last knew it
    RETRY = "retry"
    TERMINAL = "terminal"
    # The channel refused the credentials: the channel is disconnected, the listing stays dirty
    # (no attempt used, no dead letter) until a probe finds the credentials working again.
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True)
class PushResult:
    """The outcome of pushing one listing. Build it with the class methods."""

    listing_id: int
    status: PushStatus
    quantity: int | None = None  # OK: the acknowledged quantity; STALE: the channel's current level
    remote_updated_at: datetime | None = None  # the channel's own timestamp of that quantity
    retry_after: float | None = None
    error: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    # False when the request was never sent (our own bucket said wait): no attempt is used up.
    counts_as_attempt: bool = True

    @classmethod
    def ok(cls, listing_id: int, quantity: int, *, remote_updated_at: datetime | None = None) -> PushResult:
        return cls(listing_id, PushStatus.OK, quantity=quantity, remote_updated_at=remote_updated_at)

    @classmethod
    def stale(cls, listing_id: int, current: int, *, remote_updated_at: datetime | None = None) -> PushResult:
        return cls(listing_id, PushStatus.STALE, quantity=current, remote_updated_at=remote_updated_at)

    @classmethod
    def retry(
        cls,
        listing_id: int,
        error: str,
        *,
        retry_after: float | None = None,
        counts_as_attempt: bool = True,
    ) -> PushResult:
        return cls(
            listing_id,
            PushStatus.RETRY,
            retry_after=retry_after,
            error=error,
            counts_as_attempt=counts_as_attempt,
        )

    @classmethod
    def terminal(cls, listing_id: int, error: str, *, detail: Mapping[str, Any] | None = None) -> PushResult:
        return cls(listing_id, PushStatus.TERMINAL, error=error, detail=detail or {})

    @classmethod
    def unauthorized(
        cls, listing_id: int, error: str, *, detail: Mapping[str, Any] | None = None
    ) -> PushResult:
        return cls(
            listing_id, PushStatus.UNAUTHORIZED, error=error, detail=detail or {}, counts_as_attempt=False
        )

    @classmethod
    def from_error(cls, listing_id: int, error: Exception, *, prefix: str = "") -> PushResult:
        """The one mapping of a failed request to a listing's result: transient errors are
        retried (honouring the channel's Retry-After; a wait our own bucket imposed was never
        sent, so it uses no attempt), refused credentials (`ChannelAuthError`) disconnect the
        channel, other terminal ones are dead-lettered with what the channel said."""
        message = f"{prefix}{error}"
        if isinstance(error, TransientError):
            return cls.retry(
                listing_id,
                message,
                retry_after=error.retry_after,
                counts_as_attempt=not isinstance(error, QuotaExhausted),
            )
        detail: dict[str, Any] = {}
        if isinstance(error, ChannelError):
            if error.status is not None:
                detail["status"] = error.status
            if error.payload is not None:
                detail["response"] = error.payload
        if isinstance(error, ChannelAuthError):
            return cls.unauthorized(listing_id, message, detail=detail)
        return cls.terminal(listing_id, message, detail=detail)
