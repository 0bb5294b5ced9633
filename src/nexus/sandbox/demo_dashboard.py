"""What `nexus demo` adds while it keeps serving (no `--duration`): the dashboard's address and a
token to sign in with, a trickle of sales so there is something to watch, one dead letter to
replay, and the commands that break and restore a store's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Sequence

from rich.console import Console

from nexus.access.tokens import Role
from nexus.engine import Nexus
from nexus.sandbox.demo_channels import DemoChannel
from nexus.sync.dead_letters import DeadLetterFilter, list_dead_letters

TOKEN_NAME = "demo"


async def show_dashboard(nexus: Nexus, base_url: str, console: Console) -> str:
    """Create a `manage` token and print where to use it. The secret is printed here, once, as
    `nexus token create` does: the database keeps only its hash."""
    _, secret = await nexus.tokens.create(TOKEN_NAME, Role.MANAGE)
    console.print(
        f"\n[bold]Dashboard[/] {base_url}/nexus/  (sign in with this manage token, shown once)\n  {secret}\n",
        soft_wrap=True,
        highlight=False,
    )
    return secret


def print_credentials(console: Console, channels: Sequence[DemoChannel], served: dict[str, str]) -> None:
    """How to revoke a store's credentials and give them back (the sandboxes that can)."""
    for channel in channels:
        if not hasattr(channel.sandbox, "revoke_token"):
            continue  # only the Shopify sandbox refuses a revoked token today
        url = f"{served[channel.name]}/_sandbox/credentials"
        console.print(
            f"\nBreak {channel.name}'s credentials (its card and the banner say disconnected; what "
            "changes meanwhile waits), then restore them (a probe reconnects it, what waited is pushed):\n"
            f"  curl -X POST {url} -H 'content-type: application/json' -d '{{\"valid\": false}}'\n"
            f"  curl -X POST {url} -H 'content-type: application/json' -d '{{\"valid\": true}}'",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )


async def leave_a_dead_letter(nexus: Nexus, channel: DemoChannel, sku: str, console: Console) -> None:
    """Make the store refuse one push of `sku` for good (HTTP 400), so that the dead-letter page
    has something to replay. The refusal goes to the store's next request, which is nearly always
    that push; when something else took it, try again (three times at most)."""
    fail_next = getattr(channel.sandbox, "fail_next", None)
    if fail_next is None:
        return
    where = DeadLetterFilter(channel=channel.name, sku=sku)
    for _ in range(3):
        fail_next(1, 400)
        await nexus.product(sku).adjust(1, reason="restock", reference="demo: a push the store refuses")
        nexus.notify([channel.name])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if (await list_dead_letters(nexus.db, where, limit=1)).total:
                console.print(
                    f"\n{channel.name} refused one push on purpose (HTTP 400): {sku} waits as a dead "
                    "letter. Replay it on the dashboard's Dead letters page.",
                    soft_wrap=True,
                    highlight=False,
                )
                return
            await asyncio.sleep(0.1)


async def keep_selling(
    nexus: Nexus,
    channels: Sequence[DemoChannel],
    skus: Sequence[str],
    stop: asyncio.Event,
    *,
    per_second: float = 2.0,
    seed: int = 0,
) -> None:
    """Sales on the stores and now and then a restock in Nexus, until `stop` (which Ctrl-C sets):
    the cards move."""
    stop_on_interrupt(stop)
    rng = random.Random(seed)
    while not stop.is_set():
        sku = rng.choice(skus)
        if rng.random() < 0.2:
            await nexus.product(sku).adjust(rng.randint(3, 10), reason="restock", reference="delivery")
        else:
            with contextlib.suppress(KeyError):
                await rng.choice(channels).sandbox.simulate_sale(sku, 1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0 / per_second)


def stop_on_interrupt(stop: asyncio.Event) -> None:
    """The first Ctrl-C (or SIGTERM) sets `stop`: the demo then winds down in order, the workers
    before the stores they push to (the servers' own handling stopped the stores first, and the
    workers retried against closed ports until their grace ran out). A second Ctrl-C interrupts."""
    loop = asyncio.get_running_loop()

    def interrupted() -> None:
        stop.set()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or Windows
            loop.add_signal_handler(signum, interrupted)
