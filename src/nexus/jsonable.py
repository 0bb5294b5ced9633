"""Records as JSON: what the CLI's `--json`, the API and the dashboard print of a service's
frozen dataclasses (`asdict`), with every datetime, however deep, as ISO 8601 text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = _json_value(value)
    return converted


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value
