"""Secrets never reach a stored row or a log: one mask for the audit log, dead letters and webhooks."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

SECRET_KEY = re.compile(
    r"token|secret|password|passwd|authorization|api[_-]?key|access[_-]?key|credential|signature|hmac",
    re.IGNORECASE,
)
MASK = "***"


@functools.lru_cache(maxsize=1024)
def is_secret_key(key: str) -> bool:
    """Whether values under `key` are masked. Cached: a webhook's few header names repeat on
    every delivery, and the search was a fifth of the receiver's own CPU."""
    return SECRET_KEY.search(key) is not None


def mask_secrets(value: Any) -> Any:
    """A copy of `value` with every entry under a secret-looking key replaced by a mask."""
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and is_secret_key(key) else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value
