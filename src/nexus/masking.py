"""Secrets never reach a stored row or a log: one mask for the audit log, dead letters and webhooks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SECRET_KEY = re.compile(
    r"token|secret|password|passwd|authorization|api[_-]?key|access[_-]?key|credential|signature|hmac",
    re.IGNORECASE,
)
MASK = "***"


def mask_secrets(value: Any) -> Any:
    """A copy of `value` with every entry under a secret-looking key replaced by a mask."""
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and SECRET_KEY.search(key) else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value
