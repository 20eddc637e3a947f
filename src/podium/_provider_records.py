"""Splitting a provider's settings into plain settings and secrets, and back.

The configuration store and exports keep secrets apart (encrypted, or left out), so this is the one
place that decides what a secret is: the API key, every ``SecretStr`` option, and the values of
headers that carry credentials (the config store's own rule, ``is_secret_key``, so that what is
split off here is exactly what the store refuses to keep in plain settings).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from podium.config.crypto import is_secret_key
from podium.providers.base import Provider


def split_settings(provider: Provider) -> tuple[dict[str, Any], dict[str, str]]:
    """Return ``(settings, secrets)`` that recreate ``provider`` through ``create_provider``.

    Only explicitly set values are kept, so defaults that change in later versions still apply.
    Header secrets are keyed ``header:<name>``.
    """
    config = provider.config
    settings: dict[str, Any] = config.model_dump(
        exclude_unset=True, exclude={"name", "tenant", "type", "api_key"}
    )
    secrets: dict[str, str] = {}
    if config.api_key is not None:
        secrets["api_key"] = config.api_key.get_secret_value()
    headers = dict(settings.pop("headers", {}) or {})
    plain_headers = {}
    for name, value in headers.items():
        if is_secret_key(name):
            secrets[f"header:{name}"] = value
        else:
            plain_headers[name] = value
    if plain_headers:
        settings["headers"] = plain_headers
    if "models" in settings:
        settings["models"] = list(settings["models"])
    for key, value in provider.options.model_dump(exclude_unset=True).items():
        if isinstance(value, SecretStr):
            secrets[key] = value.get_secret_value()
        else:
            settings[key] = value
    return settings, secrets


def join_settings(settings: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """Inverse of ``split_settings``: the keyword arguments for ``create_provider``."""
    out = dict(settings)
    headers = dict(out.get("headers") or {})
    for key, value in secrets.items():
        if key.startswith("header:"):
            headers[key.removeprefix("header:")] = value
        else:
            out[key] = value
    if headers:
        out["headers"] = headers
    return out
