"""The alert banner: a throttling or disconnected channel is announced on every page, live, in
words (not by colour alone), and the banner clears when the channel recovers."""

from __future__ import annotations

import httpx
from playwright.async_api import expect
from tests.web.dashboard.conftest import CHANNEL, SKUS, WAIT_MS, Dashboard, eventually


async def test_the_throttle_banner_appears_while_a_store_answers_429s(dashboard: Dashboard) -> None:
    page = await dashboard.page(dashboard.manage_token)
    banner = page.locator("#alerts")
    card = page.locator(f'article.card[data-channel="{CHANNEL}"]')
    await expect(banner).to_be_empty()

    # The store refuses every request for a while (bare 429s with a Retry-After), while the
    # stock of every SKU changes: the listings queue up behind the refusals.
    dashboard.sandbox.fail_next(40, 429, retry_after=0.1)
    for sku in SKUS:
        await dashboard.nexus.product(sku).adjust(-1, reason="adjustment")
    dashboard.nexus.notify([CHANNEL])

    alert = banner.locator(f'.alert[data-channel="{CHANNEL}"]')
    await expect(alert).to_contain_text(f"Warning: {CHANNEL} is throttling requests.", timeout=WAIT_MS)
    await expect(alert).to_contain_text("listings are queued")
    await expect(card.locator('[data-field="state"]')).to_contain_text("▲ Throttled")
    await expect(card).to_have_attribute("data-state", "throttled")

    # On another page too.
    await page.get_by_role("link", name="Health").click()
    await expect(alert).to_contain_text("is throttling requests", timeout=WAIT_MS)

    # The refusals end, a push goes through: the banner clears by itself.
    dashboard.sandbox.heal()
    await expect(banner.locator(".alert")).to_have_count(0, timeout=WAIT_MS)
    assert page.js_errors == []


async def test_a_disconnected_channel_shows_the_banner_until_its_credentials_work(
    dashboard: Dashboard,
) -> None:
    page = await dashboard.page(dashboard.manage_token)
    banner = page.locator("#alerts")
    card = page.locator(f'article.card[data-channel="{CHANNEL}"]')

    # The merchant revokes the app's token (the sandbox's control route, as the demo prints it).
    async with httpx.AsyncClient() as client:
        broke = await client.post(f"{dashboard.store_url}/_sandbox/credentials", json={"valid": False})
        assert broke.json() == {"valid": False}
        await dashboard.nexus.product(SKUS[0]).adjust(-1, reason="adjustment")
        dashboard.nexus.notify([CHANNEL])

        alert = banner.locator(f'.alert[data-channel="{CHANNEL}"]')
        await expect(alert).to_contain_text(f"Error: {CHANNEL} is disconnected:", timeout=WAIT_MS)
        await expect(alert).to_contain_text("1 listing waiting")
        await expect(card.locator('[data-field="state"]')).to_contain_text("✖ Disconnected")
        await expect(card.locator('[data-field="queued"]')).to_have_text("1")

        fixed = await client.post(f"{dashboard.store_url}/_sandbox/credentials", json={"valid": True})
        assert fixed.json() == {"valid": True}

    # A probe finds the token works again: connected, the waiting listing pushed, no banner.
    await expect(banner.locator(".alert")).to_have_count(0, timeout=WAIT_MS)
    await expect(card.locator('[data-field="state"]')).to_have_text("● Connected", timeout=WAIT_MS)
    await expect(card.locator('[data-field="queued"]')).to_have_text("0", timeout=WAIT_MS)
    await eventually(lambda: _shows(dashboard, SKUS[0], 9))
    assert page.js_errors == []


async def _shows(dashboard: Dashboard, sku: str, quantity: int) -> bool:
    return dashboard.sandbox.levels()[sku] == quantity
