"""Calculated query cost and the leaky bucket of points (Shopify "GraphQL Admin API rate limits").

Cost rules (shopify.dev, "GraphQL Admin API rate limits"; Shopify Engineering, "Rate Limiting
GraphQL APIs by Calculating Query Complexity"):
- scalar and enum fields cost 0, an object field costs 1;
- a connection costs 2 plus its `first`/`last` times the cost of one node, so nested
  connections multiply (`products(first: 5) { nodes { variants(first: 100) { ... } } }` is
  2 + 5 * (1 + 2 + 100 * ...));
- a list of objects costs one object per element (sized by the list argument, e.g. `ids`);
- an interface or union costs the maximum of its possible selections;
- a mutation field costs a flat 10;
- a single query may request at most 1000 points, checked before it runs.

The *requested* cost is computed from the document before execution, the *actual* cost from
the data that came back (shorter pages and null objects cost less); the bucket is refunded the
difference, as Shopify does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
)
from graphql.execution.values import VariableValues, get_argument_values

MAX_QUERY_COST = 1000
MUTATION_FIELD_COST = 10

_STATIC = object()  # "no data yet": compute the requested (static) cost

_Composite = GraphQLObjectType | GraphQLInterfaceType


class CostCalculator:
    """Requested and actual cost of one operation."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: VariableValues | None,
    ) -> None:
        self._schema = schema
        self._operation = operation
        self._variables = variables
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def requested(self) -> int:
        return self._root_cost(_STATIC)

    def actual(self, data: Mapping[str, Any] | None) -> int:
        return self._root_cost(data if data is not None else {})

    def _root_cost(self, data: Any) -> int:
        if self._operation.operation == OperationType.MUTATION:
            fields = [s for s in self._operation.selection_set.selections if isinstance(s, FieldNode)]
            return MUTATION_FIELD_COST * sum(1 for f in fields if f.name.value != "__typename")
        root = self._schema.query_type
        assert root is not None
        return self._selection_cost(root, self._operation.selection_set, data)

    def _selection_cost(self, parent: _Composite, selection_set: SelectionSetNode, data: Any) -> int:
        """Fields on `parent` plus, for an abstract parent, the dearest type-conditioned group."""
        total = 0
        groups: dict[str, int] = {}
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field_cost(parent, selection, data)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition.name.value if selection.type_condition else parent.name
                inner = selection.selection_set
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments.get(selection.name.value)
                if fragment is None:
                    continue
                condition, inner = fragment.type_condition.name.value, fragment.selection_set
            else:  # pragma: no cover - no other selection kinds exist
                continue
            target = self._schema.get_type(condition)
            if not isinstance(target, GraphQLObjectType | GraphQLInterfaceType):
                continue
            if condition == parent.name or (
                isinstance(parent, GraphQLObjectType) and target in parent.interfaces
            ):
                total += self._selection_cost(parent, inner, data)
            elif is_abstract_type(parent):
                groups[condition] = max(groups.get(condition, 0), self._selection_cost(target, inner, data))
        return total + max(groups.values(), default=0)

    def _field_cost(self, parent: _Composite, node: FieldNode, data: Any) -> int:
        name = node.name.value
        field = parent.fields.get(name)
        if field is None or name.startswith("__"):
            return 0
        named = get_named_type(field.type)
        if is_leaf_type(named) or not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        selection = node.selection_set
        if selection is None:
            return 0
        value: Any = _STATIC
        if data is not _STATIC:
            value = data.get(node.alias.value if node.alias else name) if isinstance(data, Mapping) else None
            if value is None:
                return 0  # a null object ends the query early and costs nothing further
        args = self._arguments(field, node)
        if named.name.endswith("Connection"):
            return self._connection_cost(named, selection, value, args)
        if is_list_type(get_nullable_type(field.type)):
            if value is _STATIC:
                size = next((len(v) for v in args.values() if isinstance(v, list)), 1)
                return size * (1 + self._selection_cost(named, selection, _STATIC))
            return sum(1 + self._selection_cost(named, selection, item) for item in value if item is not None)
        return 1 + self._selection_cost(named, selection, value)

    def _connection_cost(
        self, connection: _Composite, selection: SelectionSetNode, value: Any, args: Mapping[str, Any]
    ) -> int:
        node_type = connection.fields["nodes"].type if "nodes" in connection.fields else None
        named = get_named_type(node_type) if node_type is not None else None
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            return 2
        best = 0
        for field in selection.selections:
            if not isinstance(field, FieldNode) or field.selection_set is None:
                continue
            if field.name.value == "nodes":
                inner, via_edges = field.selection_set, False
            elif field.name.value == "edges":
                node_field = next(
                    (
                        s
                        for s in field.selection_set.selections
                        if isinstance(s, FieldNode) and s.name.value == "node" and s.selection_set
                    ),
                    None,
                )
                if node_field is None or node_field.selection_set is None:
                    continue
                inner, via_edges = node_field.selection_set, True
            else:
                continue  # pageInfo and cursors are part of the connection's flat 2
            if value is _STATIC:
                size = args.get("first") or args.get("last") or 0
                best = max(best, int(size) * (1 + self._selection_cost(named, inner, _STATIC)))
            else:
                best = max(
                    best,
                    sum(
                        1 + self._selection_cost(named, inner, n) for n in _nodes_of(value, field, via_edges)
                    ),
                )
        return 2 + best

    def _arguments(self, field: Any, node: FieldNode) -> dict[str, Any]:
        try:
            return get_argument_values(field, node, self._variables)
        except Exception:  # an invalid argument is reported by execution, not by costing
            return {}


def _nodes_of(value: Any, field: FieldNode, via_edges: bool) -> list[Any]:
    if not isinstance(value, Mapping):
        return []
    items = value.get(field.alias.value if field.alias else field.name.value) or []
    if not via_edges:
        return [item for item in items if item is not None]
    return [edge.get("node") for edge in items if isinstance(edge, Mapping) and edge.get("node") is not None]


class LeakyBucket:
    """Points that leak back at `restore_rate` per second, up to `maximum_available`.

    `time_scale` compresses time: the bucket refills `time_scale` times faster in wall-clock
    terms, and `throttleStatus.restoreRate` reports that effective rate, so a client that sizes
    its waits from the response stays exactly in step with the sandbox.
    """

    def __init__(
        self,
        maximum_available: float,
        restore_rate: float,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if maximum_available <= 0 or restore_rate <= 0 or time_scale <= 0:
            raise ValueError("maximum_available, restore_rate and time_scale must be positive")
        self.maximum_available = float(maximum_available)
        self.restore_rate = float(restore_rate) * time_scale
        self._clock = clock
        self._available = self.maximum_available
        self._updated = clock()

    def currently_available(self) -> float:
        now = self._clock()
        if now > self._updated:
            self._available = min(
                self.maximum_available, self._available + (now - self._updated) * self.restore_rate
            )
        self._updated = now
        return self._available

    def try_take(self, cost: float) -> bool:
        if self.currently_available() < cost:
            return False
        self._available -= cost
        return True

    def refund(self, points: float) -> None:
        self._available = min(self.maximum_available, self.currently_available() + max(0.0, points))

    def seconds_until(self, cost: float) -> float:
        missing = cost - self.currently_available()
        return max(0.0, missing / self.restore_rate)

    def throttle_status(self) -> dict[str, float | int]:
        # Shopify reports the level as a whole number and the two rates as floats.
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": int(self.currently_available()),
            "restoreRate": self.restore_rate,
        }
