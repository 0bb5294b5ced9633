"""Signing in and out of the dashboard with an API token."""

from __future__ import annotations

from playwright.async_api import expect
from tests.web.dashboard.conftest import WAIT_MS, Dashboard


async def test_a_token_signs_in_and_out_and_a_wrong_one_does_not(dashboard: Dashboard) -> None:
    page = await dashboard.page()

    # Closed by default: the overview sends a stranger to the sign-in page.
    await page.goto(dashboard.url)
    await expect(page).to_have_url(f"{dashboard.base_url}/nexus/login?next=%2Fnexus%2F")

    await page.get_by_label("API token").fill("nxs_not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    assert "nxs_not-a-token" not in await page.content()  # never echoed back

    await page.get_by_label("API token").fill(dashboard.manage_token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Channels")).to_be_visible()
    await expect(page.locator("header.top")).to_contain_text("ops (manage)")
    await expect(page.locator('article.card[data-channel="shopify"]')).to_be_visible()
    cookies = await page.context.cookies()
    session = next(cookie for cookie in cookies if cookie["name"] == "nexus_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert dashboard.manage_token not in await page.content()

    # The live stream is on (the footer says when it last heard from the server).
    await expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=WAIT_MS)

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await page.goto(f"{dashboard.base_url}/nexus/dead-letters")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_a_stranger_is_sent_to_sign_in_and_changes_nothing(dashboard: Dashboard) -> None:
    page = await dashboard.page()
    for path in (
        "/nexus/dead-letters",
        "/nexus/webhook-log",
        "/nexus/audit",
        "/nexus/health",
        "/nexus/batches",
    ):
        answer = await page.request.get(f"{dashboard.base_url}{path}", max_redirects=0)
        assert answer.status == 303 and answer.headers["location"].startswith("/nexus/login?next=")
    answer = await page.request.post(
        f"{dashboard.base_url}/nexus/channels/shopify/pause", form={"csrf": "x"}, max_redirects=0
    )
    assert answer.status == 303 and answer.headers["location"] == "/nexus/login?next=%2Fnexus%2F"
    assert (await dashboard.nexus.channel_states.get("shopify", fresh=True)).state.value == "connected"
    events = await page.request.get(f"{dashboard.base_url}/nexus/events")
    assert events.status == 401
