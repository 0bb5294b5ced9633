"""The `/_sandbox` control surface every sandbox app serves. It is NOT part of any channel's API:
it lets a person (or a test) poke a running sandbox with curl, and every answer carries an
`X-Nexus-Sandbox` header saying so.

    GET  /_sandbox                  what this is, plus the sandbox's own facts
    GET  /_sandbox/levels           {sku: quantity}
    PUT  /_sandbox/levels/{sku}     {"<quantity key>" or "quantity": n}  a merchant's edit in the admin
                                    (?webhook=lost: its webhook never comes)
    POST /_sandbox/sales            {"sku", "quantity"}       a storefront sale
    POST /_sandbox/webhooks         {"<topic key>", "address"}  subscribe an HTTP endpoint
    GET  /_sandbox/stats            the counters of SandboxStats
    POST /_sandbox/credentials      {"valid": false|true}  break or fix the credentials (where the
                                    channel passes `credentials`): its API answers 401 meanwhile
    GET  /_sandbox/latency          {"ms": n}  the network latency added to every request
    PUT  /_sandbox/latency          {"ms": n}  change it (`nexus.sandbox.base.NetworkLatency`)

A channel names its words in a `ControlSurface` (Shopify's quantity is "available", Etsy's sale
is a "receipt", Etsy subscribes an "event_type") and may add routes of its own.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from nexus.sandbox.base import Sandbox


@dataclass(frozen=True)
class ControlSurface:
    api: str  # the channel's name, as in "not part of the Shopify API"
    quantity_key: str = "quantity"  # the body key of PUT /_sandbox/levels/{sku}
    sale_key: str = "order"  # the key the created sale is answered under
    topic_key: str = "topic"  # the body key of POST /_sandbox/webhooks

    @property
    def header(self) -> dict[str, str]:
        return {"X-Nexus-Sandbox": f"control surface, not part of the {self.api} API"}

    def answer(self, body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=self.header)


def loads(raw: bytes) -> Any:
    """The JSON in `raw`; None when empty or not JSON."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


async def read_json(request: Request) -> Any:
    return loads(await request.body())


def control_routes(
    sandbox: Sandbox,
    surface: ControlSurface,
    *,
    info: Callable[[], Mapping[str, Any]],
    subscription: Callable[[Any], Mapping[str, Any]] | None = None,
    extra: Sequence[BaseRoute] = (),
    credentials: Callable[[bool], None] | None = None,
) -> list[BaseRoute]:
    """The routes under /_sandbox. `info`: the facts GET /_sandbox adds to its note;
    `subscription`: extra fields answered for what `sandbox.subscribe` returned (an id);
    `credentials`: called with True or False by POST /_sandbox/credentials."""
    answer = surface.answer
    key = surface.quantity_key

    async def about(_: Request) -> Response:
        note = (
            f"Nexus {surface.api} sandbox. /_sandbox/* is a control surface, NOT part of {surface.api}'s API."
        )
        return answer({"note": note, **info()})

    async def levels(_: Request) -> Response:
        return answer(sandbox.levels())

    async def set_level(request: Request) -> Response:
        sku = request.path_params["sku"]
        body = await read_json(request)
        # The channel's own field name, or plain "quantity" on every sandbox.
        quantity = body.get(key, body.get("quantity")) if isinstance(body, dict) else None
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            return answer({"error": f'expected {{"{key}": <int>}}'}, 400)
        # ?webhook=lost: the channel's webhook for this edit never comes (the reconciler finds it).
        lost = request.query_params.get("webhook") == "lost"
        try:
            with sandbox.deliveries.losing() if lost else contextlib.nullcontext():
                await sandbox.set_available(sku, quantity)
        except KeyError:
            return answer({"error": f"unknown SKU {sku!r}"}, 404)
        return answer({"sku": sku, key: sandbox.available(sku)})

    async def sales(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("sku"), str):
            return answer({"error": 'expected {"sku": <str>, "quantity": <int>}'}, 400)
        sku, quantity = body["sku"], body.get("quantity", 1)
        if not isinstance(quantity, int) or quantity < 1:
            return answer({"error": "quantity must be a positive integer"}, 400)
        try:
            sale = await sandbox.simulate_sale(sku, quantity)
        except KeyError:
            return answer({"error": f"unknown SKU {sku!r}"}, 404)
        if sale is None:
            return answer({"error": "not enough stock", key: sandbox.available(sku)}, 409)
        return answer({surface.sale_key: sale}, 201)

    async def webhooks(request: Request) -> Response:
        topic_key = surface.topic_key
        body = await read_json(request)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in (topic_key, "address")
        ):
            return answer({"error": f'expected {{"{topic_key}": <str>, "address": <url>}}'}, 400)
        subscribed = sandbox.subscribe(body[topic_key], body["address"])
        fields = dict(subscription(subscribed)) if subscription is not None else {}
        return answer({**fields, topic_key: body[topic_key], "address": body["address"]}, 201)

    async def stats(_: Request) -> Response:
        return answer(sandbox.stats.as_dict())

    async def set_credentials(request: Request) -> Response:
        body = await read_json(request)
        valid = body.get("valid") if isinstance(body, dict) else None
        if credentials is None:
            return answer({"error": f"the {surface.api} sandbox cannot break its credentials"}, 404)
        if not isinstance(valid, bool):
            return answer({"error": 'expected {"valid": <bool>}'}, 400)
        credentials(valid)
        return answer({"valid": valid})

    async def latency(request: Request) -> Response:
        if request.method != "GET":
            body = await read_json(request)
            ms = body.get("ms") if isinstance(body, dict) else None
            if not isinstance(ms, int | float) or isinstance(ms, bool) or not ms >= 0:
                return answer({"error": 'expected {"ms": <number >= 0>}'}, 400)
            sandbox.network.set_ms(ms)
        return answer({"ms": sandbox.network.ms})

    return [
        Route("/_sandbox", about, methods=["GET"]),
        Route("/_sandbox/levels", levels, methods=["GET"]),
        Route("/_sandbox/levels/{sku:path}", set_level, methods=["PUT", "POST"]),
        Route("/_sandbox/sales", sales, methods=["POST"]),
        Route("/_sandbox/webhooks", webhooks, methods=["POST"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/credentials", set_credentials, methods=["POST"]),
        Route("/_sandbox/latency", latency, methods=["GET", "PUT"]),
        *extra,
    ]
