from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.sync.sync_kit import Engine, register


@pytest.fixture
def make_engine(make_nexus: Callable[..., Any]) -> Callable[..., Any]:
    """A migrated Nexus on MemoryChannel (tests/sync/sync_kit.py); channels `m` and `n`."""

    async def build(*, driver: dict[str, Any] | None = None, **overrides: Any) -> Engine:
        overrides.setdefault("channels", {"m": {"driver": "mem"}, "n": {"driver": "mem"}})
        nexus = await make_nexus(**overrides)
        return Engine(nexus, register(nexus, **(driver or {})))

    return build
