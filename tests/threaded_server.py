"""An ASGI app served from its own thread and event loop: every CLI command under test runs (and
closes) an event loop of its own, so a server living in the test's loop would die with it."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from nexus.web.server import serve_app


@contextmanager
def served_in_thread(app: Any, close: Callable[[], Awaitable[None]] | None = None) -> Iterator[str]:
    """Serve `app` on loopback until the block ends; yields its base URL. `close` runs in the
    server's loop after it stopped (a sandbox's aclose)."""
    ready: queue.Queue[str] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with serve_app(app) as server:
            ready.put(server.base_url)
            await asyncio.to_thread(stop.wait)
        if close is not None:
            await close()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    try:
        yield ready.get(timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)
