"""The sections of ``Settings``: one frozen model per ``config.yaml`` section.

Every section forbids unknown keys and accepts the seeds' camelCase spellings beside snake_case.
Provider entries are the one exception to ``extra="forbid"``: their type-specific keys are validated
later by the provider's own ``Options`` model, so here they are gathered into ``settings``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from podium._settings_schema import REDACT, Dsn, masked_repr_args, redact_provider_settings
from podium.costs.budgets import Budget
from podium.limits.config import RateLimitConfig
from podium.routing.retry import RetryPolicy

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DEFAULT_DATA_DIR = Path(".podium")


def sqlite_url(data_dir: Path) -> str:
    """The default database: an SQLite file inside the data directory (async driver)."""
    return f"sqlite+aiosqlite:///{(data_dir / 'podium.db').as_posix()}"


def _podium_version() -> str:
    try:
        return importlib.metadata.version("podium")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


class Section(BaseModel):
    """Base of every section: strict keys, camelCase accepted, immutable, URL credentials masked."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,
    )

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return masked_repr_args(self, super().__repr_args__())


class FrameworkSettings(Section):
    """``framework``: identity, switches, where podium keeps its files, and logging."""

    name: str = "podium"
    version: str = Field(default_factory=_podium_version)
    enable_metrics: bool = True
    enable_caching: bool = False
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR, description="Relative paths are relative to the current directory."
    )
    log_level: LogLevel = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            return "WARNING" if value == "WARN" else value
        return value


