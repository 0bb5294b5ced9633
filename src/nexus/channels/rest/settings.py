"""The generic REST channel, described entirely in configuration.

Every key lives under `channels.<name>.settings` (unknown keys are refused); secrets under
`credentials`, any names, referenced from templates as `{credential_name}`. Paths into JSON are
dotted (`data.items`, `stock.available`, `lines.0.sku`); an empty path is the document itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nexus.config import ChannelSettings, HttpUrl

READ_PLACEHOLDERS = ("id", "sku", "ids", "skus")


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signature_header: str = Field(description="header carrying the HMAC of the raw body")
    secret: str = Field(default="webhook_secret", description="credential holding the HMAC key")
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    signature_prefix: str = Field(default="", description='e.g. "sha256=" (GitHub style)')
    topic_header: str | None = Field(default=None, description="header naming the event type")
    topic_path: str | None = Field(default=None, description="or: path in the body naming it")
    delivery_id_header: str | None = None
    sale_topics: tuple[str, ...] = ("sale",)
    level_topics: tuple[str, ...] = ("stock",)
    events_path: str = Field(default="", description="path to a list of events; empty: the body is one")
    sku_path: str = "sku"
    quantity_path: str = "quantity"
    event_id_path: str = Field(default="id", description="unique per event; keys sales idempotently")


class RestSettings(ChannelSettings):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: HttpUrl = Field(description="the channel's base_url: every path is relative to it")

    auth_header: str | None = "Authorization"
    auth_template: str | None = Field(default="Bearer {token}", description="formatted with the credentials")

    list_url: str = Field(description="GET, relative to base_url; may hold {page} or {cursor}")
    pagination: Literal["page", "cursor", "none"] = "page"
    first_page: int = 1
    next_cursor_path: str | None = Field(default=None, description="cursor pagination: where the next is")
    items_path: str = Field(default="", description="path to the list of items in a list response")
    id_path: str = "id"
    sku_path: str = "sku"
    quantity_path: str = "quantity"
    title_path: str | None = "name"
    barcode_path: str | None = None

    push_url: str = Field(description="relative to base_url; per-item mode may use {id} and {sku}")
    push_method: Literal["POST", "PUT", "PATCH"] = "POST"
    push_mode: Literal["batch", "item"] = "batch"
    batch_key: str = Field(default="items", description="batch body: {batch_key: [...]}; empty: a list")
    item_id_field: str | None = "id"
    item_sku_field: str | None = "sku"
    item_quantity_field: str = "quantity"
    batch_size: int = Field(default=100, ge=1)
    results_path: str | None = Field(default=None, description="per-item results in a batch answer")
    result_sku_path: str = "sku"
    result_error_path: str = "error"

    read_url: str | None = Field(
        default=None,
        description="GET, relative to base_url, reading levels back: {id} or {sku} reads one listing, "
        "{ids} or {skus} read_batch_size listings (comma-separated); unset: pages through list_url",
    )
    read_items_path: str | None = Field(
        default=None,
        description="where the read answer holds the item ({id}/{sku}) or the list of items "
        "({ids}/{skus}); unset: the document itself, or items_path for a list",
    )
    read_batch_size: int = Field(default=50, ge=1, description="listings per {ids}/{skus} read")

    rate_capacity: float = Field(default=20, gt=0)
    rate_per_second: float = Field(default=10, gt=0)
    max_in_flight: int = Field(
        default=1, ge=1, description="push rounds in flight at once (what the API allows side by side)"
    )
    timeout_seconds: float = Field(default=30, gt=0)

    webhook: WebhookSettings | None = None

    @field_validator("list_url", "push_url", "read_url")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" in value:
            raise ValueError("give a path relative to base_url, so requests cannot go to another host")
        return value if value.startswith("/") else f"/{value}"

    @field_validator("read_url")
    @classmethod
    def _one_read_placeholder(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = [name for name in READ_PLACEHOLDERS if "{" + name + "}" in value]
        if len(found) != 1:
            raise ValueError(
                "hold exactly one of {id}, {sku} (one listing a request) or {ids}, {skus} (a batch)"
            )
        return value

    @property
    def read_mode(self) -> Literal["list", "item", "batch"]:
        """How `read_levels` reads: through list_url pages, one GET per listing, or batches."""
        if self.read_url is None:
            return "list"
        return "batch" if "{ids}" in self.read_url or "{skus}" in self.read_url else "item"
