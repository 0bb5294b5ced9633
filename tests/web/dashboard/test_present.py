"""The dashboard's words: the banner's sentences and the cards' numbers, as a person reads them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from nexus.sync.overview import ChannelCard, WindowRate
from nexus.web.dashboard import present

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
CARD = ChannelCard(
    channel="amazon-eu",
    driver="amazon",
    enabled=True,
    state="connected",
    state_since=None,
    last_error=None,
    paused_by=None,
    pause_reason=None,
    listings=120,
    queued=14,
    dirty=15,
    in_flight=2,
    failed=1,
    dead_letters=1,
    oldest_dirty_seconds=75.0,
    last_sync=NOW - timedelta(seconds=12),
    tokens=30.0,
    capacity=120.0,
    pushes_last_minute=48,
    throttled_last_minute=3,
    throttled_last_hour=17,
)


def test_the_banner_names_a_throttling_channel_and_its_queue() -> None:
    alerts = present.alerts([replace(CARD, state="throttled")])

    assert [(a.level, a.text) for a in alerts] == [
        ("warning", "amazon-eu is throttling requests. 14 listings are queued.")
    ]
    one = present.alerts([replace(CARD, state="throttled", queued=1)])[0]
    assert one.text == "amazon-eu is throttling requests. 1 listing is queued."


def test_the_banner_names_a_disconnected_channel_with_its_error_cut_short() -> None:
    error = "Amazon refused the credentials (HTTP 403): " + "x" * 500
    alert = present.alerts([replace(CARD, state="disconnected", last_error=error)])[0]

    assert alert.level == "error"
    assert alert.text.startswith("amazon-eu is disconnected: Amazon refused the credentials (HTTP 403): xxx")
    assert len(alert.text) < 260
    assert "14 listings waiting" in alert.text


def test_connected_paused_and_disabled_channels_raise_no_alert() -> None:
    cards = [CARD, replace(CARD, state="paused"), replace(CARD, state="throttled", enabled=False)]
    assert present.alerts(cards) == []


def test_a_card_reads_without_colour() -> None:
    fields = present.card_fields(
        replace(CARD, state="throttled", state_since=NOW - timedelta(minutes=3)), NOW
    )

    assert fields["state"] == "▲ Throttled, 3 min ago"
    assert fields["bucket"] == "25% (30 of 120)"
    assert fields["oldest"] == "1 min"
    assert fields["last_sync"] == "12 s ago"
    assert fields["throttled"] == "3 (last hour: 17)"
    assert present.card_fields(replace(CARD, tokens=None), NOW)["bucket"] == "unknown"
    assert (
        present.card_fields(replace(CARD, last_sync=None, oldest_dirty_seconds=None), NOW)["last_sync"]
        == "never"
    )
    paused = present.card_fields(replace(CARD, state="paused", paused_by="token:ops", state_since=NOW), NOW)
    assert paused["state"] == "❚❚ Paused by token:ops, <1 s ago"


def test_spans_and_rates_as_a_person_rounds_them() -> None:
    assert [present.duration(s) for s in (0.2, 42, 180, 7500, 3 * 86400 + 4 * 3600)] == [
        "<1 s",
        "42 s",
        "3 min",
        "2 h 5 min",
        "3 d 4 h",
    ]
    assert present.rate(WindowRate(1244, 1234)) == "99.2% (1,234 of 1,244)"
    assert present.rate(WindowRate(0, 0)) == "no pushes"
