"""The GraphQL transport: auth, cost accounting, THROTTLED handling and error classification.

httpx.MockTransport stands in for Shopify here only for failure modes a live sandbox cannot be
asked for on demand; the driver's real-HTTP behaviour is covered in test_shopify_driver_sandbox.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from shopify_testkit import TOKEN, load, mock_client

from nexus.channels.shopify.client import ShopifyGraphQLClient, ShopifyThrottledError
from nexus.errors import TerminalChannelError, TransientChannelError


class RecordingLimiter:
    """A ChannelRateLimiter that grants everything and remembers what it was told."""

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
        self.calls.append(("observe", (available, capacity, refill_per_second)))

    async def penalize(self, seconds: float) -> None:
        self.calls.append(("penalize", seconds))

    async def refund(self, tokens: float) -> None:
        self.calls.append(("refund", tokens))


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], *, retries: int = 2
) -> tuple[ShopifyGraphQLClient, RecordingLimiter]:
    limiter = RecordingLimiter()
    client = ShopifyGraphQLClient(
        http=mock_client(handler),
        rate=limiter,
        base_url="https://nexus-test.myshopify.com/",
        access_token=TOKEN,
        api_version="2026-10",
        max_throttle_retries=retries,
    )
    return client, limiter


async def test_request_shape_and_cost_accounting() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=load("inventory_set_quantities_ok.json"))

    client, limiter = client_for(handler)
    result = await client.execute("mutation { x }", {"a": 1}, cost=10, operation_name="Op")

    assert result.data["inventorySetQuantities"]["userErrors"] == []
    request = seen[0]
    assert str(request.url) == "https://nexus-test.myshopify.com/admin/api/2026-10/graphql.json"
    assert request.headers["X-Shopify-Access-Token"] == TOKEN
    assert json.loads(request.content) == {
        "query": "mutation { x }",
        "variables": {"a": 1},
        "operationName": "Op",
    }
    assert limiter.calls == [("acquire", 10), ("observe", (1990.0, 2000.0, 100.0))]
    assert result.cost is not None and result.cost.actual == 10


@pytest.mark.parametrize("status", [200, 429])
async def test_throttled_request_is_resent_byte_identical_after_the_refill_wait(status: int) -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        if len(bodies) == 1:
            return httpx.Response(status, json=load("throttled.json"))
        return httpx.Response(200, json=load("inventory_set_quantities_ok.json"))

    client, limiter = client_for(handler)
    await client.execute("mutation { x }", {"idempotencyKey": "k-1"}, cost=10)

    assert len(bodies) == 2 and bodies[0] == bodies[1]  # same idempotency key, same everything
    penalties = [value for name, value in limiter.calls if name == "penalize"]
    assert penalties == [pytest.approx((10 - 4) / 100)]
    assert [name for name, _ in limiter.calls] == ["acquire", "observe", "penalize", "acquire", "observe"]
    assert client.throttled_responses == 1


async def test_unused_tokens_are_refunded_before_the_bucket_is_clamped_to_shopify() -> None:
    page = load("graphql_products_page.json")  # requested 815, actual 13
    limiter = RecordingLimiter()
    client = ShopifyGraphQLClient(
        http=mock_client(lambda request: httpx.Response(200, json=page)),
        rate=limiter,
        base_url="https://nexus-test.myshopify.com",
        access_token=TOKEN,
        api_version="2026-10",
        max_throttle_retries=0,
    )
    await client.execute("query { x }", {}, cost=815)
    # Shopify's currentlyAvailable already includes its refund: refunding after clamping to it
    # would count the refund twice.
    assert [name for name, _ in limiter.calls] == ["acquire", "refund", "observe"]
    assert ("refund", 802.0) in limiter.calls


async def test_throttling_that_never_ends_raises_transient_with_the_wait() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json=load("throttled.json"))

    client, _ = client_for(handler, retries=2)
    with pytest.raises(ShopifyThrottledError) as caught:
        await client.execute("mutation { x }", {}, cost=10)
    assert calls == 3
    assert caught.value.retry_after == pytest.approx(0.06)
    assert isinstance(caught.value, TransientChannelError)


async def test_bare_429_uses_retry_after() -> None:
    responses = [httpx.Response(429, headers={"Retry-After": "2"}, text="Too Many Requests")]

    def handler(request: httpx.Request) -> httpx.Response:
        return (
            responses.pop(0)
            if responses
            else httpx.Response(200, json=load("inventory_set_quantities_ok.json"))
        )

    client, limiter = client_for(handler)
    await client.execute("mutation { x }", {}, cost=10)
    assert ("penalize", 2.0) in limiter.calls


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
        (403, {"errors": "Forbidden"}),
        (404, {"errors": "Not Found"}),
        (402, {"errors": "Unavailable Shop"}),
        (400, {"errors": [{"message": 'Parse error on "}"'}]}),
    ],
)
async def test_client_errors_are_terminal(status: int, body: object) -> None:
    client, _ = client_for(lambda request: httpx.Response(status, json=body))
    with pytest.raises(TerminalChannelError) as caught:
        await client.execute("query { shop { id } }", {}, cost=1)
    assert caught.value.status == status


async def test_server_errors_are_transient_and_carry_retry_after() -> None:
    client, _ = client_for(lambda request: httpx.Response(503, headers={"Retry-After": "7"}, text="busy"))
    with pytest.raises(TransientChannelError) as caught:
        await client.execute("query { shop { id } }", {}, cost=1)
    assert caught.value.status == 503
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
async def test_timeouts_and_connection_errors_are_transient(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    client, _ = client_for(handler)
    with pytest.raises(TransientChannelError):
        await client.execute("query { shop { id } }", {}, cost=1)


@pytest.mark.parametrize(
    ("code", "expected"),
    [("INTERNAL_SERVER_ERROR", TransientChannelError), ("ACCESS_DENIED", TerminalChannelError)],
)
async def test_top_level_graphql_errors_are_classified(code: str, expected: type[Exception]) -> None:
    body = {"errors": [{"message": "nope", "extensions": {"code": code}}]}
    client, _ = client_for(lambda request: httpx.Response(200, json=body))
    with pytest.raises(expected):
        await client.execute("query { shop { id } }", {}, cost=1)


async def test_non_json_success_is_transient() -> None:
    client, _ = client_for(lambda request: httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(TransientChannelError):
        await client.execute("query { shop { id } }", {}, cost=1)
