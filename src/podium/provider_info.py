"""What callers see of providers and models: settings with every secret masked."""

from __future__ import annotations

from typing import Any

import msgspec
from pydantic import SecretStr

from podium.config.crypto import is_secret_key, mask_secret
from podium.providers.base import Provider


class ProviderInfo(msgspec.Struct, kw_only=True):
    """A provider's settings as shown to callers: secrets masked, never in clear."""

    name: str
    type: str
    tenant: str
    base_url: str | None
    default_model: str | None
    models: list[str]
    priority: int
    weight: float
    enabled: bool
    timeout: float
    api_key: str | None
    headers: dict[str, str]
    options: dict[str, Any]


class ModelInfo(msgspec.Struct, kw_only=True):
    """A model one of the tenant's providers offers."""

    id: str
    provider: str
    type: str


def describe(provider: Provider) -> ProviderInfo:
    """Public view of a provider."""
    c = provider.config
    options = {
        k: (mask_secret(v.get_secret_value()) if isinstance(v, SecretStr) else v)
        for k, v in provider.options.model_dump().items()
    }
    return ProviderInfo(
        name=c.name,
        type=c.type,
        tenant=c.tenant,
        base_url=getattr(getattr(provider, "http", None), "base_url", None) or c.base_url,
        default_model=c.default_model,
        models=list(c.models),
        priority=c.priority,
        weight=c.weight,
        enabled=c.enabled,
        timeout=c.timeout,
        api_key=mask_secret(c.api_key.get_secret_value()) if c.api_key else None,
        headers={k: ("****" if is_secret_key(k) else v) for k, v in c.headers.items()},
        options=options,
    )


__all__ = ["ModelInfo", "ProviderInfo", "describe", "mask_secret"]
