"""Pushing one listing now, whatever it shows (`POST /channels/{channel}/listings/{sku}/push`).

A force push gives the listing a fresh start in the queue (`ListingQueue.requeue`: no failure, no
backoff, dirty) and pushes it in this task (`push_sku_now`), as `nexus.product(sku).adjust(...)
.sync()` does after a change: what is pushed is what the listing should show now. A paused or
disconnected channel is refused up front: nothing would push, and the caller would wait for the
timeout for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nexus.api import push_sku_now
from nexus.sync.history import ListingView, listing_of
from nexus.sync.queue import ListingQueue

if TYPE_CHECKING:
    from nexus.engine import Nexus

PUSH_TIMEOUT = 10.0  # seconds a force push waits for the channel's answer


@dataclass(frozen=True, slots=True)
class ForcePush:
    """The listing after the push, and how many push rounds it took (0: another worker held it)."""

    listing: ListingView
    rounds: int

    @property
    def in_sync(self) -> bool:
        return not self.listing.dirty and not self.listing.failed

    def as_dict(self) -> dict[str, Any]:
        return {"listing": self.listing.as_dict(), "rounds": self.rounds, "in_sync": self.in_sync}


async def force_push(nexus: Nexus, channel: str, sku: str, *, timeout: float = PUSH_TIMEOUT) -> ForcePush:
    """Push `sku`'s listing on `channel` now. UnknownChannelError, UnknownSkuError (not listed
    there) or ChannelBlockedError when it cannot."""
    nexus.channel(channel)  # an unknown channel, or one whose driver cannot be built, is named now
    listing = await listing_of(nexus.db, channel, sku)
    await nexus.channel_states.require_pushable([channel])
    async with nexus.db.transaction() as session:
        await ListingQueue.requeue(session, [listing.id])
    rounds, _ = await push_sku_now(nexus, sku, [channel], timeout)
    return ForcePush(await listing_of(nexus.db, channel, sku), len(rounds))
