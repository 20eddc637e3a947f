"""Environment variables -> settings keys: both seeds' names and ``PODIUM_<SECTION>__<KEY>``.

Used for the process environment and for ``.env`` files alike. The result is a nested dict keyed by
field names plus, for error messages, which variable set which key path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, get_origin

from pydantic import BaseModel

from podium._settings_schema import KeyPath, Unresolved, child, dotted, is_container, unwrap, valid_keys
from podium.errors import ConfigError

ENV_PREFIX = "PODIUM_"


def _milliseconds(name: str, raw: str) -> float:
    try:
        ms = float(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a number of milliseconds (60000 = one minute), got {raw!r}", param=name
        ) from None
    if ms < 1000:
        # The JS seed counts milliseconds; a small number is almost surely seconds typed by habit.
        raise ConfigError(
            f"{name}={raw} is in milliseconds ({ms / 1000:g} s); write {int(ms * 1000)} for {raw} seconds, "
            f"or set PODIUM_PERFORMANCE__HEALTH_CHECK_INTERVAL in seconds",
            param=name,
        )
    return ms / 1000


def _as_is(name: str, raw: str) -> str:
    return raw


SEED_VARIABLES: dict[str, tuple[tuple[str, ...], Callable[[str, str], Any]]] = {
    "OPENAI_API_KEY": (("openai_api_key",), _as_is),
    "ANTHROPIC_API_KEY": (("anthropic_api_key",), _as_is),
    "GOOGLE_API_KEY": (("google_api_key",), _as_is),
    "DATABASE_URL": (("storage", "database_url"), _as_is),
    "REDIS_URL": (("redis_url",), _as_is),
    "AI_CONFIG_DIR": (("config_store", "directory"), _as_is),
    "AI_ENCRYPTION_KEY": (("config_store", "encryption_key"), _as_is),
    "AI_HEALTH_CHECK_INTERVAL": (("performance", "health_check_interval"), _milliseconds),
    "AI_COST_ALERT_WEBHOOK": (("cost_alert_webhook",), _as_is),
    "LOG_LEVEL": (("framework", "log_level"), _as_is),
    "ENABLE_SELF_IMPROVEMENT": (("improvement", "enable"), _as_is),
    "PERFORMANCE_ANALYSIS_INTERVAL": (("improvement", "analysis_interval"), _as_is),
}
"""Both seeds' environment variables and the settings key each one sets (the JS seed's health check
interval is in milliseconds and is converted to seconds)."""


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{k: _merge(old.get(k), v) for k, v in new.items()}}
    return new


def _set(data: dict[str, Any], path: KeyPath, value: Any) -> None:
    """Set ``value`` at ``path``; what is set later wins, key by key, over what is already there."""
    node = data
    for key in path[:-1]:
        nxt = node.get(str(key))
        if not isinstance(nxt, dict):
            nxt = node[str(key)] = {}
        node = nxt
    last = str(path[-1])
    node[last] = _merge(node.get(last), value)


def read_environment(
    root: type[BaseModel], environ: Mapping[str, str | None]
) -> tuple[dict[str, Any], dict[KeyPath, str]]:
    """Read both seeds' variables and ``PODIUM_<SECTION>__<KEY>`` from one environment.

    Empty values count as unset. ``PODIUM_`` variables win over the seeds' names for the same key, and
    deeper ones over a section given as JSON. A ``PODIUM_`` name without ``__`` that is not a settings
    key is left alone (podium's tools have their own variables, e.g. ``PODIUM_RECORDINGS``).

    Returns:
        The settings the variables set, and which variable set each key path.

    Raises:
        ConfigError: a ``PODIUM_`` variable names an unknown key, or its JSON does not parse.
    """
    data: dict[str, Any] = {}
    variables: dict[KeyPath, str] = {}
    for name, (path, convert) in SEED_VARIABLES.items():
        raw = environ.get(name)
        if raw is not None and raw.strip():
            variables[path] = name
            _set(data, path, convert(name, raw.strip()))
    ours = [
        (n, v) for n, v in environ.items() if n.upper().startswith(ENV_PREFIX) and v is not None and v.strip()
    ]
    parsed = []
    for name, raw in ours:
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if parts[0] not in root.model_fields and len(parts) == 1:
            continue
        parsed.append((name, raw, parts))
    # Applied after the seeds' names, shallow before deep: a later variable is the more specific one.
    for name, raw, parts in sorted(parsed, key=lambda p: (len(p[2]), p[0])):
        annotation, key_path = _resolve(root, name, parts)
        variables[key_path] = name
        _set(data, key_path, _decode(name, raw, annotation))
    return data, variables


def _resolve(root: type[BaseModel], name: str, parts: list[str]) -> tuple[Any, KeyPath]:
    annotation: Any = root
    path: list[str | int] = []
    for part in parts:
        is_list = get_origin(unwrap(annotation)) in (list, tuple)
        try:
            if is_list:  # entries of a list have no names to address them by
                raise Unresolved(part)
            annotation = child(annotation, part)
        except Unresolved:
            keys = valid_keys(annotation)
            where = f"in '{dotted(tuple(path))}'" if path else "at the top level"
            if keys:
                hint = f"valid keys {where}: {', '.join(keys)}"
            elif is_list:
                variable = ENV_PREFIX + "__".join(map(str, path)).upper()
                hint = f"'{dotted(tuple(path))}' is a list, set whole as JSON: {variable}='[...]'"
            else:
                hint = f"'{dotted(tuple(path))}' has no keys below it"
            raise ConfigError(
                f"environment variable {name} names unknown key {part!r}; {hint}", param=name
            ) from None
        path.append(part)
    return annotation, tuple(path)


def _decode(name: str, raw: str, annotation: Any) -> Any:
    if is_container(annotation):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"environment variable {name} must be JSON here ({exc.msg})", param=name
            ) from None
    if unwrap(annotation) is Any:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw
