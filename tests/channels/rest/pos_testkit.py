"""A point-of-sale back office as an in-house system might expose it, and the `rest` channel
settings that describe it. A plain module (not conftest.py): test modules import it directly."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexus.drivers.contract import WebhookRequest

API_KEY = "pos-key-123"
WEBHOOK_SECRET = "pos-webhook-secret"
PAGE_SIZE = 2

SETTINGS: dict[str, Any] = {
    "auth_header": "X-Api-Key",
    "auth_template": "{api_key}",
    "list_url": "/api/items?page={page}",
    "items_path": "data.items",
    "quantity_path": "stock.available",
    "barcode_path": "ean",
    "push_url": "/api/stock",
    "batch_key": "updates",
    "item_id_field": "item_id",
    "item_sku_field": "sku",
    "item_quantity_field": "stock.available",
    "batch_size": 3,
    "results_path": "results",
    "webhook": {
        "signature_header": "X-Pos-Signature",
        "signature_prefix": "sha256=",
        "topic_path": "type",
        "delivery_id_header": "X-Pos-Delivery",
        "sale_topics": ["sale.completed"],
        "level_topics": ["stock.changed"],
        "events_path": "lines",
        "event_id_path": "sale_id",
    },
}
# The read modes of `read_levels`: by item, by batch (the default reads through list_url pages).
READ_BY_ITEM: dict[str, Any] = {"read_url": "/api/items/{id}", "read_items_path": "item"}
READ_BY_BATCH: dict[str, Any] = {"read_url": "/api/items?ids={ids}", "read_batch_size": 2}
CREDENTIALS = {"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}


class PosBackOffice:
    """Items with stock, a batch stock endpoint answering per item, an API key, a 429 knob.
    Reading back: `GET /api/items?ids=1,2` (a batch), `GET /api/items/{id}` (one item, 404
    when unknown)."""

    def __init__(self, skus: int = 5) -> None:
        self.items = {
            str(n): {
                "id": n,
                "sku": f"SKU-{n:06d}",
                "name": f"Item {n}",
                "ean": f"200{n:010d}",
                "stock": {"available": 4},
            }
            for n in range(1, skus + 1)
        }
        self.requests: list[tuple[str, str]] = []
        self.throttle_next = 0
        self.app = Starlette(
            routes=[
                Route("/api/items", self._list),
                Route("/api/items/{item_id}", self._item),
                Route("/api/stock", self._stock, methods=["POST"]),
            ]
        )

    def level(self, sku: str) -> int | None:
        for item in self.items.values():
            if item["sku"] == sku:
                return int(item["stock"]["available"])
        return None

    def _refused(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        if request.headers.get("x-api-key") != API_KEY:
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": "7"})
        return None

    async def _list(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        ids = request.query_params.get("ids")
        if ids is not None:
            wanted = ids.split(",")
            return JSONResponse({"data": {"items": [self.items[i] for i in wanted if i in self.items]}})
        page = int(request.query_params.get("page", "1"))
        rows = list(self.items.values())[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return JSONResponse({"data": {"items": rows, "page": page}})

    async def _item(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        item = self.items.get(request.path_params["item_id"])
        if item is None:
            return JSONResponse({"error": "no such item"}, status_code=404)
        return JSONResponse({"item": item})

    async def _stock(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        results = []
        for update in body["updates"]:
            item = self.items.get(str(update["item_id"]))
            if item is None or item["sku"] != update["sku"]:
                results.append({"sku": update["sku"], "error": "unknown item"})
                continue
            item["stock"]["available"] = update["stock"]["available"]
            results.append({"sku": update["sku"], "error": None})
        return JSONResponse({"results": results})


def signed(payload: dict[str, Any], *, delivery: str = "d-1", secret: str = WEBHOOK_SECRET) -> WebhookRequest:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest(
        channel="pos",
        headers={
            "x-pos-signature": signature,
            "x-pos-delivery": delivery,
            "content-type": "application/json",
        },
        body=body,
        received_at=datetime.now(UTC),
    )


SALE = {"type": "sale.completed", "sale_id": "S-1001", "lines": [{"sku": "SKU-000001", "quantity": 2}]}
LEVEL = {"type": "stock.changed", "lines": [{"sku": "SKU-000002", "quantity": 9}]}
