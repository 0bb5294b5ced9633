"""How a `nexus` command sets up its process: the event loop it runs on, and the heap a
long-running service freezes once started."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable
from typing import Any

import pytest

from nexus import eventloop, runtime


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_commands_run_on_uvloop_where_it_is_installed() -> None:
    pytest.importorskip("uvloop")  # not built for every platform (Windows)
    from nexus.cli.main import _run  # the one place a `nexus` command starts its loop

    assert _run(_loop_module).startswith("uvloop")


def test_without_uvloop_commands_run_on_asyncios_own_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` now raises ImportError
    assert eventloop.run(_loop_module()).startswith("asyncio")


def test_freezing_the_startup_heap_takes_it_out_of_the_collectors_walk() -> None:
    gc.unfreeze()
    try:
        runtime.freeze_startup_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_a_serving_process_freezes_its_heap_once_started(
    make_nexus: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    nexus = await make_nexus()
    started = asyncio.Event()
    monkeypatch.setattr(runtime, "freeze_startup_heap", started.set)
    serving = asyncio.create_task(
        runtime.serve_forever(nexus, web=True, workers=False, host="127.0.0.1", port=0)
    )
    try:
        await asyncio.wait_for(started.wait(), 10)
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
