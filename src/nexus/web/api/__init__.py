"""The REST API under `/nexus/api/v1` (issue 12 point 1): `api_router(nexus)`, one module per
resource, pydantic answers in `schemas`, the service-error mapping and paging in `common`, and
the offline reference page (`docs_router`, `/nexus/api/docs`).

Every route calls the services the CLI calls (nexus.sync.*, nexus.webhooks.log, the Python API):
the API is the same operations, not a second implementation, and it holds no SQL. Read routes
need a `view` token, state-changing ones `manage` (`nexus.web.auth`); each manage action writes
one operator-action row (`nexus.access.actions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

from nexus.web.api import batches, channels, dead_letters, items, listings, records, webhooks
from nexus.web.api.docs import DOCS_PATH, OPENAPI_PATH, docs_router

if TYPE_CHECKING:
    from nexus.engine import Nexus

__all__ = ["API_PREFIX", "DOCS_PATH", "OPENAPI_PATH", "api_router", "docs_router"]

API_PREFIX = "/nexus/api/v1"


def api_router(nexus: Nexus) -> APIRouter:
    """Every API route, to be included under `API_PREFIX`."""
    router = APIRouter()
    for module in (items, listings, channels, batches, dead_letters, webhooks, records):
        router.include_router(module.router(nexus))
    return router
