"""How the dashboard words and formats what the services return: the same strings for the page
as first rendered and for every live update (`/nexus/events`), so the two never disagree.

Nothing is said by colour alone: each state, verdict and alert carries its word (and a symbol),
and the colour only repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nexus.sync.overview import ChannelCard, WindowRate
from nexus.webhooks.log import WebhookDay

STATE_LABELS = {
    "connected": ("●", "Connected"),
    "throttled": ("▲", "Throttled"),
    "paused": ("❚❚", "Paused"),
    "disconnected": ("✖", "Disconnected"),
}

# The push audit's outcomes (nexus.sync.audit), each with a symbol so a row reads without colour.
OUTCOMES = {
    "ok": "✔ ok",
    "partial": "◐ partial",
    "failed": "✖ failed",
    "retry": "↻ retry",
    "stale": "≠ stale",
}

BRIEF_ERROR = 160  # characters of a channel's last error the banner shows


def ago(value: datetime | None, now: datetime) -> str:
    """`12 s ago`, `3 min ago`; `never` for None."""
    if value is None:
        return "never"
    return f"{duration((now - _aware(value)).total_seconds())} ago"


def duration(seconds: float | None) -> str:
    """A person's rounding of a span: `<1 s`, `42 s`, `3 min`, `2 h 5 min`, `3 d 4 h`; `—` for None."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 1:
        return "<1 s"
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def stamp(value: datetime | None) -> str:
    """`2026-12-03 08:12:39 UTC`; every stored time is UTC."""
    if value is None:
        return "—"
    return _aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def count(value: int, noun: str) -> str:
    """`1 listing`, `14 listings`."""
    return f"{value} {noun}" if value == 1 else f"{value} {noun}s"


def rate(window: WindowRate) -> str:
    """`99.2% (1,234 of 1,244)`, or `no pushes`."""
    if window.rate is None:
        return "no pushes"
    return f"{window.rate * 100:.1f}% ({window.succeeded:,} of {window.pushed:,})"


def outcome(status: str) -> str:
    return OUTCOMES.get(status, status)


def state_label(state: str) -> str:
    symbol, label = STATE_LABELS.get(state, ("?", state.title()))
    return f"{symbol} {label}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One line of the banner. `level`: `warning` (throttled, paused) or `error` (disconnected)."""

    channel: str
    level: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"channel": self.channel, "level": self.level, "text": self.text}


def alerts(cards: list[ChannelCard]) -> list[Alert]:
    """The banner: each channel that is throttled or disconnected (paused: a person chose it,
    and the card says so; the banner is for what nobody chose)."""
    found = []
    for card in cards:
        if not card.enabled:
            continue
        if card.state == "throttled":
            text = (
                f"{card.channel} is throttling requests. "
                f"{count(card.queued, 'listing')} {'is' if card.queued == 1 else 'are'} queued."
            )
            found.append(Alert(card.channel, "warning", text))
        elif card.state == "disconnected":
            error = (card.last_error or "the channel refused the credentials").strip()
            if len(error) > BRIEF_ERROR:
                error = error[: BRIEF_ERROR - 1] + "…"
            found.append(
                Alert(
                    card.channel,
                    "error",
                    f"{card.channel} is disconnected: {error}. "
                    f"{count(card.queued, 'listing')} waiting; Nexus retries on its own.",
                )
            )
    return found


def bucket_fill(card: ChannelCard) -> float | None:
    """The token bucket's fill, 0..1; None when unknown."""
    if card.tokens is None or not card.capacity:
        return None
    return max(0.0, min(1.0, card.tokens / card.capacity))


def card_fields(card: ChannelCard, now: datetime) -> dict[str, str]:
    """Every text a channel card shows, by the `data-field` name the page and its script use."""
    fill = bucket_fill(card)
    if fill is None:
        bucket = "unknown"
    else:
        assert card.tokens is not None and card.capacity is not None
        bucket = f"{fill * 100:.0f}% ({card.tokens:,.0f} of {card.capacity:,.0f})"
    state = state_label(card.state)
    if card.state == "paused" and card.paused_by:
        state += f" by {card.paused_by}"
    if card.state_since is not None and card.state != "connected":
        state += f", {ago(card.state_since, now)}"
    return {
        "state": state,
        "bucket": bucket,
        "queued": f"{card.queued:,}",
        "in_flight": f"{card.in_flight:,}",
        "failed": f"{card.failed:,}",
        "dead_letters": f"{card.dead_letters:,}",
        "listings": f"{card.listings:,}",
        "oldest": duration(card.oldest_dirty_seconds)
        if card.oldest_dirty_seconds is not None
        else "none waiting",
        "last_sync": ago(card.last_sync, now),
        "pushes": f"{card.pushes_last_minute:,}",
        "throttled": f"{card.throttled_last_minute:,} (last hour: {card.throttled_last_hour:,})",
    }


def card_payload(card: ChannelCard, now: datetime) -> dict[str, Any]:
    return {"state": card.state, "bucket": bucket_fill(card), "fields": card_fields(card, now)}


PROBLEMS = ("failed", "rejected")  # the statuses the 30-day view draws apart
CHART_HEIGHT = 60.0


def day_chart(days: list[WebhookDay]) -> dict[str, Any]:
    """The webhook log's 30-day view: a bar per day (its height the day's deliveries, the part
    that failed or was rejected drawn apart), each with its numbers in words for its tooltip and
    for readers without colour, and a sentence that sums it up."""
    busiest = max((day.total for day in days), default=0)
    bars = []
    for index, day in enumerate(days):
        problems = sum(day.counts.get(status, 0) for status in PROBLEMS)
        height = CHART_HEIGHT * day.total / busiest if busiest else 0.0
        bad = CHART_HEIGHT * problems / busiest if busiest else 0.0
        words = ", ".join(f"{number:,} {status}" for status, number in sorted(day.counts.items()))
        bars.append(
            {
                "x": index * 20 + 2,
                "y": round(CHART_HEIGHT - height, 2),
                "height": round(height, 2),
                "bad_y": round(CHART_HEIGHT - bad, 2),
                "bad": round(bad, 2),
                "day": day.day.isoformat(),
                "title": f"{day.day.isoformat()}: {words or 'no deliveries'}",
            }
        )
    total = sum(day.total for day in days)
    by_status: dict[str, int] = {}
    for day in days:
        for status, number in day.counts.items():
            by_status[status] = by_status.get(status, 0) + number
    summary = f"{total:,} deliveries in {len(days)} days"
    if by_status:
        summary += ": " + ", ".join(f"{number:,} {status}" for status, number in sorted(by_status.items()))
    return {"bars": bars, "width": len(days) * 20, "height": CHART_HEIGHT, "summary": summary}


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
