"""The batch monitor, and every page rendered in the browser at a laptop's size with no script
error and nothing refused by the pages' Content-Security-Policy.

NEXUS_SCREENSHOTS=docs/screenshots pytest tests/web/dashboard/test_pages.py writes a PNG of each
page there (the README's "Dashboard" section shows them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect
from tests.web.dashboard.conftest import CHANNEL, OUTLET, SKUS, WAIT_MS, Dashboard, eventually

from nexus.sync.dead_letters import DeadLetterFilter, list_dead_letters

SCREENSHOTS = os.environ.get("NEXUS_SCREENSHOTS")


async def shot(page: Any, name: str) -> None:
    path = screenshot_path(name)
    if path is not None:
        if name != "login":  # the footer says "on" once the first live update came
            live = page.locator("#live-status")
            await expect(live).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        await page.screenshot(path=path)


def screenshot_path(name: str) -> str | None:
    if not SCREENSHOTS:
        return None
    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    return str(Path(SCREENSHOTS) / f"{name}.png")


async def failed_batch(dashboard: Dashboard) -> str:
    """A catalog sync to the main store whose first push request the store refuses (400): the
    listings it carried fail for good, the rest go through."""
    dashboard.sandbox.fail_next(1, 400)
    batch_id = await dashboard.nexus.catalog().sync_all([CHANNEL])
    dashboard.nexus.notify([CHANNEL])
    await dashboard.nexus.batch(batch_id).wait(timeout=20)

    async def letters() -> int:
        page = await list_dead_letters(dashboard.nexus.db, DeadLetterFilter(batch=batch_id))
        return page.total

    await eventually(letters)
    return batch_id


async def test_the_batch_monitor_shows_progress_and_retries_failed_members(dashboard: Dashboard) -> None:
    batch_id = await failed_batch(dashboard)
    failed = (await list_dead_letters(dashboard.nexus.db, DeadLetterFilter(batch=batch_id))).total
    page = await dashboard.page(dashboard.manage_token)

    await page.get_by_role("link", name="Batches").click()
    row = page.locator(f'tr[data-batch="{batch_id}"]')
    await expect(row).to_contain_text(f"{len(SKUS)} of {len(SKUS)}")
    await expect(row).to_contain_text(f"{failed} failed")
    await expect(row.locator("progress")).to_have_attribute("value", str(len(SKUS)))

    await row.get_by_role("link").click()
    drawer = page.get_by_role("complementary")
    await expect(drawer).to_contain_text(f"Failed members still open ({failed})")
    await expect(drawer.locator("tbody tr")).to_have_count(failed)
    await drawer.get_by_role("button", name="Retry the failed members").click()
    await expect(page.get_by_role("status").filter(has_text="Done:")).to_contain_text(
        f"{failed} failed member"
    )
    # The retried listings are pushed and their letters resolve; the drawer says none are open.
    await expect(page.locator('nav [data-live-total="dead_letters"]')).to_have_text("0", timeout=WAIT_MS)

    async def none_open() -> bool:
        where = DeadLetterFilter(batch=batch_id)
        return (await list_dead_letters(dashboard.nexus.db, where)).total == 0

    await eventually(none_open)
    await page.reload()
    await expect(page.get_by_role("complementary")).to_contain_text("Failed members still open (0)")
    assert dashboard.sandbox.levels() == {sku: 10 for sku in SKUS}
    assert page.js_errors == []


async def test_every_page_renders(dashboard: Dashboard) -> None:
    nexus = dashboard.nexus
    batch_id = await failed_batch(dashboard)
    async with httpx.AsyncClient() as client:
        for sku in SKUS[:4]:
            sale = {"sku": sku, "quantity": 1}
            assert (await client.post(f"{dashboard.store_url}/_sandbox/sales", json=sale)).status_code == 201
        await client.post(
            f"{dashboard.base_url}{nexus.settings.webhook_base_path}/{CHANNEL}",
            content=b"{}",
            headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": "Zm9yZ2Vk"},
        )
    letter = (await list_dead_letters(nexus.db, DeadLetterFilter(batch=batch_id))).items[0]
    await eventually(lambda: _pushed(dashboard))

    page = await dashboard.page()
    await page.goto(f"{dashboard.base_url}/nexus/login")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await shot(page, "login")
    await page.get_by_label("API token").fill(dashboard.manage_token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    # The outlet store is throttling (as the throttle monitor records it): the banner shows.
    await nexus.channel_states.throttled(OUTLET, True)
    await expect(page.locator("#alerts")).to_contain_text("is throttling requests", timeout=WAIT_MS)
    await shot(page, "overview")

    pages = {
        "batches": (f"/nexus/batches?open={batch_id}", "Batches"),
        "webhook-log": ("/nexus/webhook-log", "Webhook log"),
        "dead-letters": ("/nexus/dead-letters", "Dead letters"),
        "dead-letter": (f"/nexus/dead-letters/{letter.id}", f"Dead letter {letter.id}"),
        "audit": ("/nexus/audit", "Push audit"),
        "health": ("/nexus/health", "Health"),
    }
    for name, (path, heading) in pages.items():
        await page.goto(f"{dashboard.base_url}{path}")
        await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        await expect(page.locator("#alerts")).to_contain_text("is throttling requests")
        # Laid out for a laptop: nothing wider than the window.
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        await shot(page, name)
    first = page.locator("table.list tbody tr").first
    await page.goto(f"{dashboard.base_url}/nexus/webhook-log?channel={CHANNEL}&topic=orders/create")
    await first.get_by_role("link").click()
    await expect(page.get_by_role("heading", name="Webhook delivery")).to_be_visible()
    await shot(page, "webhook")
    await page.goto(f"{dashboard.base_url}/nexus/health")
    health = page.locator(f'tr[data-channel="{CHANNEL}"]')
    await expect(health).to_contain_text("%")
    assert page.js_errors == []


async def _pushed(dashboard: Dashboard) -> bool:
    return dashboard.outlet.levels()[SKUS[0]] == 9


async def test_pausing_holds_a_batch_and_its_progress_follows_live_after_resuming(
    dashboard: Dashboard,
) -> None:
    page = await dashboard.page(dashboard.manage_token)
    card = page.locator(f'article.card[data-channel="{CHANNEL}"]')
    await card.get_by_role("button", name="Pause").click()
    await expect(page.get_by_role("status").filter(has_text="Done:")).to_contain_text(f"{CHANNEL} is paused")
    await expect(card.locator('[data-field="state"]')).to_contain_text("❚❚ Paused by token:ops")

    batch_id = await dashboard.nexus.catalog().sync_all([CHANNEL])
    await page.get_by_role("link", name="Batches").click()
    row = page.locator(f'tr[data-batch="{batch_id}"]')
    await expect(row).to_contain_text(f"0 of {len(SKUS)}")
    await expect(row).to_contain_text("running")

    await dashboard.nexus.channel_states.resume(CHANNEL, actor="token:ops")
    await expect(row).to_contain_text(
        f"{len(SKUS)} of {len(SKUS)} ({len(SKUS)} pushed, 0 failed)", timeout=WAIT_MS
    )
    await expect(row).to_contain_text("completed", timeout=WAIT_MS)
    assert await row.locator("progress").evaluate("bar => bar.value") == len(SKUS)
    assert page.js_errors == []
