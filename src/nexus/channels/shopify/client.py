"""GraphQL transport to the Shopify Admin API over the channel's shared httpx client.

Every request takes its estimated cost from the channel bucket first and re-syncs the bucket from
`extensions.cost.throttleStatus` afterwards. A THROTTLED answer (HTTP 200 or 429; Shopify's docs do
not pin the status) stops the whole bucket for as long as Shopify needs to refill, then the same
request body is sent again, so an `@idempotent` key stays the same. Failures leave as
nexus.errors: TransientChannelError (retry later) or TerminalChannelError (retrying cannot help).

A query Shopify will never run as it stands leaves at once as ShopifyQueryCostError, carrying the
limit it broke: over the single-query cap (MAX_COST_EXCEEDED, nothing charged) or over the store's
whole bucket (THROTTLED while `requestedQueryCost > maximumAvailable`: no wait would make it fit).
The caller can ask for less.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from nexus.channels.wire import classify_status, is_transient_status
from nexus.drivers.contract import ChannelRateLimiter
from nexus.errors import ChannelAuthError, TerminalChannelError, TransientChannelError
from nexus.ratelimit.headers import retry_after_seconds, round_trip

ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"

# Top-level GraphQL error codes that mean "Shopify failed, try later" rather than "your request is wrong".
_TRANSIENT_ERROR_CODES = frozenset({"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"})
# The token lacks a scope or was revoked: the whole channel is disconnected until it is fixed.
_AUTH_ERROR_CODES = frozenset({"ACCESS_DENIED", "UNAUTHORIZED"})
# When Shopify gives no figure at all, wait this long before trying a throttled request again.
_DEFAULT_THROTTLE_WAIT = 1.0


class ShopifyThrottledError(TransientChannelError):
    """Still THROTTLED after the bounded retries; `retry_after` is Shopify's own refill estimate."""


class ShopifyQueryCostError(TerminalChannelError):
    """The query requests more points than Shopify grants one query; the same query always fails.

    `requested` is Shopify's calculated cost of it, `limit` the ceiling it broke (`maxCost` of a
    MAX_COST_EXCEEDED, or the bucket's `maximumAvailable`); either is None when Shopify gave none.
    """

    def __init__(
        self, message: str, *, requested: float | None, limit: float | None, payload: object = None
    ) -> None:
        super().__init__(message, status=200, payload=payload)
        self.requested = requested
        self.limit = limit


@dataclass(frozen=True, slots=True)
class QueryCost:
    requested: float | None
    actual: float | None
    maximum_available: float | None
    currently_available: float | None
    restore_rate: float | None


@dataclass(frozen=True, slots=True)
class GraphQLResult:
    data: Mapping[str, Any]
    cost: QueryCost | None


class ShopifyGraphQLClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        rate: ChannelRateLimiter,
        base_url: str,
        access_token: str,
        api_version: str,
        max_throttle_retries: int,
    ) -> None:
        self._http = http
        self._rate = rate
        self._access_token = access_token
        self._max_throttle_retries = max_throttle_retries
        self.endpoint = f"{base_url.rstrip('/')}/admin/api/{api_version}/graphql.json"
        self.throttled_responses = 0  # for tests and status pages: how often Shopify said THROTTLED
        # The store's bucket size from the last throttleStatus: no query may request more.
        self.maximum_available: float | None = None

    async def execute(
        self, query: str, variables: Mapping[str, Any], *, cost: float, operation_name: str | None = None
    ) -> GraphQLResult:
        """Send one operation; retry only THROTTLED answers, with the same body, at most N times."""
        body: dict[str, Any] = {"query": query, "variables": dict(variables)}
        if operation_name:
            body["operationName"] = operation_name
        content = json.dumps(body, separators=(",", ":")).encode()
        wait = _DEFAULT_THROTTLE_WAIT
        for _attempt in range(self._max_throttle_retries + 1):
            await self._rate.acquire(cost)
            response = await self._post(content)
            payload = _json_or_none(response)
            cost_info = _cost(payload)
            if cost_info is not None and cost_info.maximum_available is not None:
                self.maximum_available = cost_info.maximum_available
            over_cap = _max_cost_exceeded(payload)
            if over_cap is not None:
                # Refused before running: Shopify charged nothing, so neither do we.
                await self._rate.refund(cost)
                raise over_cap
            if not _is_throttled(response, payload):
                # Shopify charges the requested cost up front and refunds the unused part; its
                # currentlyAvailable already includes the refund, so refund before clamping to it.
                await self._refund_unused(cost, cost_info)
            await self._rate.observe(
                available=None if cost_info is None else cost_info.currently_available,
                capacity=None if cost_info is None else cost_info.maximum_available,
                refill_per_second=None if cost_info is None else cost_info.restore_rate,
                round_trip=round_trip(response),
            )
            if not _is_throttled(response, payload):
                return _result(response, payload, cost_info)
            self.throttled_responses += 1
            over_bucket = _over_bucket(cost_info, cost, payload)
            if over_bucket is not None:
                await self._rate.refund(cost)  # refused before running: nothing was spent
                raise over_bucket
            wait = _throttle_wait(response, cost_info, cost)
            await self._rate.penalize(wait)
        raise ShopifyThrottledError(
            f"Shopify THROTTLED the request {self._max_throttle_retries + 1} times",
            status=429,
            retry_after=wait,
        )

    async def _refund_unused(self, taken: float, cost: QueryCost | None) -> None:
        if cost is not None and cost.actual is not None and taken > cost.actual:
            await self._rate.refund(taken - cost.actual)

    async def _post(self, content: bytes) -> httpx.Response:
        headers = {
            ACCESS_TOKEN_HEADER: self._access_token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            return await self._http.post(self.endpoint, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransientChannelError(f"Shopify request timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(f"Shopify connection failed: {type(exc).__name__}: {exc}") from exc


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _cost(payload: Any) -> QueryCost | None:
    if not isinstance(payload, Mapping):
        return None
    extensions = payload.get("extensions")
    cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
    if not isinstance(cost, Mapping):
        return None
    status = cost.get("throttleStatus")
    status = status if isinstance(status, Mapping) else {}
    return QueryCost(
        requested=_number(cost.get("requestedQueryCost")),
        actual=_number(cost.get("actualQueryCost")),
        maximum_available=_number(status.get("maximumAvailable")),
        currently_available=_number(status.get("currentlyAvailable")),
        restore_rate=_number(status.get("restoreRate")),
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _error_list(payload: Any) -> list[Mapping[str, Any]]:
    errors = payload.get("errors") if isinstance(payload, Mapping) else None
    if isinstance(errors, list):
        return [e for e in errors if isinstance(e, Mapping)]
    return []


def _error_code(error: Mapping[str, Any]) -> str | None:
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    return code if isinstance(code, str) else None


def _is_throttled(response: httpx.Response, payload: Any) -> bool:
    if any(_error_code(e) == "THROTTLED" for e in _error_list(payload)):
        return True
    # A bare 429 (no GraphQL body) is the same signal from a proxy in front of the API.
    return response.status_code == 429 and not _error_list(payload)


def _max_cost_exceeded(payload: Any) -> ShopifyQueryCostError | None:
    for error in _error_list(payload):
        if _error_code(error) != "MAX_COST_EXCEEDED":
            continue
        extensions = error.get("extensions")
        extensions = extensions if isinstance(extensions, Mapping) else {}
        first_line = str(error.get("message") or "MAX_COST_EXCEEDED").strip().splitlines()[0]
        return ShopifyQueryCostError(
            f"Shopify refused the query: {first_line}",
            requested=_number(extensions.get("cost")),
            limit=_number(extensions.get("maxCost")),
            payload=payload,
        )
    return None


def _over_bucket(cost: QueryCost | None, estimated: float, payload: Any) -> ShopifyQueryCostError | None:
    """A THROTTLED query that requests more than the whole bucket: no wait would make it fit."""
    if cost is None or cost.maximum_available is None:
        return None
    requested = cost.requested if cost.requested is not None else estimated
    if requested <= cost.maximum_available:
        return None
    return ShopifyQueryCostError(
        f"Shopify cannot run a query costing {requested:g} points: the store's bucket holds "
        f"{cost.maximum_available:g}",
        requested=requested,
        limit=cost.maximum_available,
        payload=payload,
    )


def _throttle_wait(response: httpx.Response, cost: QueryCost | None, estimated: float) -> float:
    """Seconds until the bucket holds what the request needs: (needed - available) / restoreRate."""
    if cost is not None and cost.currently_available is not None and cost.restore_rate:
        needed = cost.requested if cost.requested is not None else estimated
        if cost.maximum_available is not None:
            needed = min(needed, cost.maximum_available)
        return max(needed - cost.currently_available, 0.0) / cost.restore_rate
    retry_after = retry_after_seconds(response.headers)
    return retry_after if retry_after is not None else _DEFAULT_THROTTLE_WAIT


def _describe_errors(payload: Any) -> str:
    errors = payload.get("errors") if isinstance(payload, Mapping) else None
    if isinstance(errors, str):
        return errors
    messages = [str(e.get("message", e)) for e in _error_list(payload)]
    return "; ".join(messages) if messages else "no error detail"


def _result(response: httpx.Response, payload: Any, cost: QueryCost | None) -> GraphQLResult:
    status = response.status_code
    if status in (401, 403):
        raise ChannelAuthError(
            f"Shopify refused the credentials (HTTP {status}): {_describe_errors(payload)}",
            status=status,
            payload=payload,
        )
    if status == 404:
        raise TerminalChannelError(
            "Shopify endpoint not found (HTTP 404): wrong store URL or unsupported API version",
            status=status,
            payload=payload,
        )
    if status >= 400:
        # 400 malformed, 402 frozen shop, 423 locked shop ...: the same request will fail again.
        # (A 429 carrying GraphQL errors is not a throttle: `request` already let it through here.)
        raise classify_status(
            status,
            f"Shopify server error (HTTP {status})"
            if is_transient_status(status)
            else f"Shopify rejected the request (HTTP {status}): {_describe_errors(payload)}",
            retry_after=retry_after_seconds(response.headers),
            payload=payload,
        )
    if not isinstance(payload, Mapping):
        # A 2xx without JSON comes from something in between (proxy, maintenance page): try later.
        raise TransientChannelError(f"Shopify answered HTTP {status} without a JSON body", status=status)
    errors = _error_list(payload)
    if errors or isinstance(payload.get("errors"), str):
        codes = {_error_code(e) for e in errors}
        message = f"Shopify GraphQL error: {_describe_errors(payload)}"
        if codes & _TRANSIENT_ERROR_CODES:
            raise TransientChannelError(message, status=status, payload=payload)
        if codes & _AUTH_ERROR_CODES:
            raise ChannelAuthError(message, status=status, payload=payload)
        raise TerminalChannelError(message, status=status, payload=payload)
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise TransientChannelError("Shopify answered without data or errors", status=status, payload=payload)
    return GraphQLResult(data=data, cost=cost)
