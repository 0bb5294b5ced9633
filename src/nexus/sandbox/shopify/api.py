"""One Admin GraphQL request, end to end: parse, validate, cost, throttle, execute.

The order of the checks is Shopify's: a document that does not parse or validate is refused
without touching the bucket; so is an oversized input array or a query over the single-query
cost limit. Only then is the requested cost taken from the bucket (or the request throttled);
after execution the difference between requested and actual cost is refunded.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values

from nexus.sandbox.shopify import errors
from nexus.sandbox.shopify.resolvers import ShopBackend, bind
from nexus.sandbox.shopify.schema import build_admin_schema
from nexus.sandbox.shopify.throttle import MAX_QUERY_COST, CostCalculator, LeakyBucket
from nexus.sandbox.stats import SandboxStats


@functools.cache
def admin_schema() -> GraphQLSchema:
    """Built once: resolvers are stateless and read the shop from the execution context."""
    return bind(build_admin_schema())


@dataclass(slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class AdminGraphQL:
    def __init__(
        self, backend: ShopBackend, bucket: LeakyBucket, stats: SandboxStats, *, throttled_status: int = 200
    ) -> None:
        self._backend = backend
        self._bucket = bucket
        self._stats = stats
        self._throttled_status = throttled_status
        self.schema = admin_schema()

    def handle(self, payload: Any) -> Reply:
        request = _request_parts(payload)
        if request is None:
            return Reply(400, {"errors": {"query": "Required parameter missing or invalid"}})
        query, variables, operation_name = request
        document, problems = _checked_document(query)
        if problems:
            return Reply(200, {"errors": problems})
        assert document is not None
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                f'No operation named "{operation_name}"'
                if operation_name
                else "An operation name is required when the document has more than one operation"
            )
            return Reply(200, {"errors": [{"message": message}]})
        coerced = get_variable_values(self.schema, operation.variable_definitions or (), variables)
        if isinstance(coerced, list):
            refused = errors.variable_errors(self.schema, operation, variables)
            return Reply(200, {"errors": refused or [e.formatted for e in coerced]})
        oversized = self._oversized_inputs(operation, coerced)
        if oversized:
            return Reply(200, {"errors": oversized})
        calculator = CostCalculator(self.schema, document, operation, coerced)
        requested = calculator.requested()
        if requested > MAX_QUERY_COST:
            self._stats.max_cost_exceeded += 1
            return Reply(200, {"errors": [errors.max_cost_exceeded(requested, MAX_QUERY_COST)]})
        if not self._bucket.try_take(requested):
            return self._throttled(requested)
        result = execute_sync(
            self.schema,
            document,
            context_value=self._backend,
            variable_values=variables,
            operation_name=operation_name,
        )
        # With no data at all (a root error) Shopify still charges what it requested.
        actual = requested if result.data is None else min(requested, calculator.actual(result.data))
        self._bucket.refund(requested - actual)
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [_execution_error(e) for e in result.errors]
        body["data"] = result.data
        body["extensions"] = {"cost": self._cost(requested, actual)}
        return Reply(200, body)

    def _throttled(self, requested: int) -> Reply:
        self._stats.throttled += 1
        body = {"errors": [errors.throttled()], "extensions": {"cost": self._cost(requested, None)}}
        headers = {}
        if self._throttled_status == 429:
            headers["Retry-After"] = str(max(1, math.ceil(self._bucket.seconds_until(requested))))
        return Reply(self._throttled_status, body, headers)

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": self._bucket.throttle_status(),
        }

    def _oversized_inputs(self, operation: OperationDefinitionNode, coerced: Any) -> list[dict[str, Any]]:
        root = (
            self.schema.mutation_type
            if operation.operation == OperationType.MUTATION
            else self.schema.query_type
        )
        assert root is not None
        found: list[dict[str, Any]] = []
        for node in operation.selection_set.selections:
            if not isinstance(node, FieldNode) or node.name.value not in root.fields:
                continue
            try:
                arguments = get_argument_values(root.fields[node.name.value], node, coerced)
            except GraphQLError:
                continue  # execution reports it
            key = node.alias.value if node.alias else node.name.value
            found.extend(errors.oversized_inputs(key, arguments, node))
        return found


@functools.lru_cache(maxsize=256)
def _checked_document(query: str) -> tuple[DocumentNode | None, list[dict[str, Any]]]:
    """Parse and validate once per distinct query text: clients resend the same few documents."""
    try:
        document = parse(query)
    except GraphQLSyntaxError as exc:
        return None, [errors.syntax_error(exc)]
    invalid = validate(admin_schema(), document)
    return document, [errors.validation_error(e, document) for e in invalid]


def _request_parts(payload: Any) -> tuple[str, dict[str, Any], str | None] | None:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("query"), str):
        return None
    variables = payload.get("variables") or {}
    if isinstance(variables, str):  # some clients send the variables as a JSON string
        try:
            variables = json.loads(variables)
        except ValueError:
            return None
    if not isinstance(variables, dict):
        return None
    name = payload.get("operationName")
    return payload["query"], variables, name if isinstance(name, str) and name else None


def _execution_error(error: GraphQLError) -> dict[str, Any]:
    shaped = dict(error.formatted)
    if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
        # A resolver bug: Shopify would answer with an opaque internal error.
        shaped["extensions"] = {"code": "INTERNAL_SERVER_ERROR"}
    return shaped
