"""Every query the driver sends fits Shopify's single-query cap (1000 points) and the store's bucket.

Driver against the sandbox over real HTTP on loopback: the sandbox computes the requested cost of
each document itself, and `record` keeps what it saw, so the assertions are about what Shopify
would have been asked, not about the driver's own estimate. A few failure shapes the sandbox does
not produce (MAX_COST_EXCEEDED without figures) use httpx.MockTransport.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse
from graphql.execution.values import get_variable_values
from shopify_testkit import SECRET, TOKEN, make_context, mock_client

from nexus.channels.shopify import ShopifyDriver, create_driver, queries
from nexus.channels.shopify.client import ShopifyGraphQLClient, ShopifyQueryCostError
from nexus.domain.catalog import ImportReport, ItemSpec
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct
from nexus.drivers.pagination import iterate_products
from nexus.engine import Nexus
from nexus.errors import TerminalChannelError
from nexus.ratelimit.config import RateLimitConfig
from nexus.sandbox.shopify import ShopifySandbox
from nexus.sandbox.shopify.api import Reply, admin_schema
from nexus.sandbox.shopify.throttle import CostCalculator
from nexus.web.server import serve_app

FAST = 5000.0  # points restored per second: the tests are about sizes, not about waiting


@dataclass(frozen=True)
class Seen:
    operation: str | None
    requested: int
    bucket: float
    outcome: str  # "ran", or the error code the sandbox answered with


def record(sandbox: ShopifySandbox, monkeypatch: pytest.MonkeyPatch) -> list[Seen]:
    """Every GraphQL request the sandbox answers, with the cost it calculated for it."""
    seen: list[Seen] = []
    handle = sandbox.graphql.handle

    def recording(payload: Any) -> Reply:
        reply = handle(payload)
        errors = reply.body.get("errors") or []
        code = errors[0].get("extensions", {}).get("code") if errors else None
        if code == "MAX_COST_EXCEEDED":
            requested = errors[0]["extensions"]["cost"]
        else:
            requested = reply.body["extensions"]["cost"]["requestedQueryCost"]
        seen.append(
            Seen(payload.get("operationName"), requested, sandbox.bucket.maximum_available, code or "ran")
        )
        return reply

    monkeypatch.setattr(sandbox.graphql, "handle", recording)
    return seen


def sandbox_with(bucket: float, *, singles: int, sized: dict[str, int]) -> ShopifySandbox:
    """`singles` one-variant products, then one product per entry of `sized` with that many variants."""
    sandbox = ShopifySandbox(
        seed=11, access_token=TOKEN, webhook_secret=SECRET, maximum_available=bucket, restore_rate=FAST
    )
    sandbox.seed_catalog(singles, quantity=4)
    for title, count in sized.items():
        sandbox.add_product(
            title, [{"sku": f"{title}-{n:03d}", "price": "5.00", "quantity": n % 7} for n in range(count)]
        )
    return sandbox


@contextlib.asynccontextmanager
async def driver_for(
    sandbox: ShopifySandbox, *, limit: RateLimitConfig | None = None, **settings: Any
) -> AsyncIterator[ShopifyDriver]:
    async with serve_app(sandbox.app) as server, httpx.AsyncClient(timeout=10) as http:
        try:
            yield create_driver(make_context(http, base_url=server.base_url, settings=settings, limit=limit))
        finally:
            await sandbox.aclose()


async def import_all(driver: ShopifyDriver) -> list[NexusProduct]:
    return [product async for page in iterate_products(driver) for product in page]


def variant_counts(products: list[NexusProduct]) -> dict[str, int]:
    return {p.title: len(p.variants) for p in products}


MANY = {"Big": 300, "Mid": 120, "Edge": 100, "Edge-plus-one": 101}


# --- imports against small buckets -----------------------------------------------------------


async def test_import_on_a_500_point_bucket_never_asks_for_more_than_the_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox = sandbox_with(500, singles=9, sized=MANY)
    seen = record(sandbox, monkeypatch)
    async with driver_for(sandbox, limit=RateLimitConfig(500, FAST, 10)) as driver:
        products = await import_all(driver)

    assert len(products) == 13
    assert {title: n for title, n in variant_counts(products).items() if title in MANY} == MANY
    assert {v.sku for p in products for v in p.variants} == set(sandbox.levels())
    assert seen and all(s.requested <= min(1000, s.bucket) for s in seen)
    assert not [s for s in seen if s.outcome == "MAX_COST_EXCEEDED"]
    # As large as the bucket allows: 2 products x 100 variants, then 248 variants per follow-up.
    assert {s.requested for s in seen if s.operation == "NexusProducts"} == {2 + 2 * (3 + 100 * 2)}
    assert {s.requested for s in seen if s.operation == "NexusProductVariants"} == {1 + 2 + 248 * 2}


async def test_an_unconfigured_driver_learns_the_bucket_from_the_first_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With nothing configured the driver assumes the default 2,000-point bucket, so its first page
    # (814 points) meets a 500-point one: THROTTLED with maximumAvailable 500. No wait would help,
    # so the driver asks for less at once, and fits every later query to the bucket it learnt.
    sandbox = sandbox_with(500, singles=9, sized=MANY)
    seen = record(sandbox, monkeypatch)
    async with driver_for(sandbox) as driver:
        products = await import_all(driver)

    assert variant_counts(products)["Big"] == 300 and len(products) == 13
    first, *rest = seen
    assert (first.operation, first.requested, first.outcome) == ("NexusProducts", 814, "THROTTLED")
    assert all(s.requested <= s.bucket for s in rest)
    assert driver.client.throttled_responses == sum(s.outcome == "THROTTLED" for s in seen)
    assert driver.query_budget() == 500


async def test_a_bucket_smaller_than_one_product_shrinks_the_variants_and_reads_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 60 points cannot hold one product with 100 variants (205 points): 27 come with the product,
    # the rest 28 at a time.
    sandbox = sandbox_with(60, singles=4, sized={"Shirt": 30, "Shoe": 75})
    seen = record(sandbox, monkeypatch)
    async with driver_for(sandbox, limit=RateLimitConfig(60, FAST, 10)) as driver:
        products = await import_all(driver)

    assert variant_counts(products) == {
        **{f"Demo product {i:06d}": 1 for i in range(1, 5)},
        "Shirt": 30,
        "Shoe": 75,
    }
    assert {v.sku for p in products for v in p.variants} == set(sandbox.levels())
    assert all(s.requested <= 60 for s in seen)
    assert {s.requested for s in seen if s.operation == "NexusProducts"} == {2 + (3 + 27 * 2)}
    assert {s.requested for s in seen if s.operation == "NexusProductVariants"} == {3 + 28 * 2}


async def test_fetch_product_and_level_reads_fit_a_small_bucket_too(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = sandbox_with(60, singles=30, sized={"Shoe": 75})
    seen = record(sandbox, monkeypatch)
    shoe = next(p.id for p in sandbox.store.products.values() if p.title == "Shoe")
    updates = []
    for n, sku in enumerate(sorted(sandbox.levels()), start=1):
        variant_id, item_id = sandbox.variant_ids(sku)
        updates.append(
            NexusInventoryUpdate(
                listing_id=n, sku=sku, remote_id=str(variant_id), inventory_id=str(item_id), quantity=0
            )
        )
    async with driver_for(
        sandbox, limit=RateLimitConfig(60, FAST, 10), location_id=sandbox.location_id
    ) as driver:
        product = await driver.fetch_product(str(shoe))
        levels = await driver.read_levels(updates)

    assert [v.sku for v in product.variants] == [f"Shoe-{n:03d}" for n in range(75)]
    by_sku = {u.sku: levels[u.listing_id] for u in updates}
    assert by_sku == sandbox.levels()
    assert all(s.requested <= 60 for s in seen)
    # 105 items, 20 per query (3 points each).
    assert [s.requested for s in seen if s.operation == "NexusInventoryLevels"] == [60] * 5 + [15]


# --- when Shopify still refuses ------------------------------------------------------------------


async def test_max_cost_exceeded_shrinks_the_page_and_later_pages_fit_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Make the driver believe a variant costs 1 point: its estimates are then about half of what
    # Shopify (the sandbox) calculates, and its first page (9 products) is refused at 1829 points.
    monkeypatch.setattr(queries, "VARIANT_COST", 1)
    sandbox = sandbox_with(20000, singles=10, sized={})
    seen = record(sandbox, monkeypatch)
    async with driver_for(sandbox) as driver:
        products = await import_all(driver)

    assert len(products) == 10
    refused = [s for s in seen if s.outcome == "MAX_COST_EXCEEDED"]
    assert [(s.operation, s.requested) for s in refused] == [("NexusProducts", 2 + 9 * 203)]
    ran = [s for s in seen if s.outcome == "ran"]
    assert [s.requested for s in ran] == [814, 814, 814]  # 4 + 4 + 2 products
    assert sandbox.stats.max_cost_exceeded == 1


class Script:
    """Answers NexusProducts requests in order and keeps the variables it was sent."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.sent: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.sent.append(body["variables"])
        return httpx.Response(200, json=self.answers.pop(0))


