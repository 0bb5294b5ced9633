"""The API's request bodies and answers as pydantic models, so that the OpenAPI document
describes every answer. The services build plain dicts (`as_dict()`); these models validate and
document them, they compute nothing (except a batch's progress, a pure function of its counts)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from nexus.domain.vocabulary import MovementReason

T = TypeVar("T")
MAX_ID = 2**63 - 1  # the largest row id either backend stores

SKU = Field(min_length=1, max_length=255)


class Out(BaseModel):
    """An answer: extra keys a service may add later are dropped, not an error."""

    model_config = ConfigDict(extra="ignore")


class In(BaseModel):
    """A request body: an unknown key is a mistake (a misspelt filter must not widen a bulk action)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError(NUL_PROBLEM)
        return data


NUL_PROBLEM = "text may not contain NUL characters (PostgreSQL cannot store or compare them)"


def has_nul(value: Any) -> bool:
    """Whether a NUL character is in `value` or anywhere inside it (keys too)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(item) for item in value)
    return False


# -- errors and pages -----------------------------------------------------------------------


class ErrorDetail(Out):
    code: str = Field(description="stable, for scripts: not_found, unfiltered, idempotency_conflict, ...")
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ErrorOut(Out):
    error: ErrorDetail


class Page(Out, Generic[T]):
    items: list[T]
    total: int = Field(description="how many match, over every page")
    limit: int
    offset: int
    next_offset: int | None = Field(description="the offset of the next page; null on the last")


# -- items, stock and ledger ----------------------------------------------------------------


class ItemOut(Out):
    sku: str
    title: str
    barcode: str | None
    on_hand: int
    reserved: int
    available: int
    updated_at: datetime


class ItemListingOut(Out):
    channel: str
    listing_id: int
    desired: int = Field(description="what the channel should show")
    remote: int | None = Field(description="what Nexus believes the channel shows; null: unknown")
    in_sync: bool
    last_error: str | None


class ItemDetailOut(ItemOut):
    listings: list[ItemListingOut]


class ItemCreateIn(In):
    sku: str = SKU
    title: str = Field("", max_length=512)
    barcode: str | None = Field(None, max_length=64)
    on_hand: int = Field(0, ge=0, le=2**31 - 1, description="starting stock, booked in the ledger")


class QuantityIn(In):
    on_hand: int = Field(
        ge=0, le=2**31 - 1, description="the new on-hand count; the ledger books the difference"
    )
    reason: MovementReason = MovementReason.ADJUSTMENT
    reference: str | None = Field(None, max_length=255)


class AdjustmentIn(In):
    delta: int = Field(ge=-(2**31), le=2**31 - 1, description="units to add (negative to remove); not 0")
    reason: MovementReason = MovementReason.ADJUSTMENT
    reference: str | None = Field(None, max_length=255)

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment of 0 changes nothing")
        return value


class MovementOut(Out):
    """One ledger movement; `on_hand_after` is the running total."""

    id: int
    sku: str
    delta: int
    on_hand_after: int
    reason: str
    channel: str | None
    reference: str | None
    created_at: datetime


class StockChangeOut(Out):
    """The movement a stock change booked. A repeated Idempotency-Key answers the first one again."""

    sku: str
    movement_id: int
    delta: int
    previous_on_hand: int
    on_hand: int
    reason: str
    reference: str | None
    created_at: datetime


# -- listings -------------------------------------------------------------------------------


class ListingOut(Out):
    id: int
    sku: str
    channel: str
    remote_id: str
    desired: int
    believed: int | None
    dirty: bool
    dirty_since: datetime | None
    failed: bool
    failed_at: datetime | None
    in_flight: bool
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_synced_at: datetime | None
    batch_id: str | None


class ForcePushOut(Out):
    listing: ListingOut
    rounds: int = Field(description="push rounds run; 0 when another worker held the listing")
    in_sync: bool


# -- channels -------------------------------------------------------------------------------


class ChannelCardOut(Out):
    channel: str
    driver: str
    enabled: bool
    state: Literal["connected", "throttled", "paused", "disconnected"]
    state_since: datetime | None
    last_error: str | None
    paused_by: str | None
    pause_reason: str | None
    listings: int
    queued: int = Field(description="listings waiting for a push (dirty, not dead-lettered)")
    dirty: int
    in_flight: int
    failed: int
    dead_letters: int
    oldest_dirty_seconds: float | None
    last_sync: datetime | None
    tokens: float | None = Field(description="the rate bucket's level now")
    capacity: float | None = Field(description="the rate bucket's size")
    pushes_last_minute: int
    throttled_last_minute: int
    throttled_last_hour: int


class WindowRateOut(Out):
    pushed: int
    succeeded: int
    rate: float | None = Field(description="succeeded / pushed; null when nothing was pushed")


class HealthRatesOut(Out):
    channel: str
    hour: WindowRateOut
    day: WindowRateOut
    week: WindowRateOut


class ChannelDetailOut(ChannelCardOut):
    rates: HealthRatesOut


class ChannelStateOut(Out):
    channel: str
    state: Literal["connected", "throttled", "paused", "disconnected"]
    since: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    paused_by: str | None
    pause_reason: str | None
    next_probe_at: datetime | None
    queued: int = Field(description="listings of the channel waiting for a push")


class PauseIn(In):
    reason: str | None = Field(None, max_length=500)


# -- sync and batches -----------------------------------------------------------------------


class SyncIn(In):
    channels: list[str] | None = Field(None, min_length=1, description="default: every enabled channel")
    skus: list[str] | None = Field(None, min_length=1, max_length=10_000, description="default: every SKU")


class SyncOut(Out):
    batch_id: str
    channels: list[str]


class BatchOut(Out):
    id: str
    trigger: str
    status: str
    total: int
    processed: int
    failed: int
    pending: int
    created_at: datetime
    completed_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def progress(self) -> float:
        """Finished members (pushed or failed) over all members; 1.0 for an empty batch."""
        return 1.0 if self.total == 0 else (self.processed + self.failed) / self.total


class PushRequestsOut(Out):
    requests: int
    listings: int
    succeeded: int


# -- dead letters ---------------------------------------------------------------------------


class DeadLetterOut(Out):
    id: int
    channel: str
    sku: str | None
    listing_id: int | None
    status: str
    error: str
    attempts: int
    quantity: int | None
    failed_at: datetime
    resolved_at: datetime | None


class HistoryEntryOut(Out):
    from_status: str | None
    status: str
    actor: str
    reason: str | None
    at: datetime


class DeadListingOut(Out):
    id: int
    sku: str
    channel: str
    desired: int
    believed: int | None
    verify_pending: bool
    dirty: bool
    failed: bool
    attempts: int
    last_error: str | None
    last_synced_at: datetime | None


class DeadLetterDetailOut(DeadLetterOut):
    job_kind: str
    payload: dict[str, Any] = Field(description="what the failed push sent, secrets masked")
    history: list[HistoryEntryOut]
    listing: DeadListingOut | None


class BatchDetailOut(BatchOut):
    dead_letters: Page[DeadLetterOut] = Field(description="the batch's open dead letters (first 100)")
    push_requests: PushRequestsOut


class DeadLetterSelectionIn(In):
    """EITHER `ids` OR a filter with at least one criterion: nothing acts on every dead letter."""

    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(None, max_length=10_000)
    channel: str | None = None
    sku: str | None = None
    error: str | None = Field(None, description="a case-insensitive part of the error")
    older_than: float | None = Field(None, gt=0, le=10 * 365 * 86400, description="seconds since it failed")
    batch: str | None = None
    note: str | None = Field(None, max_length=500, description="recorded in the letters' history")


class ReplayOut(Out):
    replaying: list[int]
    gone: list[int] = Field(description="letters whose listing was deleted: resolved, nothing to push")
    channels: list[str]


class ResolveOut(Out):
    resolved: list[int]
    already: list[int]


# -- webhooks, audit, conflicts, actions ----------------------------------------------------


class WebhookOut(Out):
    id: int
    channel: str
    topic: str | None
    status: str
    http_status: int
    verified: bool
    attempts: int
    delivery_id: str | None
    event_id: str | None
    size: int
    received_at: datetime
    processed_at: datetime | None
    error: str | None


class WebhookDetailOut(WebhookOut):
    headers: dict[str, Any] = Field(description="as received, secret-looking values masked")
    body: str = Field(description="the raw body as text, up to body_limit bytes")
    truncated: bool
    duration_ms: float | None


class ReprocessOut(Out):
    id: int
    status: str
    error: str | None


class PushAuditOut(Out):
    id: int
    channel: str
    batch_id: str | None
    count: int
    succeeded: int
    status: str
    duration_ms: float
    error: str | None
    payload: dict[str, Any] = Field(description="what was sent and what came back, secrets masked")
    created_at: datetime


class ConflictOut(Out):
    id: int
    channel: str
    sku: str
    listing_id: int | None
    believed: int | None
    observed: int
    desired: int
    created_at: datetime


class ConflictResolveIn(In):
    take: Literal["nexus", "channel"] = Field(
        description="nexus: push what Nexus wants; channel: book the level the channel showed"
    )


class ConflictResolveOut(Out):
    id: int
    take: str
    booked: int = Field(description="units booked in the ledger (0 when none)")
    sku: str | None
    on_hand: int | None


class ActionOut(Out):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any] | None
