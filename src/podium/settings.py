"""``Settings``: all of podium's configuration, built once at the edge and passed down.

Sources, highest precedence first::

    keyword arguments  >  environment  >  .env file  >  config.yaml  >  defaults

Nested sections merge key by key across sources, so ``LOG_LEVEL=DEBUG`` changes only
``framework.log_level`` of a YAML ``framework:`` section. Lists (``providers``, ``limits``,
``budgets``, ``routing.rules``) are replaced whole by the source that sets them.

Environment variables (the same names work in ``.env``):

- the seeds' names: ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ``GOOGLE_API_KEY``, ``DATABASE_URL``
  (``storage.database_url``), ``REDIS_URL``, ``AI_CONFIG_DIR`` (``config_store.directory``),
  ``AI_ENCRYPTION_KEY`` (``config_store.encryption_key``), ``AI_HEALTH_CHECK_INTERVAL``
  (``performance.health_check_interval``; **milliseconds**, as in the JS seed: 60000 is 60 s),
  ``AI_COST_ALERT_WEBHOOK``, ``LOG_LEVEL`` (``framework.log_level``), ``ENABLE_SELF_IMPROVEMENT``
  (``improvement.enable``), ``PERFORMANCE_ANALYSIS_INTERVAL`` (``improvement.analysis_interval``, hours);
- any key as ``PODIUM_<SECTION>__<KEY>`` (``PODIUM_ROUTING__RETRY__MAX_RETRIES=3``), in the key's own
  unit; a whole section or list as JSON (``PODIUM_PROVIDERS='[{"type": "openai", ...}]'``). These win
  over the seeds' names. Empty variables count as unset.

YAML keys may be snake_case or the JS seed's camelCase (``apiKey``, ``requestsPerSecond``). Relative
paths are relative to the current directory. Unknown keys and invalid values raise ``ConfigError``
naming the key path, where the value came from, and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from podium._settings_errors import config_error
from podium._settings_schema import REDACT, Dsn, SecretUrl, masked_repr_args
from podium._settings_sections import (
    DEFAULT_DATA_DIR,
    BudgetEntry,
    ConfigStoreSettings,
    ConsensusSettings,
    FrameworkSettings,
    ImprovementSettings,
    LimitEntry,
    ModelDefaults,
    PerformanceSettings,
    ProviderEntry,
    RateLimits,
    RoutingRule,
    RoutingSettings,
    StorageSettings,
    sqlite_url,
)
from podium._settings_sources import (
    LOAD_OPTIONS,
    Default,
    DotEnvSource,
    EnvironSource,
    InitSource,
    LoadOptions,
    YamlSource,
)
from podium.auth.config import AuthSettings
from podium.costs.config import GovernanceSettings
from podium.health.config import HealthSettings
from podium.server.config import ServerSettings

__all__ = [
    "BudgetEntry",
    "ConfigStoreSettings",
    "ConsensusSettings",
    "FrameworkSettings",
    "ImprovementSettings",
    "LimitEntry",
    "ModelDefaults",
    "PerformanceSettings",
    "ProviderEntry",
    "RateLimits",
    "RoutingRule",
    "RoutingSettings",
    "Settings",
    "StorageSettings",
]

# The seeds' default-key variables, by the provider type whose missing api_key they fill.
_DEFAULT_KEY_FIELDS = {
    "openai": "openai_api_key",
    "anthropic": "anthropic_api_key",
    "google": "google_api_key",
}


class Settings(BaseSettings):
    """podium's configuration. Build it with ``Settings.load()`` (or ``Settings.from_yaml(path)``).

    Example:
        >>> settings = Settings.load("config.yaml", framework={"log_level": "DEBUG"})
        >>> settings.routing.retry.max_retries
        2

    Raises:
        ConfigError: on construction, for unknown keys, invalid values, or unreadable files.
    """

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        alias_generator=to_camel,
        validate_default=True,
        hide_input_in_errors=True,
    )

    framework: FrameworkSettings = Field(default_factory=FrameworkSettings)
    providers: tuple[ProviderEntry, ...] = ()
    models: dict[str, ModelDefaults] = Field(default_factory=dict)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    consensus: ConsensusSettings = Field(default_factory=ConsensusSettings)
    improvement: ImprovementSettings = Field(default_factory=ImprovementSettings)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)
    limits: tuple[LimitEntry, ...] = ()
    budgets: tuple[BudgetEntry, ...] = ()
    storage: StorageSettings = Field(default_factory=StorageSettings)
    config_store: ConfigStoreSettings = Field(default_factory=ConfigStoreSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    governance: GovernanceSettings = Field(default_factory=GovernanceSettings)
    redis_url: Dsn | None = None
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    google_api_key: SecretStr | None = None
    cost_alert_webhook: SecretUrl | None = None

    def __init__(self, **values: Any) -> None:
        options = LOAD_OPTIONS.get()
        token = None
        if options is None:  # built directly, not through load(): the default files, both optional
            options = LoadOptions.create(None, Default.FILE)
            token = LOAD_OPTIONS.set(options)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise config_error(exc, type(self), options.layers) from exc
        finally:
            if token is not None:
                LOAD_OPTIONS.reset(token)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        env_file: str | Path | Default | None = Default.FILE,
        **overrides: Any,
    ) -> Self:
        """Build settings from every source.

        Args:
            path: The YAML file; it must exist. None reads ``config.yaml`` in the current directory
                when there is one.
            env_file: The ``.env`` file; it must exist. Left out: ``.env`` in the current directory
                when there is one. None: read no ``.env`` file.
            **overrides: Settings that win over every other source, e.g. ``routing={"retry":
                {"max_retries": 0}}`` (merged key by key with the other sources).

        Raises:
            ConfigError: a file given explicitly is missing, the YAML is not a mapping, or a key is
                unknown or its value invalid.
        """
        token = LOAD_OPTIONS.set(LoadOptions.create(path, env_file))
        try:
            return cls(**overrides)
        finally:
            LOAD_OPTIONS.reset(token)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        """Build settings from a YAML file (which must exist), plus ``.env`` and the environment."""
        return cls.load(path)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Replace pydantic-settings' sources with podium's (both seeds' variable names, YAML)."""
        kwargs = getattr(init_settings, "init_kwargs", {})
        return (
            InitSource(settings_cls, kwargs),
            EnvironSource(settings_cls),
            DotEnvSource(settings_cls),
            YamlSource(settings_cls),
        )

    @model_validator(mode="before")
    @classmethod
    def _place_in_data_dir(cls, data: Any) -> Any:
        """Default the database and the config directory to inside ``framework.data_dir``."""
        if not isinstance(data, Mapping):
            return data
        framework = data.get("framework")
        raw = framework.get("data_dir") if isinstance(framework, Mapping) else None
        if isinstance(framework, FrameworkSettings):
            raw = framework.data_dir
        if not isinstance(raw, str | Path) or Path(raw) == DEFAULT_DATA_DIR:
            return data  # the sections' own defaults already point at the default data dir
        data_dir = Path(raw)
        return {
            **data,
            "storage": _with_default(data.get("storage"), "database_url", sqlite_url(data_dir)),
            "config_store": _with_default(data.get("config_store"), "directory", data_dir / "config"),
        }

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, value: tuple[ProviderEntry, ...]) -> tuple[ProviderEntry, ...]:
        _unique(((p.tenant, p.name) for p in value), "two providers named {1!r} in tenant {0!r}")
        return value

    @field_validator("limits")
    @classmethod
    def _unique_limits(cls, value: tuple[LimitEntry, ...]) -> tuple[LimitEntry, ...]:
        _unique(((lim.scope, lim.target) for lim in value), "two limits entries for {0} {1!r}; merge them")
        return value

    @field_validator("budgets")
    @classmethod
    def _unique_budgets(cls, value: tuple[BudgetEntry, ...]) -> tuple[BudgetEntry, ...]:
        _unique(((b.tenant,) for b in value), "two budgets for tenant {0!r}; merge them")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("cost_alert_webhook")
    @classmethod
    def _webhook_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return masked_repr_args(self, super().__repr_args__())

    def default_api_key(self, provider_type: str) -> SecretStr | None:
        """The key from ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` / ``GOOGLE_API_KEY`` for that type."""
        field = _DEFAULT_KEY_FIELDS.get(provider_type)
        key = getattr(self, field) if field is not None else None
        return key if isinstance(key, SecretStr) else None

    def provider_defaults(self, provider_type: str) -> dict[str, Any]:
        """Settings to fill in when a provider of this type leaves them out.

        Returns:
            ``api_key`` (a ``SecretStr``) from the type's environment key, and ``default_model`` from
            ``models.<type>``, each only when set. Merge the provider's own settings over it:
            ``{**settings.provider_defaults(p.type), **p.settings}``.
        """
        out: dict[str, Any] = {}
        key = self.default_api_key(provider_type)
        if key is not None:
            out["api_key"] = key
        defaults = self.models.get(provider_type)
        if defaults is not None and defaults.default_model:
            out["default_model"] = defaults.default_model
        return out

    def redacted(self) -> dict[str, Any]:
        """All settings as JSON-ready data, safe to print or log.

        Secrets show as ``**********``, passwords inside URLs as ``****``, webhook URLs as their host only,
        and credential-like provider headers as ``**********``.
        """
        return self.model_dump(mode="json", context={REDACT: True})


def _with_default(section: Any, key: str, value: Any) -> Any:
    if section is None:
        return {key: value}
    if isinstance(section, Mapping):
        return section if key in section else {**section, key: value}
    if isinstance(section, StorageSettings | ConfigStoreSettings) and key not in section.model_fields_set:
        return section.model_copy(update={key: value})
    return section


def _unique(keys: Iterable[tuple[str, ...]], message: str) -> None:
    seen: set[tuple[str, ...]] = set()
    for key in keys:
        if key in seen:
            raise ValueError(message.format(*key))
        seen.add(key)
