"""Settings: sources and precedence, both seeds' variables, camelCase, errors, secrets, defaults."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from podium import Orchestrator
from podium.errors import ConfigError
from podium.routing.retry import RetryPolicy
from podium.settings import Settings

SEED_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "AI_CONFIG_DIR",
    "AI_ENCRYPTION_KEY",
    "AI_HEALTH_CHECK_INTERVAL",
    "AI_COST_ALERT_WEBHOOK",
    "LOG_LEVEL",
    "ENABLE_SELF_IMPROVEMENT",
    "PERFORMANCE_ANALYSIS_INTERVAL",
)

# The seeds' own examples, verbatim (004: config.yaml and .env).
SEED_CONFIG_YAML = """\
# Core Framework Settings
framework:
  name: "AI Orchestration Framework"
  version: "1.0.0"
  enable_metrics: true
  enable_caching: true

# Model Configuration
models:
  openai:
    default_model: "gpt-4"
    max_tokens: 4000
    temperature: 0.7
  anthropic:
    default_model: "claude-3-opus-20240229"
    max_tokens: 4000
  google:
    default_model: "gemini-pro"
    max_tokens: 4000

# Routing Configuration
routing:
  default_strategy: "performance_based"
  complexity_threshold: 0.7
  require_consensus_for_complex: true

  rules:
    - task_type: "code_generation"
      complexity: "simple"
      providers: ["openai", "anthropic"]
      require_consensus: false

    - task_type: "code_generation"
      complexity: "complex"
      providers: ["openai", "anthropic", "google"]
      require_consensus: true

# Consensus Configuration
consensus:
  default_strategy: "similarity"
  similarity_threshold: 0.8
  confidence_threshold: 0.7

  strategies:
    similarity:
      model: "all-MiniLM-L6-v2"
      threshold: 0.8
    voting:
      require_majority: true
      weight_by_confidence: true

# Self-Improvement Configuration
improvement:
  enable: true
  analysis_interval: 24  # hours
  auto_apply_threshold: 0.9
  min_data_points: 100
"""

SEED_DOTENV = """\
# Database Configuration
DATABASE_URL=postgresql://user:password@localhost:5432/ai_framework
# Or for SQLite: sqlite:///ai_framework.db

# Redis Configuration (optional)
REDIS_URL=redis://localhost:6379

# AI Model API Keys
OPENAI_API_KEY=your_openai_api_key
ANTHROPIC_API_KEY=your_anthropic_api_key
GOOGLE_API_KEY=your_google_api_key

# Framework Configuration
LOG_LEVEL=INFO
ENABLE_SELF_IMPROVEMENT=true
PERFORMANCE_ANALYSIS_INTERVAL=24  # hours
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in an empty directory with none of podium's variables set."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name in SEED_VARIABLES or name.upper().startswith("PODIUM_"):
            monkeypatch.delenv(name)


def write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path


