"""`WebhookRequest.json`: the body decoded once, shared by the receiver's check and the driver."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime

import pytest

from nexus.drivers.contract import WebhookRequest
from nexus.errors import WebhookPayloadError


def _request(body: bytes) -> WebhookRequest:
    return WebhookRequest(channel="c", headers={}, body=body, received_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_the_body_is_decoded_once_and_shared() -> None:
    request = _request(b'{"a": [1, 2]}')
    first = request.json()
    assert first == {"a": [1, 2]}
    assert request.json() is first


def test_a_body_that_is_not_json_is_a_payload_error_every_time() -> None:
    request = _request(b"{not json")
    for _ in range(2):
        with pytest.raises(WebhookPayloadError, match="body is not valid JSON"):
            request.json()


def test_a_copied_or_pickled_request_still_decodes_its_body() -> None:
    for request in (_request(b'{"a": 1}'), _decoded(_request(b'{"a": 1}'))):
        assert copy.deepcopy(request).json() == {"a": 1}
        assert pickle.loads(pickle.dumps(request)).json() == {"a": 1}


def _decoded(request: WebhookRequest) -> WebhookRequest:
    request.json()
    return request


def test_a_replaced_body_is_decoded_afresh() -> None:
    request = _request(b'{"a": 1}')
    assert request.json() == {"a": 1}
    assert dataclasses.replace(request, body=b'{"a": 2}').json() == {"a": 2}
    assert request == _request(b'{"a": 1}')  # the cache takes no part in equality
