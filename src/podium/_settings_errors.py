"""Turning a settings ``ValidationError`` into a ``ConfigError`` a person can act on.

Each problem names the key path (``routing.retry.max_retries``), where the value came from (a file, an
environment variable, keyword arguments), the value (never a secret's), and what to do: the valid keys
for an unknown one, the expected value for an invalid one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from podium._settings_schema import (
    KeyPath,
    Unresolved,
    child,
    dotted,
    field_lookup,
    is_container,
    is_secret,
    mask_for,
    model_of,
    valid_keys,
)
from podium._settings_sources import Layer
from podium.errors import ConfigError

_SECRET_WORDS = frozenset({"key", "secret", "token", "password"})
_MAX_SHOWN = 80


def _resolve(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[KeyPath, Any, FieldInfo | None]:
    """Follow ``loc`` through the models as far as it goes.

    Returns:
        The canonical path (aliases renamed to field names, pydantic's internal steps dropped), the
        annotation it ends at, and the field it ends on, if it ends on a model field.
    """
    annotation: Any = root
    path: list[str | int] = []
    last_field: FieldInfo | None = None
    for key in loc:
        model = model_of(annotation)
        name = field_lookup(model).get(key) if model is not None and isinstance(key, str) else key
        try:
            annotation = child(annotation, key)
        except Unresolved:
            break
        last_field = model.model_fields[str(name)] if model is not None else None
        path.append(name if name is not None else key)
    return tuple(path), annotation, last_field


def _origin(layers: Sequence[Layer], path: KeyPath) -> str:
    for depth in range(len(path), 0, -1):
        for layer in layers:  # highest precedence first
            if layer.has(path[:depth]):
                return f" (from {layer.origin(path[:depth])})"
    return ""


def _shown(value: Any, path: KeyPath, annotation: Any, field: FieldInfo | None) -> str:
    name = path[-1] if path else ""
    if is_secret(annotation) or (isinstance(name, str) and _SECRET_WORDS & set(name.lower().split("_"))):
        return "<hidden>"
    mask = mask_for(field) if field is not None else None
    if mask is not None and isinstance(value, str):
        return repr(mask(value))
    if value is None or isinstance(value, str | int | float | bool):
        text = repr(value)
        return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 4] + "...'"
    return f"a {type(value).__name__}"


def _problem(root: type[BaseModel], error: ErrorDetails, layers: Sequence[Layer]) -> tuple[str, str]:
    loc = error["loc"]
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, annotation, _ = _resolve(root, loc[:-1])
        path = (*parent, loc[-1])
        keys = valid_keys(annotation) or []
        where = f"in '{dotted(parent)}'" if parent else "at the top level"
        return dotted(path), (
            f"unknown key '{dotted(path)}'{_origin(layers, path)}; valid keys {where}: {', '.join(keys)}"
        )
    path, annotation, field = _resolve(root, loc)
    shown_path = dotted(path) or "(settings)"
    if kind == "missing":
        return shown_path, f"'{shown_path}' is required{_origin(layers, path[:-1])}; add it"
    message = error["msg"].removeprefix("Value error, ")
    if not path or is_container(annotation):  # a check across several keys, or over a whole list
        return shown_path, f"'{shown_path}'{_origin(layers, path)}: {message}"
    value = _shown(error.get("input"), path, annotation, field)
    return shown_path, f"invalid value {value} for '{shown_path}'{_origin(layers, path)}: {message}"


def config_error(exc: ValidationError, root: type[BaseModel], layers: Sequence[Layer]) -> ConfigError:
    """Describe every problem of ``exc`` in one ``ConfigError`` whose ``param`` is the first key path."""
    problems = [_problem(root, error, layers) for error in exc.errors(include_url=False)]
    if len(problems) == 1:
        text = f"invalid configuration: {problems[0][1]}"
    else:
        text = f"invalid configuration ({len(problems)} problems):\n" + "\n".join(
            f"  - {p}" for _, p in problems
        )
    return ConfigError(text, param=problems[0][0])
