"""A driver for in-house systems and point-of-sale back offices, configured instead of coded.

No compare-and-set (a generic API has none), so pushes are absolute quantities; per-item results
are read from the answer when `results_path` says where they are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from nexus.channels.rest import paths
from nexus.channels.rest.settings import RestSettings, WebhookSettings, load_settings
from nexus.drivers.contract import (
    ChannelContext,
    DriverCapabilities,
    InboundEvent,
    InventoryDriver,
    ListingRef,
    ObservedLevel,
    SaleEvent,
    WebhookMeta,
    WebhookRequest,
)
from nexus.drivers.dto import NexusInventoryUpdate, NexusProduct, NexusVariant, Page, PushResult
from nexus.drivers.pagination import iterate_products
from nexus.errors import (
    ChannelError,
    ConfigError,
    TerminalChannelError,
    TransientChannelError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from nexus.ratelimit.config import RateLimitConfig
from nexus.ratelimit.headers import retry_after_seconds

DEFAULT_RETRY_AFTER = 1.0


class RestDriver(InventoryDriver):
    name = "rest"

    def __init__(self, ctx: ChannelContext) -> None:
        self._ctx = ctx
        self.settings: RestSettings = load_settings(ctx.name, ctx.settings)
        if not ctx.base_url:
            raise ConfigError("the rest driver needs base_url", key=f"channels.{ctx.name}.base_url")
        self._base_url = ctx.base_url.rstrip("/")
        self._headers = self._auth_headers(ctx)
        webhook = self.settings.webhook
        self.capabilities = DriverCapabilities(
            max_batch_size=self.settings.batch_size,
            compare_and_set=False,
        )
        if webhook is not None and webhook.secret not in ctx.credentials:
            raise ConfigError(
                "the webhook secret is not among the credentials",
                key=f"channels.{ctx.name}.credentials.{webhook.secret}",
            )

    def _auth_headers(self, ctx: ChannelContext) -> dict[str, str]:
        header, template = self.settings.auth_header, self.settings.auth_template
        if not header or not template:
            return {}
        try:
            return {header: template.format(**ctx.credentials)}
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"auth_template names a credential that is not configured: {exc}",
                key=f"channels.{ctx.name}.settings.auth_template",
            ) from None

    def rate_limit_config(self) -> RateLimitConfig:
        return RateLimitConfig(self.settings.rate_capacity, self.settings.rate_per_second)

    # -- HTTP ---------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        await self._ctx.rate.acquire(1)
        try:
            response = await self._ctx.http.request(
                method,
                f"{self._base_url}{path}",
                json=body,
                headers={**self._headers, "Accept": "application/json"},
                timeout=self.settings.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            raise TransientChannelError(f"{method} {path} timed out") from exc
        except httpx.TransportError as exc:
            raise TransientChannelError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 429:
            wait = retry_after_seconds(response.headers) or DEFAULT_RETRY_AFTER
            await self._ctx.rate.penalize(wait)
            raise TransientChannelError(f"{method} {path}: 429", status=429, retry_after=wait)
        if response.status_code >= 500:
            raise TransientChannelError(
                f"{method} {path}: HTTP {response.status_code}", status=response.status_code
            )
        if response.status_code >= 400:
            raise TerminalChannelError(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}",
                status=response.status_code,
                payload=body,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise TransientChannelError(f"{method} {path}: the answer is not JSON") from exc

    # -- reading ------------------------------------------------------------------------------

    async def list_products(self, cursor: str | None = None, per_page: int = 250) -> Page[NexusProduct]:
        settings = self.settings
        page = int(cursor) if settings.pagination == "page" and cursor else settings.first_page
        url = settings.list_url.format(
            page=page, cursor=urllib.parse.quote(cursor or "", safe=""), per_page=per_page
        )
        document = await self._request("GET", url)
        items = paths.get(document, settings.items_path)
        if not isinstance(items, list):
            raise TerminalChannelError(
                f"no list at items_path {settings.items_path!r} in the answer of {url}"
            )
        products = [self._product(item) for item in items if isinstance(item, Mapping)]
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

    def _product(self, item: Mapping[str, Any]) -> NexusProduct:
        settings = self.settings
        remote_id = _text(paths.get(item, settings.id_path))
        if remote_id is None:
            raise TerminalChannelError(f"an item has nothing at id_path {settings.id_path!r}", payload=item)
        title = _text(paths.get(item, settings.title_path)) or remote_id
        quantity = paths.get(item, settings.quantity_path)
        variant = NexusVariant(
            remote_id=remote_id,
            sku=_text(paths.get(item, settings.sku_path)),
            title=title,
            quantity=quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None,
            barcode=_text(paths.get(item, settings.barcode_path)) if settings.barcode_path else None,
        )
        return NexusProduct(remote_id=remote_id, title=title, variants=(variant,))

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
            await self._request(self.settings.push_method, path, self._item(update))
        except ChannelError as exc:
            return PushResult.from_error(update.listing_id, exc)
        return PushResult.ok(update.listing_id, update.quantity)

    async def _push_batch(self, updates: Sequence[NexusInventoryUpdate]) -> list[PushResult]:
        settings = self.settings
        items = [self._item(update) for update in updates]
        body: Any = {settings.batch_key: items} if settings.batch_key else items
        try:
            answer = await self._request(settings.push_method, settings.push_url, body)
        except ChannelError as exc:
            return [PushResult.from_error(update.listing_id, exc) for update in updates]
        if settings.results_path is None:
            return [PushResult.ok(update.listing_id, update.quantity) for update in updates]
        reported = paths.get(answer, settings.results_path)
        errors: dict[str, str | None] = {}
        for entry in reported if isinstance(reported, list) else []:
            sku = _text(paths.get(entry, settings.result_sku_path))
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
        given = request.header(webhook.signature_header)
        if not given:
            raise WebhookSignatureError(f"missing {webhook.signature_header}")
        key = self._ctx.credentials[webhook.secret].encode()
        digest = hmac.new(key, request.body, getattr(hashlib, webhook.algorithm)).digest()
        encoded = digest.hex() if webhook.encoding == "hex" else _b64(digest)
        if not hmac.compare_digest(given.strip().encode(), f"{webhook.signature_prefix}{encoded}".encode()):
            raise WebhookSignatureError("signature does not match")

    def describe_webhook(self, request: WebhookRequest) -> WebhookMeta:
        webhook = self._webhook()
        topic: object = request.header(webhook.topic_header) if webhook.topic_header else None
        if topic is None and webhook.topic_path is not None:
            topic = paths.get(_json(request.body), webhook.topic_path)
        if not isinstance(topic, str) or not topic:
            raise WebhookPayloadError("the delivery does not say what happened (no topic)")
        delivery = request.header(webhook.delivery_id_header) if webhook.delivery_id_header else None
        return WebhookMeta(topic=topic, delivery_id=delivery)

    def parse_webhook(self, request: WebhookRequest) -> list[InboundEvent]:
        webhook = self._webhook()
        topic = self.describe_webhook(request).topic
        if topic not in webhook.sale_topics and topic not in webhook.level_topics:
            return []
        document = _json(request.body)
        found = paths.get(document, webhook.events_path)
        entries = found if webhook.events_path else [found]
        if not isinstance(entries, list):
            raise WebhookPayloadError(f"no list at events_path {webhook.events_path!r}")
        events: list[InboundEvent] = []
        for position, entry in enumerate(entries):
            sku = _text(paths.get(entry, webhook.sku_path))
            quantity = paths.get(entry, webhook.quantity_path)
            if sku is None or not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                raise WebhookPayloadError(f"event {position} has no SKU or no whole quantity >= 0")
            listing = ListingRef(remote_sku=sku)
            if topic in webhook.sale_topics:
                event_id = _text(paths.get(entry, webhook.event_id_path)) or _text(
                    paths.get(document, webhook.event_id_path)
                )
                if event_id is None:
                    raise WebhookPayloadError(f"sale {position} has no id at {webhook.event_id_path!r}")
                events.append(SaleEvent(listing, quantity, order_id=event_id, line_id=f"{position}:{sku}"))
            else:
                events.append(ObservedLevel(listing, quantity))
        return events


def _text(value: object) -> str | None:
    if value is paths.MISSING or value is None or isinstance(value, bool):
        return None
    if isinstance(value, str | int):
        text = str(value).strip()
        return text or None
    return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError(f"body is not JSON: {exc}") from exc


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()