def load_error(*args: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Settings.load(*args, **kwargs)
    return info.value


# --- defaults and the seeds' files -------------------------------------------------------------------


def test_defaults_need_no_file_and_keep_data_under_dot_podium() -> None:
    settings = Settings.load()  # no config.yaml, no .env: fine
    assert settings.framework.data_dir == Path(".podium")
    assert settings.storage.database_url == "sqlite+aiosqlite:///.podium/podium.db"
    assert settings.config_store.directory == Path(".podium/config")
    assert settings.routing.retry == RetryPolicy()
    assert settings.providers == ()
    assert settings.openai_api_key is None


def test_the_seed_config_yaml_loads_as_written(tmp_path: Path) -> None:
    settings = Settings.from_yaml(write(tmp_path / "config.yaml", SEED_CONFIG_YAML))
    assert settings.framework.name == "AI Orchestration Framework"
    assert settings.models["anthropic"].default_model == "claude-3-opus-20240229"
    assert settings.models["openai"].temperature == 0.7
    assert settings.routing.rules[1].providers == ("openai", "anthropic", "google")
    assert settings.routing.rules[1].require_consensus is True
    assert settings.consensus.strategies["voting"] == {"require_majority": True, "weight_by_confidence": True}
    assert settings.improvement.enable is True
    assert settings.improvement.analysis_interval == 24


def test_the_seed_dotenv_is_read_from_the_current_directory(tmp_path: Path) -> None:
    write(tmp_path / ".env", SEED_DOTENV)
    settings = Settings.load()
    assert settings.storage.database_url == "postgresql://user:password@localhost:5432/ai_framework"
    assert settings.redis_url == "redis://localhost:6379"
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "your_anthropic_api_key"
    assert settings.improvement.enable is True
    assert settings.improvement.analysis_interval == 24  # the inline "# hours" comment is not the value


def test_settings_constructed_directly_read_the_same_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.yaml", "framework: {name: from-yaml}\n")
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    settings = Settings(routing={"default_strategy": "priority"})
    assert (settings.framework.name, settings.framework.log_level) == ("from-yaml", "ERROR")


# --- precedence ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (("yaml", ".env", "environment", "kwargs"), "DEBUG"),
        (("yaml", ".env", "environment"), "WARNING"),
        (("yaml", ".env"), "ERROR"),
        (("yaml",), "CRITICAL"),
        ((), "INFO"),
    ],
)
def test_each_source_beats_the_next(
    layers: tuple[str, ...], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "yaml" in layers:
        write(tmp_path / "config.yaml", "framework:\n  log_level: CRITICAL\n")
    if ".env" in layers:
        write(tmp_path / ".env", "LOG_LEVEL=ERROR\n")
    if "environment" in layers:
        monkeypatch.setenv("LOG_LEVEL", "WARNING")
    overrides: dict[str, Any] = {"framework": {"log_level": "DEBUG"}} if "kwargs" in layers else {}
    assert Settings.load(**overrides).framework.log_level == expected


def test_sections_merge_key_by_key_across_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path / "config.yaml",
        "framework: {name: mine, enable_metrics: false}\nrouting: {retry: {max_retries: 1}}\n",
    )
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = Settings.load(routing={"retry": {"backoff_max": 2.0}})
    assert settings.framework.name == "mine"
    assert settings.framework.enable_metrics is False
    assert settings.framework.log_level == "DEBUG"
    assert settings.routing.retry.max_retries == 1
    assert settings.routing.retry.backoff_max == 2.0


def test_a_list_is_replaced_whole_by_the_higher_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.yaml", "providers:\n  - {type: openai, name: a}\n  - {type: openai, name: b}\n")
    monkeypatch.setenv("PODIUM_PROVIDERS", '[{"type": "anthropic", "name": "c"}]')
    assert [p.name for p in Settings.load().providers] == ["c"]


def test_an_explicit_env_file_is_read_and_none_skips_dotenv(tmp_path: Path) -> None:
    write(tmp_path / ".env", "REDIS_URL=redis://from-dotenv:6379\n")
    other = write(tmp_path / "prod.env", "REDIS_URL=redis://from-prod:6379\n")
    assert Settings.load(env_file=other).redis_url == "redis://from-prod:6379"
    assert Settings.load(env_file=None).redis_url is None
    assert Settings.load().redis_url == "redis://from-dotenv:6379"


