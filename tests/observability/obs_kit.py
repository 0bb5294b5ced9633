"""A Shopify sandbox store linked to a Nexus instance whose credentials are literal secrets, and
the capture of everything a test's process logs."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from nexus.domain.catalog import ItemSpec
from nexus.engine import Nexus
from nexus.observability.logs import QUIET_LOGGERS, configure_logging, secret_values
from nexus.sandbox.shopify import ShopifySandbox
from nexus.web.server import serve_app

CHANNEL = "shop"
ACCESS_TOKEN = "shpat_LITERAL_SECRET_123"
WEBHOOK_SECRET = "whsec_LITERAL_SECRET_456"
SECRETS = (ACCESS_TOKEN, WEBHOOK_SECRET)
SKUS = ["SKU-000001", "SKU-000002", "SKU-000003"]


@dataclass
class Store:
    nexus: Nexus
    sandbox: ShopifySandbox
    base_url: str


@contextlib.asynccontextmanager
async def linked_store(make_nexus: Callable[..., Any], **worker: Any) -> AsyncIterator[Store]:
    """The store on loopback, its catalog imported and pushed once."""
    sandbox = ShopifySandbox(access_token=ACCESS_TOKEN, webhook_secret=WEBHOOK_SECRET)
    sandbox.seed_catalog(len(SKUS), quantity=10)
    async with serve_app(sandbox.app) as served:
        nexus: Nexus = await make_nexus(
            channels={
                CHANNEL: {
                    "driver": "shopify",
                    "base_url": served.base_url,
                    "credentials": {"access_token": ACCESS_TOKEN, "webhook_secret": WEBHOOK_SECRET},
                    "settings": {"location_id": str(sandbox.location_id)},
                }
            },
            worker={"backoff_base": 0.0, "poll_interval": 0.05, **worker},
        )
        await nexus.add_items(ItemSpec(sku=sku, title=sku, on_hand=10) for sku in SKUS)
        await nexus.import_channel(CHANNEL)
        await push_all(nexus)
        try:
            yield Store(nexus, sandbox, served.base_url)
        finally:
            await sandbox.aclose()


async def push_all(nexus: Nexus) -> None:
    worker = nexus.push_worker(CHANNEL)
    while await worker.run_once() is not None:
        pass


@contextlib.contextmanager
def logging_as_the_cli(nexus_settings: Any, log_format: str) -> Iterator[io.StringIO]:
    """Configure logging as `nexus serve` does (level info, the secrets to redact), into a
    buffer; restore the test process's logging afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    stream = io.StringIO()
    configure_logging("info", log_format, secrets=secret_values(nexus_settings), stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, value in quiet.items():
            logging.getLogger(name).setLevel(value)


def records_text(records: list[logging.LogRecord]) -> str:
    """Every log record as raw as it was emitted: the message and every attribute's repr."""
    return "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in records)


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]
