"""The delivery queue every sandbox sends its webhooks through: retry policies as data, the
faults (drop, duplicate, reorder), side messages, and messages with nothing left to send."""

from __future__ import annotations

import random

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexus.sandbox.delivery import DeliveryQueue, Faults, Outgoing, RetryPolicy, Subscriptions
from nexus.sandbox.stats import SandboxStats
from nexus.web.server import serve_app


class Endpoint:
    """Answers `failures` times 500, then 200; records the bodies it got."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.bodies: list[bytes] = []
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        if self.failures:
            self.failures -= 1
            return Response(status_code=500)
        return Response(status_code=200)


class Queue(DeliveryQueue[str]):
    """Posts each message (a string) to `url`; skips "skip"."""

    def __init__(
        self,
        url: str,
        *,
        policy: RetryPolicy,
        faults: Faults | None = None,
        time_scale: float = 1.0,
        concurrency: int | None = 1,
    ) -> None:
        super().__init__(
            stats=SandboxStats(),
            policy=policy,
            faults=faults,
            rng=random.Random(1),
            time_scale=time_scale,
            concurrency=concurrency,
        )
        self.url = url
        self.outcomes: list[tuple[str, bool]] = []

    @property
    def stats(self) -> SandboxStats:
        return self._stats

    def render(self, item: str) -> Outgoing | None:
        return None if item == "skip" else Outgoing(self.url, item.encode(), {})

    def settled(self, item: str, delivered: bool) -> None:
        self.outcomes.append((item, delivered))


def counts(queue: Queue) -> tuple[int, int, int]:
    stats = queue.stats
    return stats.webhooks_sent, stats.webhook_attempts_failed, stats.webhooks_failed


def test_retry_policies_are_data() -> None:
    shopify_like = RetryPolicy.exponential(60.0, 8, timeout=5.0)
    assert shopify_like.delays == (60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3840.0, 7680.0)
    assert (shopify_like.delay(1), shopify_like.delay(8), shopify_like.delay(9)) == (60.0, 7680.0, None)
    assert RetryPolicy.fixed(20.0, 3).delays == (20.0, 20.0, 20.0)
    assert RetryPolicy.schedule([5, 300]) == RetryPolicy((5.0, 300.0))
    assert RetryPolicy().delay(1) is None  # WooCommerce: one attempt
    with pytest.raises(ValueError, match="drop_rate must be between 0 and 1"):
        Faults(drop_rate=1.5)


@pytest.mark.parametrize("concurrency", [1, 4, None])
async def test_a_failing_message_is_retried_by_the_policy_then_given_up(concurrency: int | None) -> None:
    flaky, dead = Endpoint(failures=2), Endpoint(failures=100)
    async with serve_app(flaky.app) as flaky_server, serve_app(dead.app) as dead_server:
        policy = RetryPolicy.schedule((0.01, 0.01, 0.01))
        good = Queue(f"{flaky_server.base_url}/hook", policy=policy, concurrency=concurrency)
        bad = Queue(f"{dead_server.base_url}/hook", policy=policy, concurrency=concurrency)
        try:
            assert good.put("a") and bad.put("b")
            assert good.pending == 1
            await good.drain(timeout=5)
            await bad.drain(timeout=5)
        finally:
            await good.aclose()
            await bad.aclose()
    assert flaky.bodies == [b"a"] * 3 and dead.bodies == [b"b"] * 4  # the first attempt and 3 retries
    assert (good.stats.webhooks_sent, good.stats.webhook_attempts_failed, good.stats.webhooks_failed) == (
        1,
        2,
        0,
    )
    assert (bad.stats.webhooks_sent, bad.stats.webhook_attempts_failed, bad.stats.webhooks_failed) == (
        0,
        4,
        1,
    )
    assert good.outcomes == [("a", False), ("a", False), ("a", True)]


async def test_time_scale_divides_the_waits() -> None:
    endpoint = Endpoint(failures=1)
    async with serve_app(endpoint.app) as server:
        queue = Queue(f"{server.base_url}/hook", policy=RetryPolicy.fixed(3600.0, 1), time_scale=360_000)
        try:
            queue.put("a")
            await queue.drain(timeout=5)  # an hour's wait is 10 ms
        finally:
            await queue.aclose()
    assert endpoint.bodies == [b"a", b"a"]


async def test_faults_drop_duplicate_and_reorder() -> None:
    endpoint = Endpoint()
    async with serve_app(endpoint.app) as server:
        url = f"{server.base_url}/hook"
        dropping = Queue(url, policy=RetryPolicy(), faults=Faults(drop_rate=1.0))
        duplicating = Queue(url, policy=RetryPolicy(), faults=Faults(duplicate_rate=1.0))
        reordering = Queue(url, policy=RetryPolicy(), faults=Faults(reorder=True, reorder_window=0.05))
        try:
            assert not dropping.put("lost")
            await dropping.drain(timeout=5)
            assert endpoint.bodies == [] and dropping.stats.webhooks_dropped == 1

            duplicating.put("twice")
            await duplicating.drain(timeout=5)
            assert endpoint.bodies == [b"twice", b"twice"]
            assert (duplicating.stats.webhooks_sent, duplicating.stats.webhooks_duplicated) == (1, 1)

            endpoint.bodies.clear()
            for n in range(20):
                reordering.put(str(n))
            await reordering.drain(timeout=5)
        finally:
            for queue in (dropping, duplicating, reordering):
                await queue.aclose()
    assert sorted(endpoint.bodies, key=int) == [str(n).encode() for n in range(20)]
    assert endpoint.bodies != sorted(endpoint.bodies, key=int)  # seeded rng: this order is not theirs
    assert reordering.stats.webhooks_sent == 20


async def test_one_worker_keeps_emission_order_and_side_messages_are_neither_faulted_nor_counted() -> None:
    endpoint = Endpoint()
    async with serve_app(endpoint.app) as server:
        queue = Queue(f"{server.base_url}/hook", policy=RetryPolicy(), faults=Faults(drop_rate=1.0))
        try:
            assert queue.put("ping", counted=False)
            assert not queue.put("dropped")
            queue.put("skip", counted=False)  # rendered as nothing to send: settles nothing
            await queue.drain(timeout=5)
        finally:
            await queue.aclose()
    assert endpoint.bodies == [b"ping"]
    assert queue.outcomes == [("ping", True)]
    assert (queue.stats.webhooks_sent, queue.stats.webhooks_dropped) == (0, 1)


def test_subscriptions_keep_each_address_once_in_order() -> None:
    subscriptions = Subscriptions()
    for topic, address in (("a", "x"), ("a", "y"), ("a", "x"), ("b", "x")):
        subscriptions.add(topic, address)
    assert (subscriptions.addresses("a"), subscriptions.addresses("b"), subscriptions.addresses("c")) == (
        ["x", "y"],
        ["x"],
        [],
    )