# --- environment variables ----------------------------------------------------------------------


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@pytest.mark.parametrize(
    ("variable", "value", "read", "expected"),
    [
        ("OPENAI_API_KEY", "sk-openai", lambda s: _secret(s.openai_api_key), "sk-openai"),
        ("ANTHROPIC_API_KEY", "sk-ant", lambda s: _secret(s.anthropic_api_key), "sk-ant"),
        ("GOOGLE_API_KEY", "AIza-google", lambda s: _secret(s.google_api_key), "AIza-google"),
        (
            "DATABASE_URL",
            "sqlite:///ai_framework.db",
            lambda s: s.storage.database_url,
            "sqlite:///ai_framework.db",
        ),
        ("REDIS_URL", "redis://localhost:6379", lambda s: s.redis_url, "redis://localhost:6379"),
        ("AI_CONFIG_DIR", "./config", lambda s: s.config_store.directory, Path("config")),
        (
            "AI_ENCRYPTION_KEY",
            "my-passphrase",
            lambda s: _secret(s.config_store.encryption_key),
            "my-passphrase",
        ),
        ("AI_HEALTH_CHECK_INTERVAL", "60000", lambda s: s.performance.health_check_interval, 60.0),
        (
            "AI_COST_ALERT_WEBHOOK",
            "https://your-webhook.com",
            lambda s: s.cost_alert_webhook,
            "https://your-webhook.com",
        ),
        ("LOG_LEVEL", "warn", lambda s: s.framework.log_level, "WARNING"),
        ("ENABLE_SELF_IMPROVEMENT", "true", lambda s: s.improvement.enable, True),
        ("PERFORMANCE_ANALYSIS_INTERVAL", "12", lambda s: s.improvement.analysis_interval, 12.0),
    ],
)
def test_both_seeds_variable_names(
    variable: str, value: str, read: Callable[[Settings], Any], expected: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    assert read(Settings.load()) == expected


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    monkeypatch.setenv("DATABASE_URL", " ")
    settings = Settings.load()
    assert settings.openai_api_key is None
    assert settings.storage.database_url == "sqlite+aiosqlite:///.podium/podium.db"


@pytest.mark.parametrize(("ms", "seconds"), [("60000", 60.0), ("1500", 1.5), ("300000", 300.0)])
def test_health_check_interval_from_the_js_seed_is_milliseconds(
    ms: str, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AI_HEALTH_CHECK_INTERVAL", ms)
    assert Settings.load().performance.health_check_interval == seconds


def test_health_check_interval_in_seconds_by_mistake_is_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AI_HEALTH_CHECK_INTERVAL", "60")
    error = load_error()
    assert "milliseconds" in error.message
    assert "60000" in error.message
    assert error.param == "AI_HEALTH_CHECK_INTERVAL"


def test_health_check_interval_in_podium_form_and_yaml_is_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.yaml", "performance: {health_check_interval: 30}\n")
    assert Settings.load().performance.health_check_interval == 30.0
    monkeypatch.setenv("PODIUM_PERFORMANCE__HEALTH_CHECK_INTERVAL", "45")
    assert Settings.load().performance.health_check_interval == 45.0


def test_podium_nested_variables_reach_every_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_ROUTING__RETRY__MAX_RETRIES", "5")
    monkeypatch.setenv("PODIUM_FRAMEWORK__ENABLE_CACHING", "true")
    monkeypatch.setenv("PODIUM_MODELS__OPENAI__DEFAULT_MODEL", "gpt-4o-mini")
    monkeypatch.setenv("PODIUM_CONSENSUS__STRATEGIES__VOTING__REQUIRE_MAJORITY", "true")
    monkeypatch.setenv("PODIUM_STORAGE__STORE_BODIES", "1")
    monkeypatch.setenv("PODIUM_REDIS_URL", "redis://podium:6379/1")
    monkeypatch.setenv("PODIUM_BUDGETS", '[{"tenant": "acme", "daily": 5, "alertEmails": ["ops@acme.io"]}]')
    settings = Settings.load()
    assert settings.routing.retry.max_retries == 5
    assert settings.framework.enable_caching is True
    assert settings.models["openai"].default_model == "gpt-4o-mini"
    assert settings.consensus.strategies["voting"] == {"require_majority": True}
    assert settings.storage.store_bodies is True
    assert settings.redis_url == "redis://podium:6379/1"
    assert settings.budgets[0].alert_emails == ("ops@acme.io",)


def test_podium_variables_win_over_seed_names_and_deeper_over_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://seed/db")
    monkeypatch.setenv("PODIUM_STORAGE__DATABASE_URL", "postgresql://podium/db")
    monkeypatch.setenv("PODIUM_ROUTING", '{"default_strategy": "priority", "retry": {"max_retries": 1}}')
    monkeypatch.setenv("PODIUM_ROUTING__RETRY__MAX_RETRIES", "3")
    settings = Settings.load()
    assert settings.storage.database_url == "postgresql://podium/db"
    assert settings.routing.retry.max_retries == 3


def test_podium_variables_of_other_tools_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_RECORDINGS", "/somewhere")
    assert Settings.load().framework.name == "podium"


def test_unknown_podium_nested_variable_is_refused_with_valid_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_ROUTING__RETRY__MAX_RETRYS", "3")
    error = load_error()
    assert "PODIUM_ROUTING__RETRY__MAX_RETRYS" in error.message
    assert "max_retries" in error.message
    monkeypatch.delenv("PODIUM_ROUTING__RETRY__MAX_RETRYS")
    monkeypatch.setenv("PODIUM_PROVIDERS__0__NAME", "x")
    assert "PODIUM_PROVIDERS='[...]'" in load_error().message


def test_invalid_json_in_a_podium_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_PROVIDERS", "[{type: openai}]")
    error = load_error()
    assert "PODIUM_PROVIDERS" in error.message
    assert "JSON" in error.message


# --- camelCase ------------------------------------------------------------------------------------


def test_camel_case_keys_of_the_js_seed(tmp_path: Path) -> None:
    write(
        tmp_path / "config.yaml",
        """\
providers:
  - type: anthropic
    name: claude-sonnet
    tenant: my-app
    apiKey: your-anthropic-key
    defaultModel: claude-3-sonnet-20240229
    anthropicVersion: "2023-06-01"
models:
  openai: {defaultModel: gpt-4, maxTokens: 100}
routing: {requireConsensusForComplex: true, complexityThreshold: 0.5}
limits:
  - target: openai-provider
    scope: provider
    limits: {requestsPerSecond: 10, requestsPerMinute: 300, tokensPerSecond: 1000, concurrentRequests: 5}
budgets:
  - {tenant: tenant-a, daily: 50.0, monthly: 1000.0, alertEmails: [admin@tenant-a.com],
     enforceHardLimit: true}
configStore: {watchInterval: 5}
""",
    )
    settings = Settings.load()
    provider = settings.providers[0]
    assert (provider.type, provider.name, provider.tenant) == ("anthropic", "claude-sonnet", "my-app")
    assert provider.settings["default_model"] == "claude-3-sonnet-20240229"
    assert provider.settings["anthropic_version"] == "2023-06-01"
    assert provider.settings["api_key"].get_secret_value() == "your-anthropic-key"
    assert settings.models["openai"].max_tokens == 100
    assert settings.routing.require_consensus_for_complex is True
    limits = settings.limits[0].limits
    assert (limits.requests_per_second, limits.tokens_per_second, limits.concurrent_requests) == (10, 1000, 5)
    assert settings.budgets[0].enforce_hard_limit is True
    assert settings.budgets[0].alert_emails == ("admin@tenant-a.com",)
    assert settings.config_store.watch_interval == 5


def test_the_same_key_in_two_spellings_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "config.yaml", "models:\n  openai: {max_tokens: 10, maxTokens: 20}\n")
    error = load_error()
    assert "models.openai.max_tokens" in error.message
    assert "maxTokens" in error.message
    write(tmp_path / "config.yaml", "providers:\n  - {type: openai, name: a, api_key: k1, apiKey: k2}\n")
    error = load_error()
    assert "api_key" in error.message
    assert "k1" not in error.message
    assert "k2" not in error.message


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_key_names_the_path_the_file_and_the_valid_keys(tmp_path: Path) -> None:
    write(tmp_path / "config.yaml", "routing:\n  retry:\n    max_retrys: 3\n")
    error = load_error()
    assert isinstance(error, ConfigError)
    assert error.param == "routing.retry.max_retrys"
    assert "unknown key 'routing.retry.max_retrys'" in error.message
    assert "config.yaml" in error.message
    assert "backoff_base, backoff_max, max_retries, max_retry_after" in error.message


def test_unknown_section_lists_the_sections() -> None:
    error = load_error(routng={"default_strategy": "priority"})
    assert error.param == "routng"
    assert "routing" in error.message
    assert "keyword arguments" in error.message


def test_invalid_value_names_path_value_and_what_is_expected(tmp_path: Path) -> None:
    write(tmp_path / "config.yaml", "routing:\n  retry:\n    max_retries: -1\n")
    error = load_error()
    assert error.param == "routing.retry.max_retries"
    assert "-1" in error.message
    assert "greater than or equal to 0" in error.message


def test_invalid_value_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_SELF_IMPROVEMENT", "maybe")
    error = load_error()
    assert error.param == "improvement.enable"
    assert "ENABLE_SELF_IMPROVEMENT" in error.message
    assert "'maybe'" in error.message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    write(
        tmp_path / "config.yaml",
        "framework: {log_level: loud}\n"
        "limits:\n  - {target: a, scope: world, limits: {requestsPerSecond: 1}}\n"
        "budgets:\n  - {tenant: t}\n",
    )
    message = load_error().message
    assert "3 problems" in message
    assert "framework.log_level" in message
    assert "limits[0].scope" in message
    assert "budgets[0]" in message


def test_missing_required_keys_are_named(tmp_path: Path) -> None:
    write(tmp_path / "config.yaml", "providers:\n  - {type: openai}\n")
    error = load_error()
    assert error.param == "providers[0].name"
    assert "required" in error.message


def test_duplicate_provider_names_in_a_tenant_are_refused(tmp_path: Path) -> None:
    write(
        tmp_path / "config.yaml",
        "providers:\n  - {type: openai, name: a}\n  - {type: anthropic, name: a}\n"
        "  - {type: anthropic, name: a, tenant: other}\n",
    )
    error = load_error()
    assert error.param == "providers"
    assert "'a'" in error.message


def test_a_missing_yaml_file_given_explicitly_is_an_error(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.yaml")
    assert "nope.yaml" in error.message
    assert "not found" in error.message


def test_a_missing_env_file_given_explicitly_is_an_error(tmp_path: Path) -> None:
    assert "prod.env" in load_error(env_file=tmp_path / "prod.env").message


@pytest.mark.parametrize("content", ["- framework\n- routing\n", "just a string\n", "42\n"])
def test_yaml_that_is_not_a_mapping_is_an_error(content: str, tmp_path: Path) -> None:
    assert "must be a mapping" in load_error(write(tmp_path / "c.yaml", content)).message


def test_yaml_that_does_not_parse_is_an_error(tmp_path: Path) -> None:
    assert "not valid YAML" in load_error(write(tmp_path / "c.yaml", "routing: [unclosed\n")).message


def test_an_empty_yaml_file_means_defaults(tmp_path: Path) -> None:
    assert Settings.load(write(tmp_path / "c.yaml", "# nothing yet\n")).framework.name == "podium"


def test_settings_are_immutable() -> None:
    settings = Settings.load()
    with pytest.raises(ValidationError):
        settings.redis_url = "redis://elsewhere"  # type: ignore[misc]


# --- secrets --------------------------------------------------------------------------------------

SECRETS = {
    "provider": "sk-provider-0123456789abcdef",
    "header": "Bearer hdr-0123456789abcdef",
    "openai": "sk-env-0123456789abcdef",
    "encryption": "passphrase-0123456789",
    "db_password": "dbpass0123456789",
    "webhook": "T000B000XXXXsecretpath",
}


@pytest.fixture
def secret_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    write(
        tmp_path / "config.yaml",
        f"""\
providers:
  - type: custom
    name: mine
    baseUrl: https://api.example.com/v1
    apiKey: {SECRETS["provider"]}
    customHeaders: {{Authorization: "{SECRETS["header"]}", X-Team: blue}}
budgets:
  - {{tenant: t, daily: 1, alertWebhook: "https://hooks.example.com/services/{SECRETS["webhook"]}"}}
""",
    )
    write(tmp_path / ".env", f"AI_ENCRYPTION_KEY={SECRETS['encryption']}\n")
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS["openai"])
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://podium:{SECRETS['db_password']}@db.internal:5432/podium"
    )
    monkeypatch.setenv("AI_COST_ALERT_WEBHOOK", f"https://hooks.example.com/services/{SECRETS['webhook']}")
    return Settings.load()


