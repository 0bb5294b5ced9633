"""Logging, configured in one place: `configure_logging(level, log_format, secrets=...)`.

Nexus's own structlog loggers and the standard library's (uvicorn, Alembic, httpx) go through
one handler on stderr, rendered as `console` lines (the default) or one JSON object per line
(`log_format = "json"`). Never a traceback with locals: a frame's locals hold configuration,
tokens and request bodies, so tracebacks are rendered plain (console) or as a dict without
locals (JSON). Values of keys that look secret (`nexus.masking`) are masked in every event, and
the literal secret values handed in `secrets` (the configured credentials) are cut out of every
rendered line, whatever carried them there.

Quiet at info: one line per HTTP request (httpx, uvicorn's access log) and Alembic's internals
are logged from warning up.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Literal, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from nexus.config import ENV_REFERENCE_PREFIX
from nexus.masking import MASK, is_secret_key

if TYPE_CHECKING:
    from nexus.config import NexusSettings

LogFormat = Literal["console", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("console", "json")

# Per-request and migration chatter: shown only from warning up, whatever the level.
QUIET_LOGGERS = ("httpx", "httpcore", "alembic", "uvicorn.access")
SHORTEST_SECRET = 6  # shorter "secrets" would cut ordinary words out of log lines


class _NexusHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler `configure_logging` installs (and replaces on the next call)."""


def mask_secret_keys(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask the value of every event key that looks secret (token=..., authorization=...)."""
    for key in list(event_dict):
        if is_secret_key(key) and key != "event":
            event_dict[key] = MASK
    return event_dict


class _Redactor(logging.Formatter):
    """Wraps the structlog formatter: cuts literal secret values out of each rendered line."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = sorted({s for s in secrets if len(s) >= SHORTEST_SECRET}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record), self.secrets)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def configure_logging(
    level: str = "info",
    log_format: str = "console",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the standard library's logging for a Nexus process (the CLI
    calls it once the configuration is read). Calling it again replaces the previous setup."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}; got {log_format!r}")
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secret_keys,
    ]
    renderer: list[Processor]
    if log_format == "json":
        renderer = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback, sort_keys=False
            )
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = _NexusHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_Redactor(formatter, secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _NexusHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )


def safe_structlog_defaults() -> None:
    """When nothing configured structlog (Nexus embedded in an application that does not use
    it), replace its defaults' rich tracebacks *with locals* by plain ones; keep the rest."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.StackInfoRenderer(),
            structlog.dev.set_exc_info,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            mask_secret_keys,
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
        ]
    )


def secret_values(settings: NexusSettings) -> list[str]:
    """The literal values of every channel's credentials (`env:NAME` ones read from the
    environment), for `configure_logging(secrets=...)`."""
    values: list[str] = []
    for channel in settings.channels.values():
        for value in channel.credentials.values():
            if value.startswith(ENV_REFERENCE_PREFIX):
                value = os.environ.get(value[len(ENV_REFERENCE_PREFIX) :], "")
            if value:
                values.append(value)
    return values


class Once:
    """Say yes to a key once per `seconds` (a warning that must not flood the log), remembering
    at most `size` keys (the oldest are forgotten first)."""

    def __init__(
        self, seconds: float, *, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def first(self, key: Hashable) -> bool:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.seconds:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.size:
            self._last.popitem(last=False)
        return True