MAX_COST_WITHOUT_FIGURES = {
    "errors": [{"message": "Query cost is too high.", "extensions": {"code": "MAX_COST_EXCEEDED"}}]
}
EMPTY_PAGE = {
    "data": {"products": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}},
    "extensions": {
        "cost": {
            "requestedQueryCost": 408,
            "actualQueryCost": 2,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1998, "restoreRate": 100.0},
        }
    },
}


async def test_a_refusal_without_figures_halves_the_page() -> None:
    script = Script(MAX_COST_WITHOUT_FIGURES, EMPTY_PAGE)
    driver = create_driver(make_context(mock_client(script)))
    page = await driver.list_products()
    assert page.items == [] and page.next_cursor is None
    assert [v["first"] for v in script.sent] == [4, 2]


async def test_a_single_variant_refused_is_terminal() -> None:
    script = Script(*[MAX_COST_WITHOUT_FIGURES] * 10)
    driver = create_driver(make_context(mock_client(script), settings={"variants_per_product": 2}))
    with pytest.raises(TerminalChannelError):
        await driver.list_products(per_page=2)
    # (2 products x 2 variants) -> 1 x 2 -> 1 x 1, then nothing smaller is left.
    assert [v["first"] for v in script.sent] == [2, 1, 1]


# --- the client's part ---------------------------------------------------------------------------


