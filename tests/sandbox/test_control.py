"""The `/_sandbox` control surface every sandbox app serves (nexus.sandbox.control), in each
sandbox's own words."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from nexus.sandbox.amazon import AmazonSandbox
from nexus.sandbox.etsy import EtsySandbox
from nexus.sandbox.shopify import ShopifySandbox
from nexus.sandbox.woocommerce import WooCommerceSandbox


@dataclass(frozen=True)
class Kind:
    make: Callable[..., Any]  # the sandbox class: make(seed=1)
    api: str
    quantity: str
    sale: str
    topic: str
    topic_name: str


KINDS = {
    "shopify": Kind(ShopifySandbox, "Shopify", "available", "order", "topic", "orders/create"),
    "woocommerce": Kind(
        WooCommerceSandbox, "WooCommerce", "stock_quantity", "order", "topic", "order.created"
    ),
    "etsy": Kind(EtsySandbox, "Etsy", "quantity", "receipt", "event_type", "order.paid"),
    "amazon": Kind(AmazonSandbox, "Amazon", "quantity", "notification", "notification_type", "ORDER_CHANGE"),
}


@pytest.mark.parametrize("name", list(KINDS))
async def test_every_sandbox_serves_the_same_control_surface(name: str) -> None:
    kind = KINDS[name]
    sandbox = kind.make(seed=1)
    sandbox.seed_catalog(2, quantity=5)
    transport = httpx.ASGITransport(app=sandbox.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            about = await http.get("/_sandbox")
            sale = await http.post("/_sandbox/sales", json={"sku": "SKU-000001", "quantity": 2})
            refused = await http.post("/_sandbox/sales", json={"sku": "SKU-000002", "quantity": 6})
            unknown = await http.post("/_sandbox/sales", json={"sku": "NOPE"})
            edit = await http.put("/_sandbox/levels/SKU-000002", json={kind.quantity: 40})
            not_a_number = await http.put("/_sandbox/levels/SKU-000002", json={kind.quantity: True})
            levels = await http.get("/_sandbox/levels")
            subscribed = await http.post(
                "/_sandbox/webhooks", json={kind.topic: kind.topic_name, "address": "http://127.0.0.1:9/h"}
            )
            stats = await http.get("/_sandbox/stats")
    finally:
        await sandbox.aclose()

    for answer in (about, sale, refused, unknown, edit, not_a_number, levels, subscribed, stats):
        assert answer.headers["x-nexus-sandbox"] == f"control surface, not part of the {kind.api} API"
    assert about.json()["note"].startswith(f"Nexus {kind.api} sandbox.")
    assert sale.status_code == 201 and sale.json()[kind.sale]
    assert (refused.status_code, refused.json()) == (409, {"error": "not enough stock", kind.quantity: 5})
    assert unknown.status_code == 404
    assert (edit.status_code, edit.json()) == (200, {"sku": "SKU-000002", kind.quantity: 40})
    assert not_a_number.status_code == 400
    assert levels.json() == {"SKU-000001": 3, "SKU-000002": 40}
    assert subscribed.status_code == 201
    assert subscribed.json()[kind.topic] == kind.topic_name
    assert stats.json()["requests"] == 0


async def test_a_woocommerce_subscription_answers_the_webhook_id() -> None:
    sandbox = WooCommerceSandbox(seed=1)
    transport = httpx.ASGITransport(app=sandbox.app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
            answer = await http.post(
                "/_sandbox/webhooks", json={"topic": "order.created", "address": "http://127.0.0.1:9/h"}
            )
    finally:
        await sandbox.aclose()
    assert answer.json() == {"id": 1, "topic": "order.created", "address": "http://127.0.0.1:9/h"}


def test_only_the_shopify_sandbox_needs_the_sandbox_extra() -> None:
    """Without graphql-core (the `sandbox` extra) the Shopify sandbox says what to install; the
    other sandboxes and the demo's channel list still import."""
    code = (
        "import sys; sys.modules['graphql'] = None\n"
        "import nexus.sandbox.woocommerce, nexus.sandbox.etsy, nexus.sandbox.amazon, nexus.sandbox.demo\n"
        "try:\n"
        "    import nexus.sandbox.shopify\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "the Shopify sandbox needs the 'sandbox' extra" in result.stdout
    assert "pip install 'nexus-sync[sandbox]'" in result.stdout


def test_no_sandbox_imports_the_drivers_it_is_meant_to_test() -> None:
    """A sandbox signs, verifies and shapes with its own code, never nexus.channels': a bug in a
    driver's signing must fail a test, not be mirrored by the emulator it runs against."""
    code = (
        "import sys\n"
        "import nexus.sandbox.shopify, nexus.sandbox.woocommerce, nexus.sandbox.etsy, nexus.sandbox.amazon\n"
        "print(sorted(m for m in sys.modules if m.startswith('nexus.channels')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
