"""The sandboxes in a process of their own, for the benchmarks that measure Nexus's process alone
(memory, propagation, scale-out): the benchmark script runs itself with `--serve-sandboxes CONFIG`,
which answers one JSON line per JSON command on stdin (its first line says where the stores are)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any


class SandboxProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, script: Path, config: dict[str, Any]
    ) -> AsyncIterator[tuple[SandboxProcess, dict[str, Any]]]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            "--serve-sandboxes",
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 26,  # an answer may list every store's levels
        )
        me = cls(process)
        try:
            yield me, await me.read()
        finally:
            with contextlib.suppress(Exception):
                await me.ask({"cmd": "quit"}, answer=False)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def ask(self, command: dict[str, Any], *, answer: bool = True) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        return await self.read() if answer else {}
