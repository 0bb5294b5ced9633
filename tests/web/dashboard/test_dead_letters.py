"""The dead-letter manager: replay from the browser and see the count drop; only `manage` may,
and only with the session's CSRF token."""

from __future__ import annotations

from playwright.async_api import expect
from tests.web.dashboard.conftest import CHANNEL, SKUS, WAIT_MS, Dashboard, eventually

from nexus.access.actions import list_actions
from nexus.domain.vocabulary import DeadLetterStatus
from nexus.sync.dead_letters import show_dead_letter


async def test_replaying_a_dead_letter_drops_the_count(dashboard: Dashboard) -> None:
    letter_id = await dashboard.dead_letter(SKUS[0])
    page = await dashboard.page(dashboard.manage_token)
    card = page.locator(f'article.card[data-channel="{CHANNEL}"]')
    await expect(card.locator('[data-field="dead_letters"]')).to_have_text("1")

    await page.get_by_role("link", name="Dead letters").click()
    badge = page.locator('nav [data-live-total="dead_letters"]')
    await expect(badge).to_have_text("1")
    await expect(page.get_by_test_id("letter-total")).to_contain_text("1 dead letter (open)")
    row = page.locator(f'tr[data-letter="{letter_id}"]')
    await expect(row).to_contain_text(SKUS[0])
    await expect(row).to_contain_text("failed")

    await row.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Replay selected").click()

    await expect(page.get_by_role("status").filter(has_text="Done:")).to_contain_text(
        "1 dead letter queued for a push"
    )
    # The worker pushes the listing's current level; the letter resolves and the count drops,
    # live, without a reload.
    await expect(badge).to_have_text("0", timeout=WAIT_MS)

    async def resolved() -> bool:
        letter = (await show_dead_letter(dashboard.nexus.db, letter_id)).letter
        return letter.status == DeadLetterStatus.RESOLVED

    await eventually(resolved)
    detail = await show_dead_letter(dashboard.nexus.db, letter_id)
    assert ("replaying", "token:ops") in [(entry.status, entry.actor) for entry in detail.history]
    actions, _ = await list_actions(dashboard.nexus.db)
    assert [(a.actor, a.action, a.target) for a in actions] == [
        ("token:ops", "dead_letters.replay", f"dead letters {letter_id}")
    ]
    assert dashboard.sandbox.levels()[SKUS[0]] == 9
    await page.get_by_role("link", name="Overview").click()
    await expect(card.locator('[data-field="dead_letters"]')).to_have_text("0")
    assert page.js_errors == []


async def test_a_view_token_cannot_replay(dashboard: Dashboard) -> None:
    letter_id = await dashboard.dead_letter(SKUS[1])
    page = await dashboard.page(dashboard.view_token)
    await expect(page.locator("header.top")).to_contain_text("watcher (view)")

    await page.goto(f"{dashboard.base_url}/nexus/dead-letters")
    await expect(page.locator(f'tr[data-letter="{letter_id}"]')).to_be_visible()
    await expect(page.get_by_role("checkbox")).to_have_count(0)
    await expect(page.get_by_role("button", name="Replay selected")).to_have_count(0)
    await expect(page.get_by_role("button", name="Resolve selected")).to_have_count(0)
    await page.goto(f"{dashboard.base_url}/nexus/dead-letters/{letter_id}")
    await expect(page.get_by_role("heading", name=f"Dead letter {letter_id}")).to_be_visible()
    await expect(page.get_by_role("button", name="Replay")).to_have_count(0)
    await page.goto(dashboard.url)
    await expect(page.get_by_role("button", name="Pause")).to_have_count(0)

    # A forged POST, with the session cookie and even the session's own CSRF token: refused.
    csrf = await page.locator('form[action="/nexus/logout"] input[name="csrf"]').input_value()
    answer = await page.request.post(
        f"{dashboard.base_url}/nexus/dead-letters/replay", form={"csrf": csrf, "id": str(letter_id)}
    )
    assert answer.status == 403
    assert "view role" in await answer.text()
    detail = await show_dead_letter(dashboard.nexus.db, letter_id)
    assert detail.letter.status == DeadLetterStatus.FAILED


async def test_a_form_post_without_the_csrf_token_is_refused(dashboard: Dashboard) -> None:
    letter_id = await dashboard.dead_letter(SKUS[2])
    page = await dashboard.page(dashboard.manage_token)

    for form in ({"id": str(letter_id)}, {"id": str(letter_id), "csrf": "not-the-token"}):
        answer = await page.request.post(f"{dashboard.base_url}/nexus/dead-letters/replay", form=form)
        assert answer.status == 403
        assert "CSRF" in await answer.text()
    answer = await page.request.post(f"{dashboard.base_url}/nexus/channels/{CHANNEL}/pause", form={})
    assert answer.status == 403
    detail = await show_dead_letter(dashboard.nexus.db, letter_id)
    assert detail.letter.status == DeadLetterStatus.FAILED
    assert (await dashboard.nexus.channel_states.get(CHANNEL, fresh=True)).state.value == "connected"
