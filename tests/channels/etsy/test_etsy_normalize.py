"""from_etsy (`product_from_etsy`) with payloads shaped like Etsy's, the PUT body, the settings."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
import pytest
from etsy_testkit import load, make_context

from nexus.channels.etsy import create_driver, product_from_etsy
from nexus.channels.etsy.inventory import put_body
from nexus.errors import ConfigError


def test_one_variant_per_product_with_stable_ids() -> None:
    listing = load("listing_with_inventory.json")

    product = product_from_etsy(listing)

    assert (product.remote_id, product.title) == ("1146172724", "Linen tote bag, hand printed")
    assert [(v.remote_id, v.sku, v.title, v.quantity, v.price) for v in product.variants] == [
        ("1146172724:sku:TOTE-BGE", "TOTE-BGE", "Beige", 3, Decimal("22")),
        ("1146172724:sku:TOTE-BLK", "TOTE-BLK", "Black", 2, Decimal("24.5")),
        ("1146172724:pv:200=1219", None, "White", 0, Decimal("19.99")),
    ]
    assert [v.inventory_id for v in product.variants] == [
        "1146172724:pv:200=54711166638",
        "1146172724:pv:200=1213",
        "1146172724:pv:200=1219",
    ]
    assert product.variants[0].channel_meta["etsy_product_id"] == 7341796967
    assert product.variants[0].channel_meta["currency_code"] == "EUR"
    assert product.channel_meta["raw"]["listing"]["listing_id"] == 1146172724
    assert product.quantity_available == 5


def test_inventory_given_apart_from_the_listing() -> None:
    listing = load("listing_with_inventory.json")
    inventory = listing.pop("inventory")
    apart = product_from_etsy(listing, inventory)
    together = product_from_etsy({**listing, "inventory": inventory})
    assert (apart.remote_id, apart.variants) == (together.remote_id, together.variants)


def test_a_sku_shared_by_two_products_falls_back_to_property_values() -> None:
    listing = load("listing_with_inventory.json")
    listing["inventory"]["products"][1]["sku"] = "TOTE-BGE"

    product = product_from_etsy(listing)

    assert [v.remote_id for v in product.variants][:2] == [
        "1146172724:pv:200=54711166638",
        "1146172724:pv:200=1213",
    ]


@pytest.mark.parametrize(
    "broken", [{"listing_id": None}, {"inventory": None}, {"inventory": {"products": []}}]
)
def test_payloads_that_are_not_listings_are_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        product_from_etsy({**load("listing_with_inventory.json"), **broken})


def test_put_body_keeps_everything_but_the_new_quantity() -> None:
    inventory = load("listing_with_inventory.json")["inventory"]
    original = copy.deepcopy(inventory)

    body = put_body(inventory, {1: 9})

    assert inventory == original  # the GET answer is not modified in place
    assert body == {
        "products": [
            {
                "sku": "TOTE-BGE",
                "property_values": [
                    {
                        "property_id": 200,
                        "value_ids": [54711166638],
                        "scale_id": None,
                        "property_name": "Primary color",
                        "values": ["Beige"],
                    }
                ],
                "offerings": [
                    {"price": 22.0, "quantity": 3, "is_enabled": True, "readiness_state_id": 1402336022}
                ],
            },
            {
                "sku": "TOTE-BLK",
                "property_values": [
                    {
                        "property_id": 200,
                        "value_ids": [1213],
                        "scale_id": None,
                        "property_name": "Primary color",
                        "values": ["Black"],
                    }
                ],
                "offerings": [
                    {"price": 24.5, "quantity": 9, "is_enabled": True, "readiness_state_id": 1402336022}
                ],
            },
            {
                "sku": "",
                "property_values": [
                    {
                        "property_id": 200,
                        "value_ids": [1219],
                        "scale_id": None,
                        "property_name": "Primary color",
                        "values": ["White"],
                    }
                ],
                "offerings": [
                    {"price": 19.99, "quantity": 0, "is_enabled": False, "readiness_state_id": 1402336022}
                ],
            },
        ],
        "price_on_property": [200],
        "quantity_on_property": [200],
        "sku_on_property": [200],
        "readiness_state_on_property": [],
    }


GOOD_CREDENTIALS = {"keystring": "k", "shared_secret": "s", "refresh_token": "r"}


@pytest.mark.parametrize(
    ("credentials", "settings", "key"),
    [
        ({**GOOD_CREDENTIALS, "keystring": ""}, {"shop_id": 1}, "credentials.keystring"),
        ({"keystring": "k", "refresh_token": "r"}, {"shop_id": 1}, "credentials.shared_secret"),
        ({"keystring": "k", "shared_secret": "s"}, {"shop_id": 1}, "credentials.refresh_token"),
        (GOOD_CREDENTIALS, {}, "settings.shop_id"),
        (GOOD_CREDENTIALS, {"shop_id": "shop"}, "settings.shop_id"),
        (GOOD_CREDENTIALS, {"shop_id": 1, "token_url": "ftp://x"}, "settings.token_url"),
        (GOOD_CREDENTIALS, {"shop_id": 1, "max_batch_size": 0}, "settings.max_batch_size"),
        (GOOD_CREDENTIALS, {"shop_id": 1, "requests_per_day": -5}, "settings.requests_per_day"),
        (GOOD_CREDENTIALS, {"shop_id": 1, "listing_states": [3]}, "settings.listing_states"),
    ],
)
async def test_bad_configuration_names_the_key(
    credentials: dict[str, str], settings: dict[str, Any], key: str
) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigError) as caught:
            context = make_context(http, base_url=None, credentials=credentials, settings=settings)
            create_driver(context)
    assert caught.value.key == f"channels.{context.name}.{key}"


async def test_defaults_point_at_etsy() -> None:
    async with httpx.AsyncClient() as http:
        driver = create_driver(
            make_context(http, base_url=None, credentials=GOOD_CREDENTIALS, settings={"shop_id": 7})
        )
    assert driver.settings.base_url == "https://openapi.etsy.com"
    assert driver.settings.token_url == "https://api.etsy.com/v3/public/oauth/token"
    assert driver.settings.api_key == "k:s"
    assert driver.rate_limit_config().capacity == 10
    assert driver.capabilities.compare_and_set is False  # GET-then-PUT is not atomic