class RecordingLimiter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def acquire(self, cost: float = 1.0) -> None:
        self.calls.append(("acquire", cost))

    async def observe(
        self,
        *,
        available: float | None,
        capacity: float | None = None,
        refill_per_second: float | None = None,
        round_trip: float | None = None,
    ) -> None:
        self.calls.append(("observe", available))

    async def penalize(self, seconds: float) -> None:
        self.calls.append(("penalize", seconds))

    async def refund(self, tokens: float) -> None:
        self.calls.append(("refund", tokens))


def client_for(
    handler: Callable[[httpx.Request], httpx.Response],
) -> tuple[ShopifyGraphQLClient, RecordingLimiter]:
    limiter = RecordingLimiter()
    client = ShopifyGraphQLClient(
        http=mock_client(handler),
        rate=limiter,
        base_url="https://nexus-test.myshopify.com",
        access_token=TOKEN,
        api_version="2026-10",
        max_throttle_retries=5,
    )
    return client, limiter


async def test_max_cost_exceeded_is_a_cost_error_and_nothing_stays_taken() -> None:
    body = {
        "errors": [
            {
                "message": (
                    "Query cost is 1017, which exceeds the single query max cost limit (1000).\n\nSee ..."
                ),
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": 1017, "maxCost": 1000},
            }
        ]
    }
    client, limiter = client_for(lambda request: httpx.Response(200, json=body))
    with pytest.raises(ShopifyQueryCostError) as caught:
        await client.execute("query { x }", {}, cost=1017)
    assert (caught.value.requested, caught.value.limit) == (1017, 1000)
    assert str(caught.value).endswith("exceeds the single query max cost limit (1000).")
    assert limiter.calls == [("acquire", 1017), ("refund", 1017)]


