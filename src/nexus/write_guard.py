"""Whether the running task holds a database write transaction open.

`Database.transaction` marks its task's context for as long as the transaction is open. Nothing
slow may be awaited there: on SQLite every other writer of the process waits for it (webhook
ingestion too), and on PostgreSQL its row locks are held meanwhile. A channel request, which can
wait on a rate limit for a minute, checks `in_write_transaction` and refuses
(docs/benchmarks.md, finding 18). This module imports nothing of Nexus, so the drivers' side
(`nexus.ratelimit`) can check without loading the storage layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_writing: ContextVar[bool] = ContextVar("nexus_write_transaction", default=False)


def in_write_transaction() -> bool:
    """The running task is inside a write transaction (`Database.transaction`)."""
    return _writing.get()


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Mark the running task as inside a write transaction until the block ends."""
    token = _writing.set(True)
    try:
        yield
    finally:
        _writing.reset(token)
