"""The event loop a `nexus` command runs on.

uvloop where it is installed (the `uvicorn[standard]` extra Nexus depends on brings it on Linux
and macOS; uvicorn's own `loop="auto"` makes the same choice), else asyncio's. On uvloop the
webhook route answers ~15-20 % more deliveries per second (docs/benchmarks.md, section 2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None (asyncio's default) where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `loop_factory` chooses."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
