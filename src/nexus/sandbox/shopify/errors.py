"""Top-level GraphQL errors in the shape Shopify (graphql-ruby) sends them.

graphql-core finds the same problems Shopify finds, but words them differently; a client that
matches on `extensions.code` or on the message should see what the real API says. The common
validation errors are translated (unknown field -> `undefinedField`, unknown argument ->
`argumentNotAccepted`, ...); the rest keep graphql-core's message under a generic code.
Sources for the shapes: real responses quoted in public client test suites (undefinedField,
THROTTLED, MAX_COST_EXCEEDED, MAX_INPUT_SIZE_EXCEEDED, INVALID_VARIABLE, BAD_REQUEST).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableDefinitionNode,
    is_input_type,
    is_non_null_type,
    print_ast,
    type_from_ast,
)
from graphql.utilities import validate_input_value

ErrorDict = dict[str, Any]

RATE_LIMITS_DOC = "https://shopify.dev/api/usage/limits#rate-limits"
MAX_INPUT_ARRAY = 250

_LOCATION_PLURALS = {
    "query": "queries",
    "mutation": "mutations",
    "subscription": "subscriptions",
    "field": "fields",
    "fragment definition": "fragment definitions",
    "fragment spread": "fragment spreads",
    "inline fragment": "inline fragments",
    "variable definition": "variable definitions",
}

_ALLOWED_ON = {
    "idempotent": "fields",
    "include": "fields, fragment spreads, inline fragments",
    "skip": "fields, fragment spreads, inline fragments",
}

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], tuple[str, dict[str, Any]]]]

_RULES: list[_Rule] = [
    (
        re.compile(r"^Cannot query field '(?P<field>[^']+)' on type '(?P<type>[^']+)'\."),
        lambda m: (
            f"Field '{m['field']}' doesn't exist on type '{m['type']}'",
            {"code": "undefinedField", "typeName": m["type"], "fieldName": m["field"]},
        ),
    ),
    (
        re.compile(r"^Unknown argument '(?P<arg>[^']+)' on field '(?P<type>[^'.]+)\.(?P<field>[^']+)'\."),
        lambda m: (
            f"Field '{m['field']}' doesn't accept argument '{m['arg']}'",
            {
                "code": "argumentNotAccepted",
                "name": m["field"],
                "typeName": "Field",
                "argumentName": m["arg"],
            },
        ),
    ),
    (
        re.compile(r"^Unknown argument '(?P<arg>[^']+)' on directive '@(?P<name>[^']+)'\."),
        lambda m: (
            f"Directive '{m['name']}' doesn't accept argument '{m['arg']}'",
            {
                "code": "argumentNotAccepted",
                "name": m["name"],
                "typeName": "Directive",
                "argumentName": m["arg"],
            },
        ),
    ),
    (
        re.compile(r"^Argument '@(?P<name>[^(]+)\((?P<arg>[^:]+):\)' of type '[^']+' is required"),
        lambda m: (
            f"Directive '{m['name']}' is missing required arguments: {m['arg']}",
            {
                "code": "missingRequiredArguments",
                "className": "Directive",
                "name": m["name"],
                "arguments": m["arg"],
            },
        ),
    ),
    (
        re.compile(
            r"^Argument '(?P<type>[^.]+)\.(?P<field>[^(]+)\((?P<arg>[^:]+):\)' of type '[^']+' is required"
        ),
        lambda m: (
            f"Field '{m['field']}' is missing required arguments: {m['arg']}",
            {
                "code": "missingRequiredArguments",
                "className": "Field",
                "name": m["field"],
                "arguments": m["arg"],
            },
        ),
    ),
    (
        re.compile(r"^Directive '@(?P<name>[^']+)' may not be used on (?P<where>[a-z ]+)\."),
        lambda m: (
            f"'@{m['name']}' can't be applied to {_LOCATION_PLURALS.get(m['where'], m['where'])}"
            f" (allowed: {_ALLOWED_ON.get(m['name'], 'elsewhere')})",
            {"code": "directiveCannotBeApplied", "targetName": m["where"], "name": m["name"]},
        ),
    ),
    (
        re.compile(r"^Unknown directive '@(?P<name>[^']+)'\."),
        lambda m: (
            f"Directive @{m['name']} is not defined",
            {"code": "undefinedDirective", "directiveName": m["name"]},
        ),
    ),
    (
        re.compile(r"^Variable '\$(?P<name>[^']+)' is never used(?: in operation '(?P<op>[^']+)')?"),
        lambda m: (
            f"Variable ${m['name']} is declared by {m['op'] or 'anonymous query'} but not used",
            {"code": "variableNotUsed", "variableName": m["name"]},
        ),
    ),
    (
        re.compile(r"^Variable '\$(?P<name>[^']+)' is not defined(?: by operation '(?P<op>[^']+)')?"),
        lambda m: (
            f"Variable ${m['name']} is used by {m['op'] or 'anonymous query'} but not declared",
            {"code": "variableNotDefined", "variableName": m["name"]},
        ),
    ),
    (
        re.compile(r"^Unknown type '(?P<name>[^']+)'\."),
        lambda m: (
            f"{m['name']} isn't a defined input type",
            {"code": "variableRequiresValidType", "typeName": m["name"]},
        ),
    ),
]


def syntax_error(error: GraphQLSyntaxError) -> ErrorDict:
    """graphql-ruby says "syntax error, ..." and points at the token."""
    locations = [{"line": loc.line, "column": loc.column} for loc in error.locations or []]
    where = f" at [{locations[0]['line']}, {locations[0]['column']}]" if locations else ""
    description = error.message.removeprefix("Syntax Error: ").rstrip(".")
    return {"message": f"syntax error, {description}{where}", "locations": locations}


def validation_error(error: GraphQLError, document: DocumentNode) -> ErrorDict:
    message, extensions = error.message, {"code": "GRAPHQL_VALIDATION_FAILED"}
    for pattern, shape in _RULES:
        match = pattern.match(error.message)
        if match is not None:
            message, extensions = shape(match)
            break
    shaped: ErrorDict = {
        "message": message,
        "locations": [{"line": loc.line, "column": loc.column} for loc in error.locations or []],
    }
    path = _ast_path(document, error.nodes[0]) if error.nodes else None
    if path:
        shaped["path"] = path
    shaped["extensions"] = extensions
    return shaped


def variable_errors(
    schema: GraphQLSchema, operation: OperationDefinitionNode, raw: Mapping[str, Any]
) -> list[ErrorDict]:
    """INVALID_VARIABLE errors with the per-field problems Shopify lists."""
    errors: list[ErrorDict] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        var_type = type_from_ast(schema, definition.type)
        if var_type is None or not is_input_type(var_type):
            continue  # already reported by validation
        input_type: GraphQLInputType = var_type
        value = raw.get(name)
        problems: list[dict[str, Any]] = []
        if name not in raw or value is None:
            if is_non_null_type(input_type) and definition.default_value is None:
                problems.append({"path": [], "explanation": "Expected value to not be null"})
        else:
            problems.extend(_problems(value, input_type))
        if problems:
            detail = ", ".join(
                f"{'.'.join(str(p) for p in problem['path'])} ({problem['explanation']})"
                if problem["path"]
                else f"({problem['explanation']})"
                for problem in problems
            )
            loc = definition.loc
            errors.append(
                {
                    "message": f"Variable ${name} of type {_type_text(definition)} was provided invalid value"
                    + (f" for {detail}" if problems[0]["path"] else ""),
                    "locations": [_location(definition)] if loc else [],
                    "extensions": {"code": "INVALID_VARIABLE", "value": value, "problems": problems},
                }
            )
    return errors


def _problems(value: Any, input_type: GraphQLInputType) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def collect(error: GraphQLError, path: Sequence[str | int]) -> None:
        found.append({"path": list(path), "explanation": error.message})

    validate_input_value(value, input_type, collect)
    return found


def oversized_inputs(root_key: str, arguments: Mapping[str, Any], node: Node) -> list[ErrorDict]:
    """MAX_INPUT_SIZE_EXCEEDED for every input array over 250 items ("Shopify API limits")."""
    errors: list[ErrorDict] = []
    for path, size in _oversized(arguments, [root_key]):
        errors.append(
            {
                "message": f"The input array size of {size} is greater than the maximum allowed of "
                f"{MAX_INPUT_ARRAY}.",
                "locations": [_location(node)],
                "path": path,
                "extensions": {"code": "MAX_INPUT_SIZE_EXCEEDED"},
            }
        )
    return errors


def _oversized(value: Any, path: list[str]) -> Iterator[tuple[list[str], int]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _oversized(inner, [*path, str(key)])
    elif isinstance(value, list):
        if len(value) > MAX_INPUT_ARRAY:
            yield path, len(value)
        else:
            for inner in value:
                yield from _oversized(inner, path)


def max_cost_exceeded(cost: int, max_cost: int) -> ErrorDict:
    return {
        "message": (
            f"Query cost is {cost}, which exceeds the single query max cost limit ({max_cost}).\n\n"
            "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
            "cost of a query is calculated.\n\n"
            "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
            "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
        ),
        "extensions": {
            "code": "MAX_COST_EXCEEDED",
            "cost": cost,
            "maxCost": max_cost,
            "documentation": RATE_LIMITS_DOC,
        },
    }


def throttled() -> ErrorDict:
    return {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC}}


def _type_text(definition: VariableDefinitionNode) -> str:
    return print_ast(definition.type)


def _location(node: Node) -> dict[str, int]:
    if node.loc is None:
        return {"line": 1, "column": 1}
    token = node.loc.start_token
    return {"line": token.line, "column": token.column}


def _ast_path(document: DocumentNode, target: Node) -> list[str] | None:
    """graphql-ruby's error path: "query Name" (or "fragment X"), then response keys."""
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            head = definition.operation.value + (f" {definition.name.value}" if definition.name else "")
        elif isinstance(definition, FragmentDefinitionNode):
            head = f"fragment {definition.name.value}"
        else:
            continue
        if definition is target or any(d is target for d in definition.directives or ()):
            return [head]
        found = _find_in(definition.selection_set, target, [head])
        if found is not None:
            return found
        if isinstance(definition, OperationDefinitionNode) and any(
            v is target or v.variable is target for v in definition.variable_definitions or ()
        ):
            return [head]
    return None


def _find_in(selection_set: SelectionSetNode | None, target: Node, path: Sequence[str]) -> list[str] | None:
    if selection_set is None:
        return None
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            here = [*path, selection.alias.value if selection.alias else selection.name.value]
            if selection is target or any(
                a is target or a.value is target for a in selection.arguments or ()
            ):
                return here
            if any(d is target for d in selection.directives or ()):
                return here
            found = _find_in(selection.selection_set, target, here)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else "..."
            here = [*path, f"... on {condition}"]
            if selection is target:
                return here
            found = _find_in(selection.selection_set, target, here)
        elif isinstance(selection, FragmentSpreadNode):
            if selection is target:
                return [*path, f"... {selection.name.value}"]
            found = None
        else:  # pragma: no cover
            found = None
        if found is not None:
            return found
    return None
