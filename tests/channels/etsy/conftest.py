"""Fixtures of the Etsy driver tests: a sandbox shop served on loopback per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from etsy_testkit import SHOP_ID, Shop, serve_shop

from nexus.sandbox.etsy import EtsySandbox


@pytest.fixture
def sandbox_options() -> dict[str, Any]:
    return {}


@pytest.fixture
async def shop(sandbox_options: dict[str, Any]) -> AsyncIterator[Shop]:
    async with serve_shop(EtsySandbox(seed=1, shop_id=SHOP_ID, **sandbox_options)) as served:
        yield served


@pytest.fixture
def make_shop() -> Callable[..., AbstractAsyncContextManager[Shop]]:
    """For a test that builds its sandbox with its own knobs: `async with make_shop(...) as shop`."""

    def build(**options: Any) -> AbstractAsyncContextManager[Shop]:
        return serve_shop(EtsySandbox(seed=1, shop_id=SHOP_ID, **options))

    return build