def test_secrets_never_appear_in_repr_str_or_redacted(secret_settings: Settings) -> None:
    shown = [repr(secret_settings), str(secret_settings), json.dumps(secret_settings.redacted())]
    shown += [
        repr(secret_settings.providers[0]),
        repr(secret_settings.storage),
        repr(secret_settings.budgets[0]),
    ]
    for text_ in shown:
        for name, secret in SECRETS.items():
            assert secret not in text_, name


def test_redacted_keeps_what_helps_debugging(secret_settings: Settings) -> None:
    data = secret_settings.redacted()
    assert data["openai_api_key"] == "**********"
    assert data["config_store"]["encryption_key"] == "**********"
    assert data["storage"]["database_url"] == "postgresql://podium:****@db.internal:5432/podium"
    assert data["cost_alert_webhook"] == "https://hooks.example.com/****"
    provider = data["providers"][0]["settings"]
    assert provider["api_key"] == "**********"
    assert provider["custom_headers"] == {"Authorization": "**********", "X-Team": "blue"}
    assert provider["base_url"] == "https://api.example.com/v1"
    assert data["anthropic_api_key"] is None  # unset stays visibly unset


def test_secret_values_stay_usable(secret_settings: Settings) -> None:
    assert secret_settings.providers[0].settings["api_key"].get_secret_value() == SECRETS["provider"]
    assert SECRETS["db_password"] in secret_settings.storage.database_url
    encryption_key = secret_settings.config_store.encryption_key
    assert encryption_key is not None
    assert encryption_key.get_secret_value() == SECRETS["encryption"]


