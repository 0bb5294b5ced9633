"""Refused credentials are recognisable at the driver boundary: `ChannelAuthError`, answered as
`PushStatus.UNAUTHORIZED` (no attempt used, no dead letter)."""

from __future__ import annotations

import pytest

from nexus.channels.wire import classify_status
from nexus.drivers.dto import PushResult, PushStatus
from nexus.errors import ChannelAuthError, TerminalChannelError


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth_errors(status: int) -> None:
    error = classify_status(status, "refused", payload={"errors": "bad token"})
    assert isinstance(error, ChannelAuthError) and isinstance(error, TerminalChannelError)
    result = PushResult.from_error(7, error)
    assert (result.status, result.counts_as_attempt, result.error) == (
        PushStatus.UNAUTHORIZED,
        False,
        "refused",
    )
    assert result.detail == {"status": status, "response": {"errors": "bad token"}}


def test_other_terminal_errors_are_still_dead_lettered() -> None:
    assert PushResult.from_error(7, classify_status(404, "gone")).status is PushStatus.TERMINAL
