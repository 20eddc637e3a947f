"""Validation: built-in rules per provider type, registered validators, every error listed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from podium.config.validators import ValidatorRegistry, is_local_url
from podium.errors import RequestError


@pytest.fixture
def validators() -> ValidatorRegistry:
    return ValidatorRegistry()


@pytest.mark.parametrize("type_", ["openai", "anthropic", "google"])
async def test_hosted_apis_need_a_key(validators: ValidatorRegistry, type_: str) -> None:
    assert await validators.validate(type_, {"apiKey": "k"}) == []
    (error,) = await validators.validate(type_, {"defaultModel": "m"})
    assert error.startswith(f"api_key is required for {type_} providers")


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000/v1", "http://127.0.0.1:1234/v1", "http://10.1.2.3/v1", "http://vllm:8000/v1"],
)
async def test_local_servers_may_go_without_a_key(validators: ValidatorRegistry, url: str) -> None:
    assert is_local_url(url)
    assert await validators.validate("openai", {"baseUrl": url}) == []


async def test_public_host_is_not_local() -> None:
    assert not is_local_url("https://api.openai.com/v1")
    assert not is_local_url("http://8.8.8.8/v1")


async def test_custom_needs_a_base_url_and_local_needs_nothing(validators: ValidatorRegistry) -> None:
    assert await validators.validate("custom", {"apiKey": "k"}) == [
        "base_url is required for custom providers"
    ]
    assert await validators.validate("ollama", {}) == []
    assert await validators.validate("local", {"serverType": "lmstudio"}) == []


async def test_every_problem_is_listed(validators: ValidatorRegistry) -> None:
    errors = await validators.validate(
        "openai",
        {
            "name": "bad name",
            "tenant": "../x",
            "baseUrl": "ftp://example.com",
            "apiKey": "has space",
            "priority": -1,
            "weight": 0,
            "timeout": "soon",
            "maxConnections": 0,
            "models": ["", 3],
            "customHeaders": {"Bad Header": "x", "X-Ok": "line\nbreak"},
            "enabled": "yes",
        },
    )
    assert errors == [
        "tenant must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
        "name must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
        "base_url must start with http:// or https://",
        "api_key must be a non-empty string without spaces or line breaks",
        "priority must be at least 0",
        "weight must be greater than 0",
        "timeout must be a number",
        "max_connections must be at least 1",
        "models must be a list of non-empty strings",
        "enabled must be true or false",
        "header name 'Bad Header' is not a valid HTTP header name",
        "header X-Ok must be a string without line breaks",
    ]


async def test_credentials_in_the_url_are_refused_without_echoing_them(validators: ValidatorRegistry) -> None:
    errors = await validators.validate("custom", {"baseUrl": "https://user:hunter2@api.example.com"})
    assert errors == ["base_url must not contain credentials (user:password@); use api_key or headers"]
    assert await validators.validate("custom", {"baseUrl": "https://api.example.com:99999"}) == [
        "base_url is not a valid URL (check the port)"
    ]


async def test_seed_custom_validator(validators: ValidatorRegistry) -> None:
    async def check_custom_field(config: dict[str, Any]) -> dict[str, Any]:
        errors = []
        if not config.get("customField"):
            errors.append("customField is required")
        return {"valid": len(errors) == 0, "errors": errors}

    validators.register("my-provider", check_custom_field)
    assert await validators.validate("my-provider", {"customField": "x"}) == []
    assert await validators.validate("my-provider", {}) == ["customField is required"]
    assert await validators.validate("other", {}) == []


async def test_builtin_and_registered_errors_are_collected_together(validators: ValidatorRegistry) -> None:
    @dataclass
    class Result:
        valid: bool
        errors: list[str] = field(default_factory=list)

    validators.register("openai", lambda config: Result(False, ["org must be set"]))
    validators.register("openai", lambda config: {"valid": False, "errors": []})
    validators.register("openai", lambda config: 1 / 0)
    validators.register("openai", lambda config: "yes")
    unregister = validators.register("openai", lambda config: {"valid": False, "errors": ["removed later"]})
    unregister()
    errors = await validators.validate("openai", {})
    assert errors[0].startswith("api_key is required")
    assert errors[1] == "org must be set"
    assert errors[2].startswith("rejected by validator")
    assert "failed: ZeroDivisionError" in errors[3]
    assert "returned str; expected" in errors[4]
    assert len(errors) == 5


async def test_validators_cannot_change_the_configuration(validators: ValidatorRegistry) -> None:
    def meddle(config: dict[str, Any]) -> dict[str, Any]:
        config["apiKey"] = "stolen"
        return {"valid": True, "errors": []}

    validators.register("custom", meddle)
    config = {"baseUrl": "https://x.example", "apiKey": "mine"}
    await validators.validate("custom", config)
    assert config["apiKey"] == "mine"


async def test_check_raises_with_every_error(validators: ValidatorRegistry) -> None:
    with pytest.raises(RequestError) as err:
        await validators.check("custom", {"priority": "high"})
    assert err.value.status == 400
    assert "base_url is required for custom providers" in err.value.message
    assert "priority must be an integer" in err.value.message
    await validators.check("custom", {"baseUrl": "https://x.example"})
