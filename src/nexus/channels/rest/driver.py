"""A driver for in-house systems and point-of-sale back offices, configured instead of coded.

No compare-and-set (a generic API has none), so pushes are absolute quantities; per-item results
are read from the answer when `results_path` says where they are. Levels are read back (by the
reconciler, and after a worker died mid-push) through `read_url`: one GET per listing
(`{id}`/`{sku}`), one per `read_batch_size` listings (`{ids}`/`{skus}`), or, unset, by paging
through `list_url`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nexus.channels.rest import paths, webhooks
from nexus.channels.rest.client import RestClient, auth_headers
from nexus.channels.rest.normalize import product_from_item, text
from nexus.channels.rest.settings import RestSettings, WebhookSettings
from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, Page, PushResult
from nexus.drivers.pagination import iterate_products
from nexus.errors import ChannelError, ConfigError, TerminalChannelError, WebhookSignatureError
from nexus.ratelimit.config import RateLimitConfig


class RestDriver(InventoryDriver):
    name = "rest"

    def __init__(self, ctx: ChannelContext) -> None:
        self._ctx = ctx
        self.settings = RestSettings.from_context(ctx)
        webhook = self.settings.webhook
        read_batch_size = {
            "item": 1,
            "batch": self.settings.read_batch_size,
            # Pages until every listing asked for is found: a step as large as a push batch.
            "list": self.settings.batch_size,
        }[self.settings.read_mode]
        self.capabilities = DriverCapabilities(
            max_batch_size=self.settings.batch_size,
            compare_and_set=False,
            reads_levels=True,
            read_batch_size=read_batch_size,
            max_in_flight=self.settings.max_in_flight,
        )
        if webhook is not None and webhook.secret not in ctx.credentials:
            raise ConfigError(
                "the webhook secret is not among the credentials",
                key=f"channels.{ctx.name}.credentials.{webhook.secret}",
            )
        self.client = RestClient(
            http=ctx.http,
            rate=ctx.rate,
            base_url=self.settings.base_url,
            headers=auth_headers(ctx.name, self.settings, ctx.credentials),
            timeout=self.settings.timeout_seconds,
        )

    def rate_limit_config(self) -> RateLimitConfig:
        return RateLimitConfig(self.settings.rate_capacity, self.settings.rate_per_second)

    # -- reading ------------------------------------------------------------------------------

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        settings = self.settings
        page = int(cursor) if settings.pagination == "page" and cursor else settings.first_page
        url = settings.list_url.format(
            page=page, cursor=urllib.parse.quote(cursor or "", safe=""), per_page=per_page
        )
        document = await self.client.request("GET", url)
        items = paths.get(document, settings.items_path)
        if not isinstance(items, list):
            raise TerminalChannelError(
                f"no list at items_path {settings.items_path!r} in the answer of {url}"
            )
        products = [product_from_item(item, settings) for item in items if isinstance(item, Mapping)]
        next_cursor: str | None = None
        if settings.pagination == "page" and items:
            next_cursor = str(page + 1)
        elif settings.pagination == "cursor":
            found = paths.get(document, settings.next_cursor_path)
            next_cursor = str(found) if found not in (paths.MISSING, None, "") else None
        return Page(items=products, next_cursor=next_cursor)

    async def fetch_product(self, remote_id: str) -> NexusProduct:
        async for page in iterate_products(self):
            for product in page:
                if product.remote_id == remote_id:
                    return product
        raise TerminalChannelError(f"no item {remote_id} in the list", status=404)

    async def read_levels(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        """The channel's level per listing id; a listing it does not have (absent from the answer,
        or a 404 for its own GET) or whose quantity is not an integer is left out."""
        mode = self.settings.read_mode
        if mode == "item":
            levels: dict[int, int] = {}
            for update in updates:
                level = await self._read_one(update)
                if level is not None:
                    levels[update.listing_id] = level
            return levels
        if mode == "batch":
            levels = {}
            size = self.settings.read_batch_size
            for start in range(0, len(updates), size):
                levels.update(await self._read_batch(updates[start : start + size]))
            return levels
        return await self._read_through_list(updates)

    async def _read_one(self, update: NexusInventoryUpdate) -> int | None:
        settings = self.settings
        assert settings.read_url is not None
        path = settings.read_url.format(id=_quote(update.remote_id), sku=_quote(update.sku), ids="", skus="")
        try:
            document = await self.client.request("GET", path)
        except TerminalChannelError as exc:
            if exc.status == 404:  # not on the channel: left out, not a failed read
                return None
            raise
        item = paths.get(document, settings.read_items_path or "")
        if not isinstance(item, Mapping) or _names_another(item, update, settings):
            return None
        return _level(item, settings)

    async def _read_batch(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        settings = self.settings
        assert settings.read_url is not None
        path = settings.read_url.format(
            ids=",".join(_quote(u.remote_id) for u in updates),
            skus=",".join(_quote(u.sku) for u in updates),
            id="",
            sku="",
        )
        document = await self.client.request("GET", path)
        items_path = settings.read_items_path if settings.read_items_path is not None else settings.items_path
        items = paths.get(document, items_path)
        if not isinstance(items, list):
            raise TerminalChannelError(f"no list at read_items_path {items_path!r} in the answer of {path}")
        return _match(updates, (item for item in items if isinstance(item, Mapping)), settings)

    async def _read_through_list(self, updates: Sequence[NexusInventoryUpdate]) -> dict[int, int]:
        by_id = {u.remote_id: u.listing_id for u in updates}
        by_sku = {u.sku: u.listing_id for u in updates if u.sku}
        levels: dict[int, int] = {}
        async for page in iterate_products(self):
            for product in page:
                for variant in product.variants:
                    listing = by_id.get(variant.remote_id)
                    if listing is None and variant.sku:
                        listing = by_sku.get(variant.sku)
                    if listing is not None and variant.quantity is not None:
                        levels[listing] = variant.quantity
            if len(levels) == len(updates):
                break  # the rest of the catalog holds nothing asked for
        return levels

    # -- pushing ------------------------------------------------------------------------------

    async def push_inventory(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        results: list[PushResult] = []
        if self.settings.push_mode == "item":
            for update in updates:
                results.append(await self._push_one(update))
            return results
        size = self.settings.batch_size
        for start in range(0, len(updates), size):
            results.extend(await self._push_batch(updates[start : start + size]))
        return results

    async def _push_one(self, update: NexusInventoryUpdate) -> PushResult:
        path = self.settings.push_url.format(
            id=urllib.parse.quote(update.remote_id, safe=""), sku=urllib.parse.quote(update.sku, safe="")
        )
        try:
            await self.client.request(self.settings.push_method, path, self._item(update))
        except ChannelError as exc:
            return PushResult.from_error(update.listing_id, exc)
        return PushResult.ok(update.listing_id, update.quantity)

    async def _push_batch(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        settings = self.settings
        items = [self._item(update) for update in updates]
        body: Any = {settings.batch_key: items} if settings.batch_key else items
        try:
            answer = await self.client.request(settings.push_method, settings.push_url, body)
        except ChannelError as exc:
            return [PushResult.from_error(update.listing_id, exc) for update in updates]
        if settings.results_path is None:
            return [PushResult.ok(update.listing_id, update.quantity) for update in updates]
        reported = paths.get(answer, settings.results_path)
        errors: dict[str, str | None] = {}
        for entry in reported if isinstance(reported, list) else []:
            sku = text(paths.get(entry, settings.result_sku_path))
            if sku is not None:
                error = paths.get(entry, settings.result_error_path)
                errors[sku] = None if error in (paths.MISSING, None, "", False) else str(error)
        results = []
        for update in updates:
            if update.sku not in errors:
                results.append(PushResult.retry(update.listing_id, "the answer holds no result for this SKU"))
            elif errors[update.sku] is not None:
                results.append(PushResult.terminal(update.listing_id, str(errors[update.sku])))
            else:
                results.append(PushResult.ok(update.listing_id, update.quantity))
        return results

    def _item(self, update: NexusInventoryUpdate) -> dict[str, Any]:
        settings = self.settings
        item: dict[str, Any] = {}
        if settings.item_id_field:
            paths.put(item, settings.item_id_field, update.remote_id)
        if settings.item_sku_field:
            paths.put(item, settings.item_sku_field, update.sku)
        paths.put(item, settings.item_quantity_field, update.quantity)
        return item

    # -- webhooks -----------------------------------------------------------------------------

    def _webhook(self) -> WebhookSettings:
        if self.settings.webhook is None:
            raise WebhookSignatureError("this channel has no webhook configured")
        return self.settings.webhook

    async def verify_webhook(self, request: WebhookRequest) -> None:
        webhook = self._webhook()
        webhooks.verify(request, webhook, self._ctx.credentials[webhook.secret])

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        return webhooks.describe(request, self._webhook())

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        return webhooks.parse(request, self._webhook())


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _level(item: Mapping[str, Any], settings: RestSettings) -> int | None:
    quantity = paths.get(item, settings.quantity_path)
    return quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None


def _names_another(item: Mapping[str, Any], update: NexusInventoryUpdate, settings: RestSettings) -> bool:
    """The answer names an item other than the listing asked for (never read its level)."""
    remote_id = text(paths.get(item, settings.id_path))
    sku = text(paths.get(item, settings.sku_path))
    other_id = remote_id is not None and remote_id != update.remote_id
    return other_id or (sku is not None and sku != update.sku)


def _match(
    updates: Sequence[NexusInventoryUpdate], items: Iterable[Mapping[str, Any]], settings: RestSettings
) -> dict[int, int]:
    """Levels of the listings asked for, matched by id (by SKU where the item carries no id)."""
    by_id = {u.remote_id: u.listing_id for u in updates}
    by_sku = {u.sku: u.listing_id for u in updates if u.sku}
    levels: dict[int, int] = {}
    for item in items:
        remote_id = text(paths.get(item, settings.id_path))
        if remote_id is not None:
            listing = by_id.get(remote_id)
        else:
            listing = by_sku.get(text(paths.get(item, settings.sku_path)) or "")
        level = _level(item, settings)
        if listing is not None and level is not None:
            levels[listing] = level
    return levels
