"""What `nexus demo` prints while it keeps serving: the dashboard's address with a working
`manage` token, and the commands that break and restore a store's credentials."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from collections.abc import Callable
from typing import Any

from rich.console import Console

from nexus.access.tokens import Role
from nexus.sandbox.demo_channels import DemoSettings, build
from nexus.sandbox.demo_dashboard import print_credentials, show_dashboard, stop_on_interrupt


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=300, color_system=None), out


async def test_the_demo_prints_the_dashboard_and_a_manage_token(make_nexus: Callable[..., Any]) -> None:
    nexus = await make_nexus()
    printer, out = console()

    secret = await show_dashboard(nexus, "http://127.0.0.1:8123", printer)

    assert "http://127.0.0.1:8123/nexus/" in out.getvalue()
    assert secret in out.getvalue()
    principal = await nexus.tokens.authenticate(secret)
    assert principal is not None and principal.role is Role.MANAGE


def test_the_demo_prints_how_to_break_and_restore_credentials() -> None:
    settings = DemoSettings(skus=2, seed=1)
    channels = [build("shopify", settings), build("woocommerce", settings)]
    printer, out = console()

    print_credentials(printer, channels, {"shopify-demo": "http://s:1", "woocommerce-demo": "http://w:2"})

    text = out.getvalue()
    header = "-H 'content-type: application/json'"
    assert f"""curl -X POST http://s:1/_sandbox/credentials {header} -d '{{"valid": false}}'""" in text
    assert """-d '{"valid": true}'""" in text
    assert "woocommerce-demo" not in text  # its sandbox cannot refuse its credentials


async def test_ctrl_c_stops_the_demo_in_order() -> None:
    stop = asyncio.Event()
    stop_on_interrupt(stop)
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(stop.wait(), timeout=10)
    # The handler is gone after the first: a second Ctrl-C interrupts as usual.
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
