"""The one HTTP status -> transient/terminal decision every channel client uses."""

from __future__ import annotations

import pytest

from nexus.channels.wire import classify_status, is_transient_status
from nexus.errors import TerminalChannelError, TerminalError, TransientChannelError, TransientError


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 599])
def test_timeouts_throttles_and_server_errors_are_transient(status: int) -> None:
    error = classify_status(status, "busy", retry_after=3.0, payload={"x": 1})
    assert isinstance(error, TransientChannelError) and isinstance(error, TransientError)
    assert (error.status, error.retry_after, error.payload, str(error)) == (status, 3.0, {"x": 1}, "busy")
    assert is_transient_status(status)


@pytest.mark.parametrize("status", [300, 304, 400, 401, 403, 404, 409, 413, 422, 423])
def test_every_other_status_is_terminal(status: int) -> None:
    error = classify_status(status, "refused", retry_after=3.0, payload={"x": 1})
    assert isinstance(error, TerminalChannelError) and isinstance(error, TerminalError)
    assert not isinstance(error, TransientError)
    assert (error.status, error.payload, str(error)) == (status, {"x": 1}, "refused")
    assert not is_transient_status(status)
