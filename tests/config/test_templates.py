"""Templates: built-ins, {{VAR}} placeholders, registration saved in templates.json."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.config.crypto import Cipher
from podium.config.store import ConfigStore
from podium.config.templates import BUILTIN_TEMPLATES, TemplateRegistry, placeholders, render
from podium.errors import ConfigError, NotFound, RequestError

SEED_TEMPLATE = {
    "baseUrl": "{{API_URL}}",
    "apiKey": "{{API_KEY}}",
    "requestFormat": "openai",
    "responseFormat": "openai",
    "customHeaders": {"X-Custom-Header": "{{CUSTOM_VALUE}}"},
}


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore:
    return ConfigStore(tmp_path / "config", Cipher(os.urandom(32)))


def test_builtins_are_the_seed_ones() -> None:
    assert sorted(BUILTIN_TEMPLATES) == ["anthropic", "custom", "google", "lmstudio", "ollama", "openai"]
    assert TemplateRegistry().names() == sorted(BUILTIN_TEMPLATES)


def test_openai_template_as_in_the_seed() -> None:
    rendered = TemplateRegistry().render(
        "openai", {"OPENAI_API_KEY": "your-key", "OPENAI_ORG_ID": "your-org"}
    )
    assert rendered == {
        "type": "openai",
        "apiKey": "your-key",
        "organization": "your-org",
        "defaultModel": "gpt-4o-mini",
    }


def test_optional_placeholders_are_dropped_and_defaults_overridable() -> None:
    rendered = TemplateRegistry().render(
        "openai", {"OPENAI_API_KEY": "k", "OPENAI_ORG_ID": "", "OPENAI_MODEL": "gpt-4o"}
    )
    assert "organization" not in rendered
    assert "baseUrl" not in rendered
    assert rendered["defaultModel"] == "gpt-4o"


def test_custom_template_as_in_the_seed() -> None:
    rendered = TemplateRegistry().render(
        "custom", {"CUSTOM_API_URL": "https://api.example.com", "CUSTOM_API_KEY": "k"}
    )
    assert rendered == {
        "type": "custom",
        "baseUrl": "https://api.example.com",
        "apiKey": "k",
        "requestFormat": "openai",
        "responseFormat": "openai",
    }


def test_local_templates_need_no_variables() -> None:
    registry = TemplateRegistry()
    assert registry.render("ollama", {}) == {"type": "ollama", "baseUrl": "http://localhost:11434"}
    assert registry.render("lmstudio", {"LMSTUDIO_MODEL": "qwen"}) == {
        "type": "local",
        "serverType": "lmstudio",
        "baseUrl": "http://localhost:1234/v1",
        "defaultModel": "qwen",
    }


def test_every_missing_variable_is_listed() -> None:
    with pytest.raises(RequestError) as err:
        render(SEED_TEMPLATE, {"API_KEY": "k"}, name="my-template")
    assert "cannot render template 'my-template'" in err.value.message
    assert "API_URL, CUSTOM_VALUE" in err.value.message
    assert "API_KEY" not in err.value.message.split("missing")[1]


def test_embedded_placeholders_and_typed_values() -> None:
    template = {"url": "https://{{HOST}}:{{PORT}}/v1", "port": "{{PORT}}", "tags": ["a", "{{TAG?}}"], "n": 3}
    assert render(template, {"HOST": "h", "PORT": 8443}) == {
        "url": "https://h:8443/v1",
        "port": 8443,
        "tags": ["a"],
        "n": 3,
    }
    with pytest.raises(RequestError, match="HOST must be strings, numbers or booleans"):
        render(template, {"HOST": ["x"], "PORT": 1})


def test_placeholders_lists_variables() -> None:
    assert placeholders(BUILTIN_TEMPLATES["openai"]) == {
        "OPENAI_API_KEY": None,
        "OPENAI_ORG_ID": "",
        "OPENAI_BASE_URL": "",
        "OPENAI_MODEL": "gpt-4o-mini",
    }


def test_registered_template_is_saved_and_found_again(store: ConfigStore) -> None:
    TemplateRegistry(store).register("my-template", SEED_TEMPLATE)
    again = TemplateRegistry(store)
    assert "my-template" in again.names()
    rendered = again.render(
        "my-template", {"API_URL": "https://x.example", "API_KEY": "k", "CUSTOM_VALUE": "v"}
    )
    assert rendered["type"] == "custom"
    assert rendered["customHeaders"] == {"X-Custom-Header": "v"}
    again.unregister("my-template")
    assert "my-template" not in TemplateRegistry(store).names()


def test_templates_never_hold_literal_credentials(store: ConfigStore) -> None:
    registry = TemplateRegistry(store)
    with pytest.raises(ConfigError) as err:
        registry.register("leaky", {"apiKey": "sk-live-123", "headers": {"Authorization": "Bearer x"}})
    assert "apiKey holds a credential" in err.value.message
    assert "headers.Authorization holds a credential" in err.value.message
    assert not (store.directory / "templates.json").exists()


def test_invalid_templates_are_refused(store: ConfigStore) -> None:
    registry = TemplateRegistry(store)
    with pytest.raises(ConfigError, match="built-in template"):
        registry.register("openai", SEED_TEMPLATE)
    with pytest.raises(ConfigError, match="malformed placeholder"):
        registry.register("broken", {"baseUrl": "{{API URL}}"})
    with pytest.raises(ConfigError, match="the name must be"):
        registry.register("../x", {"baseUrl": "{{URL}}"})


def test_unknown_template_lists_the_valid_ones() -> None:
    with pytest.raises(NotFound, match="unknown template 'nope'; valid: anthropic, custom"):
        TemplateRegistry().render("nope", {})
