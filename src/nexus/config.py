"""Configuration: `nexus.toml` plus `NEXUS_*` environment variables (environment wins).

Secrets never sit in the file: a credential is written `"env:NAME"` and read from the
environment when the channel is built. Every error names the offending key and the file.

A channel's own keys (`channels.<name>.settings`, `.credentials`, `.base_url`) are declared by
its driver as one `ChannelSettings` model (`nexus.channels.<driver>.settings`), attached to the
driver factory with `@settings_model(...)`; `Nexus.check_channels()` validates every enabled
channel against it before a process starts, and the driver reads the same model.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from nexus.domain.vocabulary import ConflictPolicy
from nexus.errors import ConfigError

if TYPE_CHECKING:
    from nexus.drivers.contract import ChannelContext

DEFAULT_CONFIG_FILE = "nexus.toml"
ENV_REFERENCE_PREFIX = "env:"
NO_FILE = "defaults and NEXUS_* environment"  # the source `load_settings` names when no file was read


class AllocationRule(BaseModel):
    """How much of the available stock one channel may show. Applied in this order (see
    `nexus.domain.allocation.allocate`): fixed, zero_at (on the available stock), buffer,
    percentage, max; never below 0."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    buffer: int = Field(default=0, ge=0, description="units held back from this channel")
    zero_at: int | None = Field(
        default=None, ge=0, description="show 0 when the quantity is at or below this"
    )
    max: int | None = Field(default=None, ge=0, description="never show more than this")
    percentage: float = Field(default=100.0, gt=0, le=100, description="share of available, rounded down")
    fixed: int | None = Field(default=None, ge=0, description="always show this quantity")


class RateLimitOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity: float | None = Field(default=None, gt=0)
    refill_per_second: float | None = Field(default=None, gt=0)
    account: str | None = Field(
        default=None,
        min_length=1,
        description="channels that share one API key share one bucket: give them the same account",
    )
    headroom_seconds: float = Field(
        default=0.25,
        ge=0,
        description=(
            "seconds of the channel's refill kept unused, for requests in flight; "
            "widened to the slowest recent round trip"
        ),
    )


