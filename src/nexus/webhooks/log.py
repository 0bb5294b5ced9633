"""The webhook log as a person reads it: list stored deliveries, show one, process some again.

These functions are what `nexus webhooks` calls; they hold the SQL, the CLI none. A shown
delivery's headers have every secret-looking value masked (`nexus.masking.mask_secrets`: the
signature headers among them) and its body is cut at `body_limit` bytes.

Reprocessing sends a stored delivery through `WebhookProcessor` again, from its stored bytes:
the row goes back to `received` and one attempt runs now. It is idempotent: sales are booked
under a key made of the delivery's row (`apply_inbound`'s `delivery_key`), so a sale booked the
first time is not booked twice, and a level is judged by the same belief rules as any reading.
Rejected deliveries (refused at the door: bad signature, too large) were never verified and are
never processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, or_, select, update

from nexus.domain.vocabulary import WebhookStatus
from nexus.errors import NexusError
from nexus.jsonable import jsonable
from nexus.masking import mask_secrets
from nexus.paging import OffsetPage
from nexus.storage.database import Database
from nexus.storage.models import WebhookLog, utcnow

if TYPE_CHECKING:
    from nexus.engine import Nexus

BODY_LIMIT = 4096  # bytes of a body `show` returns


class WebhookLogError(NexusError):
    """A webhook-log request that cannot be done (an unknown id, reprocessing a rejected delivery)."""


class UnknownWebhookError(WebhookLogError):
    """No stored delivery has that id."""


@dataclass(frozen=True, slots=True)
class WebhookFilter:
    """Which deliveries: every criterion given must hold; `since`: received at most that long ago;
    `remote_id`: the channel's delivery or event id; `received_from`/`received_to`: a date range
    (from inclusive, to exclusive)."""

    channel: str | None = None
    status: WebhookStatus | None = None
    topic: str | None = None
    since: timedelta | None = None
    verified: bool | None = None
    remote_id: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None

    def conditions(self, now: datetime) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.channel is not None:
            conditions.append(WebhookLog.channel == self.channel)
        if self.status is not None:
            conditions.append(WebhookLog.status == str(self.status))
        if self.topic is not None:
            conditions.append(WebhookLog.topic == self.topic)
        if self.since is not None:
            conditions.append(WebhookLog.received_at >= now - self.since)
        if self.verified is not None:
            conditions.append(WebhookLog.verified.is_(self.verified))
        if self.remote_id is not None:
            conditions.append(
                or_(WebhookLog.delivery_id == self.remote_id, WebhookLog.event_id == self.remote_id)
            )
        if self.received_from is not None:
            conditions.append(WebhookLog.received_at >= self.received_from)
        if self.received_to is not None:
            conditions.append(WebhookLog.received_at < self.received_to)
        return conditions


@dataclass(frozen=True, slots=True)
class WebhookView:
    id: int
    channel: str
    topic: str | None
    status: str
    http_status: int
    verified: bool
    attempts: int
    delivery_id: str | None
    event_id: str | None
    size: int  # bytes of the body
    received_at: datetime
    processed_at: datetime | None
    error: str | None
    duration_ms: float | None = None  # how long processing took (the dashboard's log shows it)

    def as_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True, slots=True)
class WebhookDetail:
    delivery: WebhookView
    headers: dict[str, Any]  # secrets masked
    body: str  # the first `body_limit` bytes, as text (undecodable bytes replaced)
    truncated: bool
    duration_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.delivery.as_dict(),
            "headers": self.headers,
            "body": self.body,
            "truncated": self.truncated,
            "duration_ms": self.duration_ms,
        }


WebhookPage = OffsetPage[WebhookView]


@dataclass(frozen=True, slots=True)
class ReprocessResult:
    """What one attempt of each delivery came to: its status afterwards (`processed`, `failed`,
    or `received` when it is deferred or due for a retry), and its error if any."""

    statuses: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "statuses": {str(key): value for key, value in self.statuses.items()},
            "errors": {str(key): value for key, value in self.errors.items()},
        }


def _view(row: WebhookLog) -> WebhookView:
    return WebhookView(
        id=row.id,
        channel=row.channel,
        topic=row.topic,
        status=str(row.status),
        http_status=row.http_status,
        verified=row.verified,
        attempts=row.attempts,
        delivery_id=row.delivery_id,
        event_id=row.event_id,
        size=len(row.body or b""),
        received_at=row.received_at,
        processed_at=row.processed_at,
        error=row.error,
        duration_ms=row.duration_ms,
    )


async def list_webhooks(
    db: Database,
    where: WebhookFilter | None = None,
    *,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> WebhookPage:
    """A page of stored deliveries matching `where`, newest first."""
    if limit < 1 or offset < 0:
        raise WebhookLogError(f"limit must be at least 1 and offset at least 0 (got {limit}, {offset})")
    conditions = (where or WebhookFilter()).conditions(now or utcnow())
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(WebhookLog).where(*conditions))
        statement = (
            select(WebhookLog)
            .where(*conditions)
            .order_by(WebhookLog.received_at.desc(), WebhookLog.id.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [_view(row) for row in (await session.execute(statement)).scalars()]
    return WebhookPage(items, int(total or 0), offset, limit)


@dataclass(frozen=True, slots=True)
class WebhookDay:
    """Deliveries received on one UTC day, by status."""

    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def webhook_days(
    db: Database, *, days: int = 30, channel: str | None = None, now: datetime | None = None
) -> list[WebhookDay]:
    """Deliveries per UTC day and status over the last `days` days, today included, oldest
    first; a day without any is there with no counts (the dashboard's 30-day view)."""
    if days < 1:
        raise WebhookLogError(f"days must be at least 1 (got {days})")
    now = now or utcnow()
    first = (now.astimezone(UTC) - timedelta(days=days - 1)).date()
    # The stored times are UTC; PostgreSQL's date() of a timestamptz would use the session's zone.
    column = WebhookLog.received_at
    day = func.date(column) if db.is_sqlite else func.date(func.timezone("UTC", column))
    conditions = [column >= datetime.combine(first, time(), tzinfo=UTC)]
    if channel is not None:
        conditions.append(WebhookLog.channel == channel)
    counts: dict[date, dict[str, int]] = {first + timedelta(days=n): {} for n in range(days)}
    async with db.read() as session:
        rows = await session.execute(
            select(day, WebhookLog.status, func.count()).where(*conditions).group_by(day, WebhookLog.status)
        )
        for value, status, number in rows.all():
            # SQLite answers text, PostgreSQL a date.
            on = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
            if on in counts:
                counts[on][str(status)] = int(number)
    return [WebhookDay(on, counts[on]) for on in sorted(counts)]


async def show_webhook(db: Database, log_id: int, *, body_limit: int = BODY_LIMIT) -> WebhookDetail:
    async with db.read() as session:
        row = await session.get(WebhookLog, log_id)
        if row is None:
            raise UnknownWebhookError(f"no webhook delivery {log_id}")
        body = row.body or b""
        return WebhookDetail(
            delivery=_view(row),
            headers=mask_secrets(dict(row.headers or {})),
            body=body[:body_limit].decode("utf-8", errors="replace"),
            truncated=len(body) > body_limit,
            duration_ms=row.duration_ms,
        )


async def reprocess_webhooks(nexus: Nexus, ids: Sequence[int]) -> ReprocessResult:
    """Process the stored deliveries `ids` again, now (one attempt each). Every id must exist and
    none may be `rejected`; otherwise nothing changes."""
    from nexus.webhooks.processor import WebhookProcessor  # it imports the engine's world

    wanted = list(dict.fromkeys(ids))
    if not wanted:
        raise WebhookLogError("reprocess needs at least one webhook delivery id")
    async with nexus.db.transaction() as session:
        rows = {
            row.id: row
            for row in (await session.execute(select(WebhookLog).where(WebhookLog.id.in_(wanted)))).scalars()
        }
        missing = [str(log_id) for log_id in wanted if log_id not in rows]
        if missing:
            raise UnknownWebhookError(f"no webhook delivery {', '.join(missing)}")
        rejected = [str(log_id) for log_id in wanted if rows[log_id].status == WebhookStatus.REJECTED]
        if rejected:
            raise WebhookLogError(
                f"webhook delivery {', '.join(rejected)} was rejected at the door (never verified): "
                "it cannot be processed"
            )
        for channel in sorted({row.channel for row in rows.values()}):
            nexus.channel(channel)  # a channel that cannot be built is named now, nothing changed yet
        await session.execute(
            update(WebhookLog)
            .where(WebhookLog.id.in_(wanted))
            .values(status=WebhookStatus.RECEIVED, attempts=0, next_attempt_at=None, error=None)
            .execution_options(synchronize_session=False)
        )
    await WebhookProcessor(nexus).process_many(wanted)
    result = ReprocessResult()
    async with nexus.db.read() as session:
        statement = select(WebhookLog.id, WebhookLog.status, WebhookLog.error).where(
            WebhookLog.id.in_(wanted)
        )
        for log_id, status, error in (await session.execute(statement)).all():
            result.statuses[log_id] = str(status)
            if error:
                result.errors[log_id] = error
    return result
