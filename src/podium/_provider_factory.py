"""Building provider objects from friendly settings (``create_provider``'s keyword arguments).

Settings arrive snake_case or camelCase; ``type="local"`` with a ``server_type`` picks the local
server's adapter and default URL. Every invalid or unknown setting is reported at once, with the
list of valid ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from podium.errors import RequestError
from podium.providers.base import Provider, ProviderConfig
from podium.providers.custom import CustomAdapters
from podium.providers.registry import LOCAL_SERVERS, PROVIDERS

CONFIG_FIELDS = frozenset(ProviderConfig.model_fields)
_KEY_ALIASES = {"custom_headers": "headers", "server": "server_type"}


def normalise(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings with snake_case keys and the seed's aliases resolved (``customHeaders`` -> ``headers``)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        snake = to_snake(key)
        out[_KEY_ALIASES.get(snake, snake)] = value
    return out


def _describe(exc: ValidationError, what: str) -> str:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(settings)"
        errors.append(f"{loc}: {err['msg']}")
    return f"invalid {what}: " + "; ".join(errors)


def build_provider(
    type_: str, name: str, tenant: str, settings: Mapping[str, Any], adapters: CustomAdapters
) -> Provider:
    """A provider object from its type, identity and settings.

    Raises:
        RequestError: unknown type, or invalid/unknown settings (every problem listed).
    """
    fields = normalise(settings)
    kind = type_
    if kind == "local":
        server = str(fields.pop("server_type", "ollama")).lower()
        if server not in LOCAL_SERVERS:
            raise RequestError(
                f"unknown serverType {server!r}; valid: {', '.join(sorted(LOCAL_SERVERS))}",
                param="server_type",
            )
        kind, default_url = LOCAL_SERVERS[server]
        fields.setdefault("base_url", default_url)
    if kind not in PROVIDERS or kind == "mock":
        valid = [k for k in PROVIDERS if k != "mock"]
        raise RequestError(
            f"unknown provider type {type_!r}; valid: {', '.join([*valid, 'local'])}", param="type"
        )
    cls = PROVIDERS.get(kind)
    common = {k: v for k, v in fields.items() if k in CONFIG_FIELDS}
    rest = {k: v for k, v in fields.items() if k not in CONFIG_FIELDS}
    try:
        config = ProviderConfig(**{**common, "name": name, "tenant": tenant, "type": kind})
    except ValidationError as exc:
        raise RequestError(_describe(exc, f"settings for provider {name!r}")) from exc
    try:
        options = cls.Options(**rest)
    except ValidationError as exc:
        valid_keys = sorted(CONFIG_FIELDS - {"name", "tenant", "type"} | set(cls.Options.model_fields))
        raise RequestError(
            _describe(exc, f"settings for provider {name!r} ({kind})")
            + f". Valid settings: {', '.join(valid_keys)}"
        ) from exc
    if kind == "custom":
        return cls(config, options, adapters=adapters)  # type: ignore[call-arg]
    return cls(config, options)


def current_settings(provider: Provider) -> dict[str, Any]:
    """Every setting of a live provider, as ``build_provider`` takes them (secrets in clear)."""
    out: dict[str, Any] = {
        k: v for k, v in provider.config.model_dump().items() if k not in ("name", "tenant", "type")
    }
    out.update(provider.options.model_dump())
    return out
