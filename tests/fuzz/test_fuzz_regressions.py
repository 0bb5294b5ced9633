"""The failures the webhook fuzzers found, one small deterministic test each (kept after the fix)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from nexus.channels.shopify import create_driver as create_shopify
from nexus.channels.wire import parse_timestamp
from tests.channels.shopify.shopify_testkit import delivery, make_context, raw


def test_an_iso_time_whose_utc_instant_leaves_the_calendar_is_no_time() -> None:
    # Valid ISO 8601, but 1 January of year 1 at 00:00 +01:00 is in year 0 in UTC: astimezone
    # raised OverflowError, which the receiver answered with a 500.
    assert parse_timestamp("0001-01-01T00:00:00+01:00") is None
    assert parse_timestamp("9999-12-31T23:59:59-01:00") is None
    assert parse_timestamp("2026-11-21T05:00:00-05:00") == datetime(2026, 11, 21, 10, tzinfo=UTC)


def test_a_shopify_delivery_triggered_before_year_one_is_described() -> None:
    driver = create_shopify(make_context(httpx.AsyncClient(), settings={"location_id": 24826418}))
    request = delivery(
        "inventory_levels/update",
        raw("inventory_levels_update.json"),
        extra={"x-shopify-triggered-at": "0001-01-01T00:00:00+01:00"},
    )
    assert driver.describe_webhook(request).triggered_at is None
    [level] = driver.parse_webhook(request)
    assert level.quantity == 8
