"""The REST v3 endpoints Nexus uses, answered from the in-memory store.

Behaviour follows the v3 controllers (woocommerce/woocommerce `includes/rest-api/Controllers/
Version3`): `WC_REST_CRUD_Controller::get_items` (X-WP-Total, X-WP-TotalPages, Link), `get_item`
(404 `woocommerce_rest_{post_type}_invalid_id`), `WC_REST_Controller::batch_items` and
`check_batch_limit` (create + update + delete together at most 100, else 413
`woocommerce_rest_request_entity_too_large`; each update answered in order, as the saved object
or `{"id", "error": {"code", "message", "data"}}`), and the products/variations
`prepare_object_for_database` stock rules (stock_quantity only counts while manage_stock is on;
turning it off clears the quantity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from nexus.sandbox.woocommerce.payloads import product_json, variation_json, wp_error
from nexus.sandbox.woocommerce.store import VARIATION, Product

if TYPE_CHECKING:
    from nexus.sandbox.woocommerce.sandbox import WooCommerceSandbox

PER_PAGE_MAX = 100
INVALID_ID = "Invalid ID."
ORDERBY = frozenset({"id", "date", "modified", "title", "include", "slug"})


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class RestApi:
    def __init__(self, sandbox: WooCommerceSandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store

    # --- reads -----------------------------------------------------------------------------

    def list_products(self, params: Mapping[str, str], url: str, base_url: str) -> Reply:
        return self._collection(
            self.store.listed(), params, url, lambda p: product_json(self.store, p, base_url)
        )

    def get_product(self, product_id: int, base_url: str) -> Reply:
        product = self.store.products.get(product_id)
        if product is None:
            return Reply(404, wp_error("woocommerce_rest_product_invalid_id", INVALID_ID, 404))
        return Reply(200, product_json(self.store, product, base_url))

    def list_variations(self, parent_id: int, params: Mapping[str, str], url: str, base_url: str) -> Reply:
        # The controller queries posts whose parent is the id: an unknown parent lists nothing.
        parent = self.store.products.get(parent_id)
        children = [self.store.products[c] for c in parent.children] if parent is not None else []
        return self._collection(children, params, url, lambda v: variation_json(v, base_url))

    def _collection(
        self, items: Sequence[Product], params: Mapping[str, str], url: str, render: Any
    ) -> Reply:
        page = _integer(params.get("page", "1"))
        per_page = _integer(params.get("per_page", "10"))
        bad = {}
        if page is None or page < 1:
            bad["page"] = "page must be greater than or equal to 1"
        if per_page is None or not 1 <= per_page <= PER_PAGE_MAX:
            bad["per_page"] = f"per_page must be between 1 (inclusive) and {PER_PAGE_MAX} (inclusive)"
        orderby = params.get("orderby", "date")
        if orderby not in ORDERBY:
            bad["orderby"] = f"orderby is not one of {', '.join(sorted(ORDERBY))}."
        if bad:
            return Reply(
                400,
                wp_error("rest_invalid_param", f"Invalid parameter(s): {', '.join(bad)}", 400, params=bad),
            )
        assert page is not None and per_page is not None
        include = [i for i in (_integer(x) for x in params.get("include", "").split(",") if x) if i]
        selected = [p for p in items if not include or p.id in include]
        if "sku" in params:
            selected = [p for p in selected if p.sku == params["sku"]]
        if orderby == "include" and include:
            selected.sort(key=lambda p: include.index(p.id))
        elif orderby in ("date", "modified"):
            attribute = "date_created" if orderby == "date" else "date_modified"
            selected.sort(key=lambda p: (getattr(p, attribute), p.id))
        elif orderby == "title":
            selected.sort(key=lambda p: (p.name, p.id))
        else:
            selected.sort(key=lambda p: p.id)
        if params.get("order", "desc") == "desc" and orderby != "include":
            selected.reverse()
        total = len(selected)
        pages = math.ceil(total / per_page)
        body = [render(p) for p in selected[(page - 1) * per_page : page * per_page]]
        links = []
        if page > 1:
            links.append(f'<{_with_page(url, min(page - 1, max(pages, 1)))}>; rel="prev"')
        if pages > page:
            links.append(f'<{_with_page(url, page + 1)}>; rel="next"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        return Reply(200, body, headers)

    # --- batch writes ------------------------------------------------------------------------

    def batch(self, parent_id: int | None, payload: Any, base_url: str) -> Reply:
        """`POST /products/batch` (parent_id None) or `POST /products/{parent_id}/variations/batch`."""
        if not isinstance(payload, Mapping):
            return Reply(400, wp_error("rest_invalid_json", "Invalid JSON body passed.", 400))
        sandbox = self.sandbox
        # array_filter() drops empty lists before counting, as batch_items does.
        lists = {
            k: payload[k]
            for k in ("create", "update", "delete")
            if isinstance(payload.get(k), list) and payload[k]
        }
        total = sum(len(v) for v in lists.values())
        if total > sandbox.batch_limit:
            sandbox.stats.batch_too_large += 1
            return Reply(
                413,
                wp_error(
                    "woocommerce_rest_request_entity_too_large",
                    f"Unable to accept more than {sandbox.batch_limit} items for this request.",
                    413,
                ),
            )
        sandbox.stats.batches += 1
        answer: dict[str, list[dict[str, Any]]] = {}
        changed: list[Product] = []
        for _item in lists.get("create", []):
            answer.setdefault("create", []).append(
                {
                    "id": 0,
                    "error": wp_error(
                        "nexus_sandbox_unsupported", "The sandbox does not create products.", 400
                    ),
                }
            )
        for item in lists.get("update", []):
            entry, saved = self._update(parent_id, item, base_url)
            answer.setdefault("update", []).append(entry)
            if saved is not None:
                changed.append(saved)
        for raw_id in lists.get("delete", []):
            deleted = self._delete(parent_id, raw_id, base_url)
            if deleted is not None:
                answer.setdefault("delete", []).append(deleted)
        sandbox.products_saved(changed)
        return Reply(200, answer)

    def _update(
        self, parent_id: int | None, item: Any, base_url: str
    ) -> tuple[dict[str, Any], Product | None]:
        sandbox = self.sandbox
        raw_id = item.get("id") if isinstance(item, Mapping) else None
        product = self._target(parent_id, raw_id)
        if product is None:
            sandbox.stats.item_errors += 1
            code = (
                "woocommerce_rest_product_invalid_id"
                if parent_id is None
                else "woocommerce_rest_product_variation_invalid_id"
            )
            return {"id": raw_id, "error": wp_error(code, INVALID_ID, 400)}, None
        fault = sandbox.item_faults.get(product.id)
        if fault is not None:
            sandbox.stats.item_errors += 1
            return {"id": raw_id, "error": wp_error(*fault)}, None
        assert isinstance(item, Mapping)
        if "manage_stock" in item and item["manage_stock"] is not None:
            product.manage_stock = _truthy(item["manage_stock"])
        if product.manage_stock:
            if item.get("stock_quantity") is not None:
                product.stock_quantity = _stock_amount(item["stock_quantity"])
                if product.sku:
                    counts = sandbox.stats.set_count_by_sku
                    counts[product.sku] = counts.get(product.sku, 0) + 1
        else:
            product.stock_quantity = None
        self.store.touch(product)
        sandbox.stats.items_updated += 1
        render = (
            variation_json(product, base_url)
            if parent_id is not None
            else product_json(self.store, product, base_url)
        )
        return render, product

    def _target(self, parent_id: int | None, raw_id: object) -> Product | None:
        product_id = (
            raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else _integer(str(raw_id))
        )
        product = self.store.products.get(product_id) if product_id else None
        if product is None or parent_id is None:
            return product
        # A variations endpoint only accepts its own parent's variations.
        return product if product.type == VARIATION and product.parent_id == parent_id else None

    def _delete(self, parent_id: int | None, raw_id: object, base_url: str) -> dict[str, Any] | None:
        product_id = _integer(str(raw_id))
        if not product_id:
            return None  # batch_items skips id 0
        product = self._target(parent_id, product_id)
        if product is None:
            return {
                "id": product_id,
                "error": wp_error("woocommerce_rest_product_invalid_id", INVALID_ID, 404),
            }
        render = (
            variation_json(product, base_url)
            if parent_id is not None
            else product_json(self.store, product, base_url)
        )
        self.store.delete(product.id)
        return render


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def _stock_amount(value: object) -> int:
    """wc_stock_amount(): whatever was sent, as a whole number (junk becomes 0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    try:
        return int(float(str(value)))
    except ValueError:
        return 0


def _with_page(url: str, page: int) -> str:
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query) if k not in ("page", "consumer_key", "consumer_secret")
    ]
    query.append(("page", str(page)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