def test_errors_never_show_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-misplaced-0123456789abcdef"
    write(tmp_path / "config.yaml", f"framework:\n  apiKey: {secret}\n")
    error = load_error()
    assert "framework.apiKey" in error.message
    assert secret not in error.message
    assert secret not in str(error.__cause__)
    write(tmp_path / "config.yaml", "providers:\n  - {type: openai, name: a, apiKey: 1234567890}\n")
    assert "1234567890" not in load_error().message
    write(tmp_path / "config.yaml", f"providers:\n  - type: openai\n    apiKey: {secret}: oops\n")
    error = load_error()
    assert "not valid YAML" in error.message
    assert secret not in error.message
    write(tmp_path / "config.yaml", "")
    monkeypatch.setenv("REDIS_URL", f"http://user:{secret}@cache:6379")
    error = load_error()
    assert "redis_url" in error.message
    assert secret not in error.message


# --- data dir, provider defaults ----------------------------------------------------------------


async def test_default_database_is_an_sqlite_file_inside_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "var" / "podium"
    settings = Settings.load(framework={"data_dir": str(data_dir)})
    assert settings.storage.database_url == f"sqlite+aiosqlite:///{data_dir / 'podium.db'}"
    assert settings.config_store.directory == data_dir / "config"
    data_dir.mkdir(parents=True)
    engine = create_async_engine(settings.storage.database_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("select 1"))).scalar() == 1
    finally:
        await engine.dispose()
    assert (data_dir / "podium.db").is_file()


