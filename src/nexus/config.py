"""Configuration: `nexus.toml` plus `NEXUS_*` environment variables (environment wins).

Secrets never sit in the file: a credential is written `"env:NAME"` and read from the
environment when the channel is built. Every error names the offending key and the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from nexus.domain.vocabulary import ConflictPolicy
from nexus.errors import ConfigError

DEFAULT_CONFIG_FILE = "nexus.toml"
ENV_REFERENCE_PREFIX = "env:"


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
    headroom: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="share of the channel's burst capacity left unused, for requests still in flight",
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
    concurrency: int = Field(default=1, ge=1, description="push rounds in flight per channel per process")
    throttle_threshold: int = Field(
        default=5, ge=1, description="consecutive 429s from one channel before ChannelThrottled"
    )
    shutdown_grace: float = Field(
        default=30.0, ge=0, description="seconds SIGTERM waits for pushes in flight"
    )
    max_rate_wait: float = Field(
        default=60.0, gt=0, description="a longer wait for a bucket reschedules the listings instead"
    )


class NexusSettings(BaseSettings):
    """Everything a Nexus instance is configured with. Lives on the instance, never in a global."""

    model_config = SettingsConfigDict(env_prefix="NEXUS_", env_nested_delimiter="__", extra="forbid")

    database_url: str = "sqlite+aiosqlite:///nexus.db"
    redis_url: str | None = Field(
        default=None, description="set it to share buckets, wake-ups and events between processes"
    )
    redis_namespace: str = Field(default="nexus", min_length=1, description="prefix of every Redis key")
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    webhook_base_path: str = "/nexus/webhooks"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

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
    elif path is not None:
        raise ConfigError("configuration file not found", source=source)
    else:
        source = "defaults and NEXUS_* environment"
    if overrides:
        data = {**data, **overrides}
    try:
        return NexusSettings(**data), source
    except ValidationError as exc:
        raise config_error_from(exc, source) from None


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