class ProviderEntry(BaseModel):
    """One entry of ``providers``: who it is, plus everything else as the provider's own settings.

    Keys other than ``type``, ``name`` and ``tenant`` go into ``settings`` with snake_case names
    (``apiKey`` -> ``api_key``); the Orchestrator validates them against the provider type when it
    creates the provider, so a typo there fails at start-up with the provider's valid keys. An
    ``api_key`` is held as ``SecretStr``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: str = Field(min_length=1)
    name: str = Field(min_length=1)
    tenant: str = Field(default="default", min_length=1)
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        own = {k: v for k, v in data.items() if k in ("type", "name", "tenant")}
        nested = data.get("settings", {})
        if not isinstance(nested, Mapping):
            return {**own, "settings": nested}  # let field validation report the wrong type
        gathered: dict[str, Any] = {}
        spelled: dict[str, str] = {}
        given = [*nested.items(), *((k, v) for k, v in data.items() if k not in (*own, "settings"))]
        for key, value in given:
            snake = to_snake(str(key))
            if snake in gathered:
                raise ValueError(
                    f"provider setting {snake!r} is given twice: as {spelled[snake]!r} and {key!r}"
                )
            gathered[snake] = value
            spelled[snake] = str(key)
        if "api_key" in gathered:
            gathered["api_key"] = _as_secret(gathered["api_key"])
        return {**own, "settings": gathered}

    @field_serializer("settings")
    def _serialize_settings(self, settings: dict[str, Any], info: SerializationInfo) -> dict[str, Any]:
        context = info.context
        if isinstance(context, Mapping) and context.get(REDACT):
            return redact_provider_settings(settings)
        return settings

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (redact_provider_settings(value) if name == "settings" else value)


def _as_secret(value: Any) -> SecretStr | None:
    if value is None or isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise ValueError(f"provider setting 'api_key' must be a string, not {type(value).__name__}")
    return SecretStr(value)


class ModelDefaults(Section):
    """``models.<provider type>``: defaults for requests to that provider type."""

    default_model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)


class RoutingRule(Section):
    """One ``routing.rules`` entry: which providers serve a task type at a complexity."""

    task_type: str = Field(min_length=1)
    complexity: Literal["simple", "medium", "complex", "any"] = "any"
    providers: tuple[str, ...] = Field(min_length=1)
    require_consensus: bool = False


class RoutingSettings(Section):
    """``routing``: strategy, complexity routing, rules, and retries after every candidate failed.

    Strategy names are checked against the registered strategies when the Orchestrator is built.
    """

    default_strategy: str = Field(default="priority", min_length=1)
    complexity_threshold: float = Field(default=0.7, ge=0, le=1)
    require_consensus_for_complex: bool = False
    rules: tuple[RoutingRule, ...] = ()
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


class ConsensusSettings(Section):
    """``consensus``: the default strategy, thresholds, and per-strategy options."""

    default_strategy: str = Field(default="similarity", min_length=1)
    similarity_threshold: float = Field(default=0.8, ge=0, le=1)
    confidence_threshold: float = Field(default=0.7, ge=0, le=1)
    strategies: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ImprovementSettings(Section):
    """``improvement``: self-improvement from recorded performance (off unless enabled)."""

    enable: bool = False
    analysis_interval: float = Field(default=24.0, gt=0, description="Hours between analyses.")
    auto_apply_threshold: float = Field(default=0.9, ge=0, le=1)
    min_data_points: int = Field(default=100, ge=1)


class PerformanceSettings(Section):
    """``performance``: health checks, timeouts and connection pools."""

    health_check_interval: float = Field(default=60.0, gt=0, description="Seconds between health checks.")
    request_timeout: float = Field(default=60.0, gt=0, description="Seconds for a whole upstream request.")
    max_connections_per_provider: int = Field(default=100, ge=1)


RateLimits = RateLimitConfig
"""The limits of one ``limits`` entry: the same model the limiter uses."""


class LimitEntry(Section):
    """One ``limits`` entry: rate limits for a tenant, a provider or an API key.

    A provider is named ``tenant/provider`` (one tenant's), or by its bare name (every tenant's).
    """

    target: str = Field(min_length=1)
    scope: Literal["tenant", "provider", "key"]
    limits: RateLimitConfig


class BudgetEntry(Budget):
    """One ``budgets`` entry: a tenant's (or one of its API keys') budget, as the budget model has it."""

    model_config = ConfigDict(hide_input_in_errors=True)

    tenant: str = Field(min_length=1)
    key_id: str | None = None


class StorageSettings(Section):
    """``storage``: the database and the background writer that records requests off the hot path."""

    database_url: Dsn = Field(
        default=sqlite_url(DEFAULT_DATA_DIR), description="Defaults to <framework.data_dir>/podium.db."
    )
    queue_size: int = Field(
        default=10_000,
        ge=1,
        description="Records buffered. Past half of it, new requests wait for the writer to catch up; "
        "while the database is down nobody waits and, once it is full, the oldest records are dropped.",
    )
    batch_size: int = Field(default=500, ge=1, description="Records written per transaction.")
    flush_interval: float = Field(default=1.0, gt=0, description="Seconds between flushes.")
    record_requests: bool = Field(
        default=True,
        description="Keep a request-log row and an audit event for every request. Off, requests leave "
        "no record (configuration changes and budget events are still audited) and day-by-day "
        "analytics come from the cost ledger.",
    )
    store_bodies: bool = Field(default=False, description="Keep prompts and answers, not only metadata.")
    store_history: bool = Field(
        default=True, description="Keep the conversation history of requests that name a user."
    )

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a database URL such as sqlite:///podium.db or postgresql://host/db")
        return value

    @model_validator(mode="after")
    def _batch_fits(self) -> Self:
        if self.batch_size > self.queue_size:
            raise ValueError(f"batch_size ({self.batch_size}) cannot exceed queue_size ({self.queue_size})")
        return self


class ConfigStoreSettings(Section):
    """``config_store``: the encrypted configuration directory."""

    directory: Path = Field(
        default=DEFAULT_DATA_DIR / "config", description="Defaults to <framework.data_dir>/config."
    )
    encryption_key: SecretStr | None = None
    watch_interval: float = Field(default=2.0, gt=0, description="Seconds between change checks.")

    @field_validator("encryption_key")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("must not be empty; unset it instead")
        return value
