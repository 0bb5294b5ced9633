"""The webhook log: search by channel, topic, signature verdict and remote id, page through it,
open one delivery whole (secrets masked)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from playwright.async_api import expect
from tests.web.dashboard.conftest import CHANNEL, SKUS, WEBHOOK_SECRET, Dashboard, eventually

from nexus.domain.vocabulary import WebhookStatus
from nexus.webhooks.log import WebhookFilter, list_webhooks

FORGED = 51  # one more than a page


async def test_searching_the_webhook_log(dashboard: Dashboard) -> None:
    nexus = dashboard.nexus
    address = f"{dashboard.base_url}{nexus.settings.webhook_base_path}/{CHANNEL}"
    async with httpx.AsyncClient() as client:
        for sku in SKUS[:2]:
            sold = await client.post(
                f"{dashboard.store_url}/_sandbox/sales", json={"sku": sku, "quantity": 1}
            )
            assert sold.status_code == 201
        # Deliveries nobody signed with our secret: refused at the door, kept in the log.
        for n in range(FORGED):
            forged = await client.post(
                address,
                content=b'{"id": 1}',
                headers={
                    "X-Shopify-Topic": "orders/create",
                    "X-Shopify-Hmac-Sha256": "bm90LWEtc2lnbmF0dXJl",
                    "X-Shopify-Webhook-Id": f"forged-{n}",
                },
            )
            assert forged.status_code == 401

    async def orders() -> list[object]:
        where = WebhookFilter(channel=CHANNEL, topic="orders/create", status=WebhookStatus.PROCESSED)
        return (await list_webhooks(nexus.db, where)).items

    processed = await eventually(lambda: _at_least(orders, 2))
    remote_id = processed[0].delivery_id
    assert remote_id

    page = await dashboard.page(dashboard.manage_token)
    await page.get_by_role("link", name="Webhook log").click()
    await expect(page.get_by_test_id("webhook-total")).to_contain_text("in the last 30 days")

    # The 30-day view: a bar a day; today's holds the sales' deliveries and the forged ones.
    days = page.get_by_role("figure")
    await expect(days).to_contain_text(f"{FORGED} rejected")
    await expect(days.locator("svg a")).to_have_count(30)
    await days.locator("svg a").last.click()
    today = datetime.now(UTC).date().isoformat()
    await expect(page.get_by_test_id("webhook-total")).to_contain_text(f"from {today} to {today}")
    await expect(page.get_by_role("search").get_by_label("From")).to_have_value(today)

    search = page.get_by_role("search")
    await search.get_by_label("Channel").select_option(CHANNEL)
    await search.get_by_label("Topic").fill("orders/create")
    await search.get_by_label("Signature").select_option("passed")
    await search.get_by_role("button", name="Search").click()
    rows = page.locator("table.list tbody tr")
    await expect(page.get_by_test_id("webhook-total")).to_contain_text("2 deliveries")
    await expect(rows).to_have_count(2)
    for n in range(2):
        await expect(rows.nth(n)).to_contain_text("✔ PASSED")
        await expect(rows.nth(n)).to_contain_text("processed")
        await expect(rows.nth(n)).to_contain_text(" ms")  # how long processing took

    # The forged ones: FAILED in words, over two pages.
    await search.get_by_label("Topic").fill("")
    await search.get_by_label("Signature").select_option("failed")
    await search.get_by_role("button", name="Search").click()
    await expect(page.get_by_test_id("webhook-total")).to_contain_text(f"{FORGED} deliveries")
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_contain_text("✖ FAILED")
    await expect(rows.first).to_contain_text("rejected")
    await expect(page.locator(".pager")).to_contain_text(f"1\N{EN DASH}50 of {FORGED}")
    await page.get_by_role("link", name="Older →").click()
    await expect(page.locator(".pager")).to_contain_text(f"51\N{EN DASH}51 of {FORGED}")
    await expect(rows).to_have_count(1)
    await expect(search.get_by_label("Signature")).to_have_value("failed")  # the search is kept

    # By the channel's own delivery id, then the delivery whole.
    await page.goto(f"{dashboard.base_url}/nexus/webhook-log")
    await search.get_by_label("Remote id").fill(remote_id)
    await search.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await rows.first.get_by_role("link").click()
    await expect(page.get_by_role("heading", name="Webhook delivery")).to_be_visible()
    await expect(page.locator("dl.facts")).to_contain_text(remote_id)
    body = await page.content()
    assert WEBHOOK_SECRET not in body
    assert "x-shopify-hmac-sha256" in body.lower()  # the header is listed, its value masked
    assert page.js_errors == []


async def _at_least(read: object, count: int) -> list[object]:
    items = await read()  # type: ignore[operator]
    return items if len(items) >= count else []
