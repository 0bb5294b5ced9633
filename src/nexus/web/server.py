"""Run an ASGI app on loopback inside the current event loop (a real socket, real HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from nexus.errors import AddressInUseError


@dataclass
class LoopbackServer:
    base_url: str
    port: int
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def serve_app(app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[LoopbackServer]:
    """Serve `app` until the block exits. Port 0 picks a free port, reported in `base_url`."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted connections of a socket
    # whose protocol is TCP, and without it a kept-alive response's body waits ~40 ms for the
    # client's delayed ACK (uvicorn writes headers and body separately).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUseError(
                f"port {port} on {host} is already in use (another nexus serve?): stop it or give --port"
            ) from None
        raise AddressInUseError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_port = sock.getsockname()[1]
    # No access log (a line per request); log_config=None: uvicorn's records go to the handler
    # nexus.observability.logs installed (JSON with log_format = "json"), not to its own.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the start-up error
            await asyncio.sleep(0.01)
        yield LoopbackServer(base_url=f"http://{host}:{bound_port}", port=bound_port, server=server)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
