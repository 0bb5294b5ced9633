"""The dashboard in a real browser: Debian's chromium driven by Playwright, against Nexus served on
loopback with its workers running and a Shopify sandbox store selling over real HTTP.

Chromium and Playwright are required under CI (the CI variable set): missing, the tests fail
there; on a developer machine they are skipped. `.ci/run` installs chromium when it is missing.

NEXUS_SCREENSHOTS=docs/screenshots makes `test_screenshots` write a PNG of every page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.runtime import running
from nexus.sandbox.shopify import ShopifySandbox
from nexus.web.server import serve_app

CHROMIUM = os.environ.get("NEXUS_CHROMIUM", "/usr/bin/chromium")
CHANNEL = "shopify"
OUTLET = "outlet"  # a second Shopify store selling the same stock
SKUS = [f"SKU-{n:06d}" for n in range(1, 13)]
ACCESS_TOKEN = "shpat_dashboard_test"
WEBHOOK_SECRET = "whsec_dashboard_test"
TOPICS = ("orders/create", "inventory_levels/update")
WAIT_MS = 20_000  # Playwright's expect: a generous bound on a condition, never a fixed sleep


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI requires it (.ci/run installs chromium)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def chromium_path() -> str:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _unavailable(f"chromium is not at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@dataclass
class Dashboard:
    nexus: Nexus
    sandbox: ShopifySandbox  # the store of CHANNEL
    store_url: str
    outlet: ShopifySandbox  # the store of OUTLET
    base_url: str
    manage_token: str
    view_token: str
    browser: Any  # playwright.async_api.Browser

    @property
    def url(self) -> str:
        return f"{self.base_url}/nexus/"

    async def page(self, token: str | None = None) -> Any:
        """A new browser page at 1366x768 (a laptop), signed in with `token` when given."""
        context = await self.browser.new_context(viewport={"width": 1366, "height": 768})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.js_errors = errors
        if token is not None:
            await sign_in(page, self.base_url, token)
        return page

    async def dead_letter(self, sku: str) -> int:
        """A dead letter for `sku`: the store refuses its next push with a 400 (terminal)."""
        from nexus.sync.dead_letters import DeadLetterFilter, list_dead_letters

        self.sandbox.fail_next(1, 400)
        await self.nexus.product(sku).adjust(-1, reason="adjustment")
        self.nexus.notify([CHANNEL])

        async def letters() -> list[Any]:
            page = await list_dead_letters(self.nexus.db, DeadLetterFilter(sku=sku))
            return page.items

        await eventually(letters)
        return int((await letters())[0].id)


async def sign_in(page: Any, base_url: str, token: str) -> None:
    from playwright.async_api import expect

    await page.goto(f"{base_url}/nexus/login")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Channels")).to_be_visible(timeout=WAIT_MS)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy (a bound on a condition, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting for a condition"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def linked_stores(
    make_nexus: Callable[..., Any], **worker: Any
) -> AsyncIterator[tuple[Nexus, dict[str, tuple[ShopifySandbox, str]]]]:
    """Two Shopify stores selling the same stock (a sale on one is pushed to the other), their
    catalogs imported."""
    async with contextlib.AsyncExitStack() as stack:
        stores: dict[str, tuple[ShopifySandbox, str]] = {}
        for name in (CHANNEL, OUTLET):
            sandbox = ShopifySandbox(
                shop_domain=f"{name}.myshopify.com",
                access_token=ACCESS_TOKEN,
                webhook_secret=WEBHOOK_SECRET,
                webhook_retry_base_seconds=0.2,
            )
            sandbox.seed_catalog(len(SKUS), quantity=10)
            stack.push_async_callback(sandbox.aclose)
            served = await stack.enter_async_context(serve_app(sandbox.app))
            stores[name] = (sandbox, served.base_url)
        nexus: Nexus = await make_nexus(
            channels={
                name: {
                    "driver": "shopify",
                    "base_url": url,
                    "credentials": {"access_token": ACCESS_TOKEN, "webhook_secret": WEBHOOK_SECRET},
                    "settings": {"location_id": str(sandbox.location_id)},
                }
                for name, (sandbox, url) in stores.items()
            },
            worker={"backoff_base": 0.05, "poll_interval": 0.05, **worker},
        )
        await nexus.add_items(ItemSpec(sku=sku, title=f"Product {sku}", on_hand=10) for sku in SKUS)
        for name in stores:
            await nexus.import_channel(name)
        yield nexus, stores


@pytest.fixture
async def dashboard(make_nexus: Callable[..., Any], chromium_path: str) -> AsyncIterator[Dashboard]:
    from playwright.async_api import async_playwright, expect

    # Every expectation waits for its condition up to WAIT_MS (a loaded CI machine is slow).
    expect.set_options(timeout=WAIT_MS)
    async with (
        linked_stores(make_nexus, probe_interval=0.3, state_ttl=0.1, throttle_threshold=3) as (nexus, stores),
        running(nexus, web=True, port=0) as service,
        async_playwright() as playwright,
    ):
        assert service.base_url is not None
        for name, (sandbox, _) in stores.items():
            for topic in TOPICS:
                sandbox.subscribe(topic, f"{service.base_url}{nexus.settings.webhook_base_path}/{name}")
        _, manage = await nexus.tokens.create("ops", "manage")
        _, view = await nexus.tokens.create("watcher", "view")
        browser = await playwright.chromium.launch(executable_path=chromium_path)
        try:
            yield Dashboard(
                nexus,
                stores[CHANNEL][0],
                stores[CHANNEL][1],
                stores[OUTLET][0],
                service.base_url,
                manage,
                view,
                browser,
            )
        finally:
            await browser.close()