def test_explicit_database_and_config_dir_win_over_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.yaml", "framework: {data_dir: /srv/podium}\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1/test")
    monkeypatch.setenv("AI_CONFIG_DIR", "/etc/podium")
    settings = Settings.load()
    assert settings.storage.database_url == "postgresql://127.0.0.1/test"
    assert settings.config_store.directory == Path("/etc/podium")
    assert Settings.load(env_file=None, storage={"batch_size": 10}).storage.database_url == (
        "postgresql://127.0.0.1/test"
    )


def test_provider_defaults_come_from_env_keys_and_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "config.yaml", "models:\n  openai: {default_model: gpt-4o-mini}\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-default-openai-key")
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-default-google")
    settings = Settings.load()
    openai = settings.provider_defaults("openai")
    assert openai["api_key"].get_secret_value() == "sk-default-openai-key"
    assert openai["default_model"] == "gpt-4o-mini"
    assert settings.provider_defaults("google") == {"api_key": settings.google_api_key}
    assert settings.provider_defaults("anthropic") == {}
    assert settings.provider_defaults("ollama") == {}
    assert settings.default_api_key("anthropic") is None


async def test_providers_from_settings_create_real_providers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "config.yaml",
        """\
providers:
  - {type: openai, name: with-key, tenant: app, apiKey: sk-own-key-0123456789, organization: org-1}
  - {type: openai, name: env-key, tenant: app}
""",
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-abcdefghij")
    settings = Settings.load()
    orchestrator = Orchestrator(retry=settings.routing.retry)
    try:
        shown = [
            await orchestrator.create_provider(
                type=p.type,
                name=p.name,
                tenant=p.tenant,
                **{**settings.provider_defaults(p.type), **p.settings},
            )
            for p in settings.providers
        ]
    finally:
        await orchestrator.aclose()
    assert shown[0].api_key == "sk-...6789" and shown[0].options["organization"] == "org-1"
    assert shown[1].api_key == "sk-...ghij"
    assert orchestrator.retry == settings.routing.retry
