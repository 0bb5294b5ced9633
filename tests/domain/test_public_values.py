"""The fluent API hands out frozen values, never ORM rows, and NexusErrors, never KeyErrors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

import nexus
from nexus.errors import NexusError, UnknownBatchError
from tests.domain.domain_kit import build, seed


async def test_product_state_and_listings_are_frozen_values(make_nexus: Callable[..., Any]) -> None:
    engine, _ = await build(make_nexus)
    ids = await seed(engine, "S", 10, {"a": 10, "b": None})
    handle = engine.product("S")
    product = await handle.get()
    assert isinstance(product, nexus.ProductState)
    assert (product.sku, product.on_hand, product.reserved, product.available) == ("S", 10, 0, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        product.on_hand = 3  # type: ignore[misc]
    listings = await handle.listings()
    assert [(listing.channel, listing.listing_id) for listing in listings] == [
        ("a", ids["a"]),
        ("b", ids["b"]),
    ]
    assert all(isinstance(listing, nexus.ListingState) for listing in listings)
    assert await engine.product("NOPE").get() is None


async def test_an_unknown_batch_is_a_nexus_error(make_nexus: Callable[..., Any]) -> None:
    engine = await make_nexus()
    with pytest.raises(UnknownBatchError) as raised:
        await engine.batch("no-such-batch").status()
    assert isinstance(raised.value, NexusError)
