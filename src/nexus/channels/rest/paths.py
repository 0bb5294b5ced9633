"""Dotted paths into JSON documents: `data.items`, `stock.available`, `lines.0.sku`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MISSING = object()


def get(document: Any, path: str | None) -> Any:
    """The value at `path`, or MISSING. An empty path is the document itself."""
    if not path:
        return document
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, Sequence) and not isinstance(current, str | bytes) and part.isdigit():
            index = int(part)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def put(document: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` in a dict, creating the intermediate objects (`stock.available` → nested)."""
    parts = path.split(".")
    current = document
    for part in parts[:-1]:
        current = current.setdefault(part, {})
    current[parts[-1]] = value
