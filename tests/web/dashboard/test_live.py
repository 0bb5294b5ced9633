"""The overview follows the sync live (server-sent events): no reload needed to see it move."""

from __future__ import annotations

import httpx
from playwright.async_api import expect
from tests.web.dashboard.conftest import CHANNEL, OUTLET, SKUS, WAIT_MS, Dashboard


async def test_channel_cards_update_live_while_a_store_sells(dashboard: Dashboard) -> None:
    page = await dashboard.page(dashboard.manage_token)
    outlet = page.locator(f'article.card[data-channel="{OUTLET}"]')
    await expect(outlet.locator('[data-field="pushes"]')).to_have_text("0")
    await expect(outlet.locator('[data-field="last_sync"]')).to_have_text("never")
    await expect(outlet.locator('[data-field="state"]')).to_have_text("● Connected")
    await page.evaluate("window.notReloaded = true")

    # Customers buy on the main store (its storefront, over HTTP); Nexus books the sales from
    # the store's webhooks and pushes the lower stock to the outlet store.
    async with httpx.AsyncClient() as client:
        for sku in SKUS[:3]:
            sale = {"sku": sku, "quantity": 2}
            sold = await client.post(f"{dashboard.store_url}/_sandbox/sales", json=sale)
            assert sold.status_code == 201

    await expect(outlet.locator('[data-field="pushes"]')).to_have_text("3", timeout=WAIT_MS)
    await expect(outlet.locator('[data-field="last_sync"]')).to_contain_text("ago", timeout=WAIT_MS)
    assert await page.evaluate("window.notReloaded === true"), "the page must not have reloaded"
    assert dashboard.outlet.levels()[SKUS[0]] == 8
    await expect(page.locator(f'article.card[data-channel="{CHANNEL}"]')).to_be_visible()
    assert page.js_errors == []