class ReconcileConfig(BaseModel):
    """How the reconciler reads a channel's listings back (docs/consistency.md, "Reconciliation")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    budget_share: float = Field(
        default=0.05, gt=0, le=1, description="share of the channel's request rate the reads may use"
    )
    period: float = Field(
        default=3600.0, gt=0, description="seconds in which every listing is read once, budget allowing"
    )
    policy: ConflictPolicy = Field(
        default=ConflictPolicy.NEXUS_WINS, description="what a difference the rules cannot explain leads to"
    )
    order_grace: float = Field(
        default=300.0,
        ge=0,
        description="seconds a lower level waits for its order, on channels whose orders book sales",
    )


class ChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: str
    enabled: bool = True
    base_url: str | None = None
    credentials: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    rate_limit: RateLimitOverride = Field(default_factory=RateLimitOverride)
    allocation: AllocationRule = Field(default_factory=AllocationRule)
    batch_size: int | None = Field(default=None, gt=0, description="at most the driver's own maximum")
    webhook_max_bytes: int = Field(default=1_048_576, gt=0)
    echo_wait: float = Field(
        default=10.0,
        ge=0,
        description="seconds a level reported during an absolute push waits for the push's own report",
    )
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)

    @field_validator("base_url")
    @classmethod
    def _url_has_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


class WorkerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval: float = Field(default=1.0, gt=0, description="seconds between claims when idle")
    max_attempts: int = Field(default=8, ge=1, description="retries before a listing is dead-lettered")
    backoff_base: float = Field(
        default=1.0, ge=0, description="first retry delay in seconds; 0 makes retries instant"
    )
    backoff_max: float = Field(default=300.0, ge=0)
    low_stock_threshold: int = Field(default=5, ge=0, description="at or below: immediate push priority")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="push rounds in flight per channel per process; unset: the driver's max_in_flight",
    )
    webhook_concurrency: int = Field(
        default=4,
        ge=1,
        description="webhook batches processed side by side per process on PostgreSQL (SQLite: 1)",
    )
    throttle_threshold: int = Field(
        default=5, ge=1, description="consecutive 429s from one channel before ChannelThrottled"
    )
    probe_interval: float = Field(
        default=30.0, gt=0, description="seconds between probes of a channel whose credentials were refused"
    )
    state_ttl: float = Field(
        default=2.0, ge=0, description="seconds a process trusts its copy of the channels' states"
    )
    shutdown_grace: float = Field(
        default=30.0, ge=0, description="seconds SIGTERM waits for pushes in flight"
    )
    max_rate_wait: float = Field(
        default=60.0, gt=0, description="a longer wait for a bucket reschedules the listings instead"
    )


class RetentionConfig(BaseModel):
    """How long the running service keeps operational history (`nexus.sync.retention`); the
    stock ledger is never pruned. An age of 0 keeps those rows for ever."""

    model_config = ConfigDict(extra="forbid")

    webhook_logs_days: float = Field(default=30.0, ge=0, description="stored webhook deliveries")
    push_audit_days: float = Field(default=30.0, ge=0, description="push audit rows (one per push request)")
    dead_letters_days: float = Field(
        default=30.0, ge=0, description="resolved dead letters (with their history), by resolution time"
    )
    batch_size: int = Field(default=500, ge=1, description="rows deleted per statement")
    interval: float = Field(default=3600.0, gt=0, description="seconds between pruning rounds")


class NexusSettings(BaseSettings):
    """Everything a Nexus instance is configured with. Lives on the instance, never in a global."""

    model_config = SettingsConfigDict(env_prefix="NEXUS_", env_nested_delimiter="__", extra="forbid")

    database_url: str = "sqlite+aiosqlite:///nexus.db"
    database_pool_size: int = Field(
        default=20,
        ge=1,
        description=(
            "PostgreSQL: connections each process keeps open and never exceeds (a transaction "
            "beyond it waits for one); processes x pool size must stay under the server's "
            "max_connections"
        ),
    )
    redis_url: str | None = Field(
        default=None, description="set it to share buckets, wake-ups and events between processes"
    )
    redis_namespace: str = Field(default="nexus", min_length=1, description="prefix of every Redis key")
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    webhook_base_path: str = "/nexus/webhooks"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = Field(
        default="console", description="json: one JSON object per log line, for a log collector"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init arguments; the environment must override them.
        return (env_settings, init_settings)

    @field_validator("channels")
    @classmethod
    def _channel_names_are_slugs(cls, value: dict[str, ChannelConfig]) -> dict[str, ChannelConfig]:
        for name in value:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"channel name {name!r} may only hold letters, digits, '-' and '_'")
        return value

    def to_toml(self) -> str:
        """These settings as a `nexus.toml` that `load_settings` reads back unchanged (what a
        process starting other processes, `nexus worker`s say, hands them)."""
        return _toml(self.model_dump(mode="json", exclude_none=True))

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _database_url_is_async(self) -> NexusSettings:
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "database_url must use an async driver: sqlite+aiosqlite:///path.db or postgresql+asyncpg://..."
            )
        return self


def load_settings(
    path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None
) -> tuple[NexusSettings, str]:
    """Read the file (default `nexus.toml` if it exists), apply the environment, validate.

    Returns the settings and a description of where they came from, for error messages.
    """
    source = str(path) if path is not None else os.environ.get("NEXUS_CONFIG", DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    file_path = Path(source)
    if file_path.exists():
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", source=source) from exc
        # A `[nexus]` table is accepted for those who share the file with other tools: the other
        # top-level tables are theirs, not unknown Nexus keys.
        if "nexus" in data and isinstance(data["nexus"], dict):
            data = data["nexus"]
        if isinstance(data.get("database_url"), str):
            data = {**data, "database_url": anchor_sqlite_path(data["database_url"], file_path.parent)}
    elif path is not None:
        raise ConfigError("configuration file not found", source=source)
    else:
        source = NO_FILE
    if overrides:
        data = {**data, **overrides}
    try:
        return NexusSettings(**data), source
    except ValidationError as exc:
        raise config_error_from(exc, source) from None


def anchor_sqlite_path(url: str, folder: Path) -> str:
    """A SQLite URL with a relative file path, made absolute against `folder` (the configuration
    file's): `nexus.toml` means the same database from any working directory. Other URLs,
    absolute paths, in-memory databases and `file:` URIs are returned unchanged."""
    prefix = next((p for p in ("sqlite+aiosqlite:///", "sqlite:///") if url.startswith(p)), None)
    if prefix is None:
        return url
    rest = url[len(prefix) :]
    path, query = rest.split("?", 1) if "?" in rest else (rest, None)
    if not path or path == ":memory:" or path.startswith(("/", "file:")) or Path(path).is_absolute():
        return url
    anchored = (folder / path).absolute().as_posix()
    return f"{prefix}{anchored}" + (f"?{query}" if query is not None else "")


# -- a channel's own keys -----------------------------------------------------------------------

_SECTION = "nexus_section"
F = TypeVar("F")


def credential(default: Any = PydanticUndefined, **kwargs: Any) -> Any:
    """A `ChannelSettings` field read from the channel's `credentials` (a secret), not `settings`."""
    return Field(default, json_schema_extra={_SECTION: "credentials"}, repr=False, **kwargs)


def _empty_is_none(value: object) -> object:
    return value if value not in ("", None) else None


OptionalSecret = Annotated[str | None, BeforeValidator(_empty_is_none)]
"""An optional credential: absent and empty both mean None."""


def _not_a_flag(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("must be a list of strings (or one comma-separated string)")
    return tuple(v.strip() for v in value)


def _http_url(value: object) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return str(value)


Whole = Annotated[int, BeforeValidator(_not_a_flag)]
"""A whole number (`"5"` and `5.0` too), never true/false."""
Number = Annotated[float, BeforeValidator(_not_a_flag)]
"""A number (`"2.5"` too), never true/false."""
Text = Annotated[str, BeforeValidator(_text)]
"""A non-empty string, stripped."""
Strings = Annotated[tuple[str, ...], BeforeValidator(_strings)]
"""A list of non-empty strings, or one comma-separated string."""
HttpUrl = Annotated[str, BeforeValidator(_http_url)]
"""An http:// or https:// URL with a host."""


class ChannelSettings(BaseModel):
    """Base of the model a channel declares for its keys. A field named `base_url` is the
    channel's `base_url`; fields made with `credential()` come from `credentials`; every other
    field from `settings`. Unknown settings are ignored unless a model says `extra="forbid"`;
    credentials the model does not name are left to the driver (templates may use them)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def sections(cls) -> dict[str, str]:
        """The input key of every field (its alias, if it has one) -> the table it is read from."""
        found: dict[str, str] = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            section = "base_url" if name == "base_url" else str(extra.get(_SECTION, "settings"))
            found[info.alias or name] = section
        return found

    @classmethod
    def load(
        cls,
        channel: str,
        *,
        base_url: str | None,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        source: str,
    ) -> Self:
        """Validate one channel's keys; a ConfigError names the first bad one by its full path
        (`channels.<channel>.settings.<key>`, `.credentials.<key>`, `.base_url`) and `source`.
        Messages never hold a credential's value."""
        sections = cls.sections()
        data = {key: value for key, value in settings.items() if sections.get(key, "settings") == "settings"}
        if cls.model_config.get("extra") == "forbid":
            for key in settings.keys() - data.keys():
                raise ConfigError("unknown key", key=f"channels.{channel}.settings.{key}", source=source)
        data.update(
            {
                key: credentials[key]
                for key, where in sections.items()
                if where == "credentials" and key in credentials
            }
        )
        if base_url is not None and "base_url" in sections:
            data["base_url"] = base_url
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = [str(part) for part in first["loc"]]
            section = sections.get(loc[0], "settings") if loc else "settings"
            prefix = ["channels", channel] if section == "base_url" else ["channels", channel, section]
            raise ConfigError(_message(first), key=".".join([*prefix, *loc]), source=source) from None

    @classmethod
    def from_context(cls, ctx: ChannelContext) -> Self:
        """The model for a driver being built (errors name the channel, not the file; the engine
        validated against the file before building)."""
        return cls.load(
            ctx.name,
            base_url=ctx.base_url,
            credentials=ctx.credentials,
            settings=ctx.settings,
            source=f"channel {ctx.name}",
        )


def settings_model(model: type[ChannelSettings]) -> Callable[[F], F]:
    """Attach `model` to a driver factory, as `factory.settings_model`: how the engine finds the
    keys a driver needs without the driver contract knowing any channel."""

    def attach(factory: F) -> F:
        setattr(factory, "settings_model", model)  # noqa: B010 - a function attribute mypy cannot see
        return factory

    return attach


def validate_channel(name: str, config: ChannelConfig, factory: object, source: str) -> dict[str, str]:
    """Resolve a channel's credentials and, when its driver factory declares a `settings_model`,
    validate its keys against it; the resolved credentials. ConfigError names the key and file."""
    credentials = resolve_credentials(name, config, source)
    model = getattr(factory, "settings_model", None)
    if isinstance(model, type) and issubclass(model, ChannelSettings):
        model.load(
            name, base_url=config.base_url, credentials=credentials, settings=config.settings, source=source
        )
    return credentials


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required, but not set"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def config_error_from(exc: ValidationError, source: str) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    return ConfigError(f"{message}{more}", key=key or None, source=source)


def resolve_credentials(channel: str, config: ChannelConfig, source: str) -> dict[str, str]:
    """Replace every `env:NAME` credential by the variable's value; a missing variable is an error."""
    resolved: dict[str, str] = {}
    for name, value in config.credentials.items():
        if value.startswith(ENV_REFERENCE_PREFIX):
            variable = value[len(ENV_REFERENCE_PREFIX) :]
            if variable not in os.environ:
                raise ConfigError(
                    f"environment variable {variable} is not set",
                    key=f"channels.{channel}.credentials.{name}",
                    source=source,
                )
            resolved[name] = os.environ[variable]
        else:
            resolved[name] = value
    return resolved


def _toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """Enough TOML for a settings dump: a table's scalars first, then its nested tables."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((f"{prefix}{_toml_key(key)}", value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    out = f"[{prefix.rstrip('.')}]\n" if prefix and lines else ""
    out += "".join(f"{line}\n" for line in lines)
    for name, table in tables:
        out += "\n" + _toml(table, f"{name}.")
    return out


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