async def test_throttled_over_the_whole_bucket_fails_at_once_instead_of_waiting() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        cost = {
            "requestedQueryCost": 814,
            "actualQueryCost": None,
            "throttleStatus": {"maximumAvailable": 500.0, "currentlyAvailable": 500, "restoreRate": 50.0},
        }
        body = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}
        return httpx.Response(200, json={**body, "extensions": {"cost": cost}})

    client, limiter = client_for(handler)
    with pytest.raises(ShopifyQueryCostError) as caught:
        await client.execute("query { x }", {}, cost=814)
    assert calls == 1
    assert (caught.value.requested, caught.value.limit) == (814, 500)
    assert client.maximum_available == 500
    assert not [c for c in limiter.calls if c[0] == "penalize"]


# --- the driver's estimates are Shopify's count ----------------------------------------------------


def sandbox_cost(document: str, variables: dict[str, Any]) -> int:
    schema = admin_schema()
    parsed = parse(document)
    (operation,) = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables)
    assert not isinstance(coerced, list), coerced
    return CostCalculator(schema, parsed, operation, coerced).requested()


@pytest.mark.parametrize(("first", "variants"), [(1, 1), (4, 100), (2, 248), (1, 27), (43, 10), (250, 1)])
def test_products_page_estimate_is_the_sandboxs_count(first: int, variants: int) -> None:
    document = queries.products_query(variants)
    assert queries.products_page_cost(first, variants) == sandbox_cost(document, {"first": first})


@pytest.mark.parametrize("variants", [1, 28, 100, 250])
def test_single_product_estimates_are_the_sandboxs_count(variants: int) -> None:
    gid = "gid://shopify/Product/1"
    assert queries.product_cost(variants) == sandbox_cost(queries.product_query(variants), {"id": gid})
    assert queries.product_variants_cost(variants) == sandbox_cost(
        queries.PRODUCT_VARIANTS, {"id": gid, "first": variants}
    )


@pytest.mark.parametrize("count", [1, 20, 250])
def test_level_read_estimate_is_the_sandboxs_count(count: int) -> None:
    ids = [f"gid://shopify/InventoryItem/{n}" for n in range(count)]
    variables = {"ids": ids, "locationId": "gid://shopify/Location/1"}
    assert queries.inventory_levels_cost(count) == sandbox_cost(queries.INVENTORY_LEVELS, variables)


@pytest.mark.parametrize("budget", [7, 60, 205, 500, 999, 1000])
@pytest.mark.parametrize("variants", [1, 10, 100, 250])
def test_page_shapes_fill_but_never_exceed_the_budget(budget: int, variants: int) -> None:
    first, asked = queries.products_page_shape(250, variants, budget)
    assert queries.products_page_cost(first, asked) <= budget
    assert asked <= variants
    if asked < variants:  # variants give way only when one product with all of them does not fit
        assert first == 1 and queries.products_page_cost(1, asked + 1) > budget
    elif first < 250:
        assert queries.products_page_cost(first + 1, asked) > budget


# --- progress of an engine import ------------------------------------------------------------------


async def test_engine_import_reports_growing_product_counts_page_by_page(
    make_nexus: Callable[..., Any],
) -> None:
    sandbox = sandbox_with(500, singles=9, sized={"Big": 300})
    async with serve_app(sandbox.app) as server:
        nexus: Nexus = await make_nexus(
            channels={
                "shop": {
                    "driver": "shopify",
                    "base_url": server.base_url,
                    "credentials": {"access_token": TOKEN, "webhook_secret": SECRET},
                    "settings": {"location_id": str(sandbox.location_id)},
                    "rate_limit": {"capacity": 500, "refill_per_second": FAST},
                }
            }
        )
        await nexus.add_items(ItemSpec(sku=sku, title=sku) for sku in sandbox.levels())
        counts: list[int] = []

        def on_page(report: ImportReport) -> None:
            counts.append(report.products)

        try:
            report = await nexus.import_channel("shop", on_page=on_page)
        finally:
            await sandbox.aclose()

    assert counts == [2, 4, 6, 8, 10]  # two products per 408-point page on a 500-point bucket
    assert report.products == 10 and report.variants == 9 + 300
    assert report.linked == 309 and not report.unmatched
