"""Validation of provider configurations: built-in rules per type plus registered validators.

A configuration is refused with every problem listed, not just the first. Registered validators
follow the seed's contract: a function (sync or async) taking the configuration and returning
``{"valid": bool, "errors": [str, ...]}`` (an object with ``valid`` and ``errors`` attributes works
too)::

    async def check_region(config):
        errors = [] if config.get("region") in {"eu", "us"} else ["region must be eu or us"]
        return {"valid": not errors, "errors": errors}

    validators.register("my-provider", check_region)
"""

from __future__ import annotations

import inspect
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr
from pydantic.alias_generators import to_snake

from podium.config.store import PROVIDER_NAME, TENANT_NAME
from podium.errors import RequestError

Validator = Callable[[dict[str, Any]], Any]
"""Takes the configuration; returns (or resolves to) ``{"valid": bool, "errors": [str]}``."""

# Hosted APIs that refuse anonymous calls; pointed at a local server (a proxy, a compatible engine)
# they may go without a key.
KEYED_TYPES = frozenset({"openai", "anthropic", "google"})
_ALIASES = {"custom_headers": "headers", "server": "server_type"}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def normalise(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration with snake_case keys: ``baseUrl`` is ``base_url``, ``customHeaders`` ``headers``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        snake = to_snake(key)
        out[_ALIASES.get(snake, snake)] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return out


def is_local_url(url: str) -> bool:
    """Whether ``url`` points at this machine or a private network (where servers often need no key)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if (
        host == "localhost"
        or host.endswith(_LOCAL_SUFFIXES)
        or (host and "." not in host and ":" not in host)
    ):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local


def _url_errors(url: Any) -> list[str]:
    # The URL is never echoed: it may carry credentials.
    if not isinstance(url, str) or not url:
        return ["base_url must be a non-empty string"]
    if any(c.isspace() for c in url):
        return ["base_url must not contain spaces or line breaks"]
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return ["base_url is not a valid URL (check the port)"]
    errors = []
    if parts.scheme not in ("http", "https"):
        errors.append("base_url must start with http:// or https://")
    elif not parts.hostname:
        errors.append("base_url has no host name")
    if parts.username or parts.password:
        errors.append("base_url must not contain credentials (user:password@); use api_key or headers")
    return errors


def _number_errors(c: dict[str, Any], key: str, *, integer: bool, minimum: float, strict: bool) -> list[str]:
    if key not in c:
        return []
    value = c[key]
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        return [f"{key} must be {kind}"]
    if value < minimum or (strict and value == minimum):
        return [f"{key} must be {'greater than' if strict else 'at least'} {minimum:g}"]
    return []


def builtin_errors(type_: str, config: Mapping[str, Any]) -> list[str]:
    """Problems the built-in rules find in a configuration of type ``type_`` (all of them)."""
    c = normalise(config)
    errors: list[str] = []
    if "tenant" in c and not (isinstance(c["tenant"], str) and TENANT_NAME.fullmatch(c["tenant"])):
        errors.append(
            "tenant must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if "name" in c and not (isinstance(c["name"], str) and PROVIDER_NAME.fullmatch(c["name"])):
        errors.append(
            "name must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
        )
    base_url = c.get("base_url")
    if base_url is not None:
        errors += _url_errors(base_url)
    api_key = c.get("api_key")
    if api_key is not None and (
        not isinstance(api_key, str) or not api_key or any(ch.isspace() for ch in api_key)
    ):
        errors.append("api_key must be a non-empty string without spaces or line breaks")
    local = isinstance(base_url, str) and is_local_url(base_url)
    if type_ in KEYED_TYPES and api_key is None and not local:
        errors.append(
            f"api_key is required for {type_} providers (unless base_url is a local or private server)"
        )
    if type_ == "custom" and not base_url:
        errors.append("base_url is required for custom providers")
    errors += _number_errors(c, "priority", integer=True, minimum=0, strict=False)
    errors += _number_errors(c, "weight", integer=False, minimum=0, strict=True)
    errors += _number_errors(c, "timeout", integer=False, minimum=0, strict=True)
    errors += _number_errors(c, "connect_timeout", integer=False, minimum=0, strict=True)
    errors += _number_errors(c, "max_connections", integer=True, minimum=1, strict=False)
    if "default_model" in c and not (isinstance(c["default_model"], str) and c["default_model"]):
        errors.append("default_model must be a non-empty string")
    models = c.get("models", [])
    if not isinstance(models, list | tuple) or not all(isinstance(m, str) and m for m in models):
        errors.append("models must be a list of non-empty strings")
    if "enabled" in c and not isinstance(c["enabled"], bool):
        errors.append("enabled must be true or false")
    headers = c.get("headers", {})
    if not isinstance(headers, Mapping):
        errors.append("headers must be an object of header name -> value")
    else:
        for name, value in headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                errors.append(f"header name {name!r} is not a valid HTTP header name")
            elif not isinstance(value, str) or "\r" in value or "\n" in value:
                errors.append(f"header {name} must be a string without line breaks")
    return errors


def _result_errors(result: Any, who: str) -> list[str]:
    if isinstance(result, Mapping):
        valid, errors = result.get("valid"), result.get("errors", [])
    elif hasattr(result, "valid"):
        valid, errors = result.valid, getattr(result, "errors", [])
    else:
        return [
            f"validator {who} returned {type(result).__name__}; expected {{'valid': bool, 'errors': [...]}}"
        ]
    if not isinstance(valid, bool) or not isinstance(errors, list | tuple):
        return [f"validator {who} returned a malformed result; expected {{'valid': bool, 'errors': [...]}}"]
    found = [str(e) for e in errors]
    if not valid and not found:
        return [f"rejected by validator {who}"]
    return found


class ValidatorRegistry:
    """Built-in rules plus validators registered per provider type."""

    def __init__(self) -> None:
        self._validators: dict[str, list[Validator]] = {}

    def register(self, type_: str, validator: Validator) -> Callable[[], None]:
        """Run ``validator`` on every configuration of provider type ``type_``, after the built-in rules.

        Returns:
            A callable that removes the validator again.
        """
        self._validators.setdefault(type_, []).append(validator)

        def unregister() -> None:
            validators = self._validators.get(type_, [])
            if validator in validators:
                validators.remove(validator)

        return unregister

    async def validate(self, type_: str, config: Mapping[str, Any]) -> list[str]:
        """Every problem found in ``config`` by the built-in rules and the type's validators.

        A validator that raises counts as a problem (the configuration is refused) rather than
        aborting the others.
        """
        errors = builtin_errors(type_, config)
        for validator in list(self._validators.get(type_, ())):
            who = getattr(validator, "__qualname__", None) or repr(validator)
            try:
                result = validator(dict(config))
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                errors.append(f"validator {who} failed: {type(exc).__name__}: {exc}")
                continue
            errors += _result_errors(result, who)
        return errors

    async def check(self, type_: str, config: Mapping[str, Any], *, what: str | None = None) -> None:
        """Raise ``RequestError`` listing every problem of ``config``; return quietly when it is valid."""
        errors = await self.validate(type_, config)
        if errors:
            subject = what or f"{type_} provider configuration"
            raise RequestError(f"invalid {subject}: " + "; ".join(errors), code="invalid_config")


__all__ = ["KEYED_TYPES", "Validator", "ValidatorRegistry", "builtin_errors", "is_local_url", "normalise"]
