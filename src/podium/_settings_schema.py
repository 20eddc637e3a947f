"""Walking the settings models by key path, and masking secrets for display.

The settings sources, the error messages and the redacted view all need to answer "what type lives at
``routing.retry.max_retries``?" and "how is this value shown without leaking it?"; both answers live here
so that the models in ``_settings_sections`` stay declarative.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, PlainSerializer, SecretStr, SerializationInfo
from pydantic.fields import FieldInfo

KeyPath = tuple[str | int, ...]
"""Where a value sits in the settings: field names, list indices and mapping keys."""

SECRET_MASK = "**********"
"""How a secret is shown anywhere podium prints settings (the same mask pydantic uses)."""

REDACT = "redact"
"""Serialisation context flag: ``model_dump(context={REDACT: True})`` masks URLs that carry credentials."""

# Header names whose values are credentials, so a provider's custom headers can be shown safely.
_SECRET_HEADER_WORDS = ("authorization", "key", "token", "secret", "password", "cookie")


def mask_password(url: str) -> str:
    """Hide the password of a URL (``postgresql://u:****@host/db``); the rest helps debugging."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return SECRET_MASK
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:****@{host}"))


def mask_url(url: str) -> str:
    """Keep only scheme and host of a URL whose path or query is itself a credential (webhooks)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return SECRET_MASK
    if not parts.scheme or not host:
        return SECRET_MASK
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/****"


@dataclass(frozen=True)
class Mask:
    """Marks a ``str`` field whose value must be masked by ``fn`` in ``repr`` and ``redacted()``."""

    fn: Callable[[str], str]


def _serializer(fn: Callable[[str], str]) -> PlainSerializer:
    def serialize(value: str, info: SerializationInfo) -> str:
        context = info.context
        return fn(value) if isinstance(context, Mapping) and context.get(REDACT) else value

    return PlainSerializer(serialize, return_type=str)


Dsn = Annotated[str, Mask(mask_password), _serializer(mask_password)]
"""A connection URL that may embed a password (database, Redis)."""

SecretUrl = Annotated[str, Mask(mask_url), _serializer(mask_url)]
"""A URL whose path is a credential (Slack-style webhooks)."""


def mask_for(field: FieldInfo) -> Callable[[str], str] | None:
    """The masking function declared on a field (directly or inside ``X | None``), if any."""
    for meta in field.metadata:
        if isinstance(meta, Mask):
            return meta.fn
    for arg in get_args(field.annotation):
        if get_origin(arg) is Annotated:
            for meta in arg.__metadata__:
                if isinstance(meta, Mask):
                    return meta.fn
    return None


def masked_repr_args(
    model: BaseModel, args: Iterable[tuple[str | None, Any]]
) -> Iterator[tuple[str | None, Any]]:
    """Mask URL credentials in ``repr``/``str`` (``SecretStr`` masks itself)."""
    fields = type(model).model_fields
    for name, value in args:
        field = fields.get(name) if name else None
        fn = mask_for(field) if field is not None else None
        yield name, (fn(value) if fn is not None and isinstance(value, str) else value)


def redact_provider_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A provider's free-form settings made safe to show: keys, credential headers, URL passwords."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, SecretStr):
            out[key] = SECRET_MASK
        elif key in ("headers", "custom_headers") and isinstance(value, Mapping):
            out[key] = {
                h: (SECRET_MASK if any(w in str(h).lower() for w in _SECRET_HEADER_WORDS) else v)
                for h, v in value.items()
            }
        elif key == "base_url" and isinstance(value, str):
            out[key] = mask_password(value)
        else:
            out[key] = value
    return out


# --- walking the models ----------------------------------------------------------------------------


def unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to the type that matters."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model class an annotation stands for, if it is one."""
    tp = unwrap(annotation)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


@functools.cache
def field_lookup(model: type[BaseModel]) -> dict[str, str]:
    """Every accepted spelling of a model's keys (name, alias) mapped to the field name."""
    out: dict[str, str] = {}
    for name, field in model.model_fields.items():
        out[name] = name
        for alias in (field.alias, field.validation_alias):
            if isinstance(alias, str):
                out[alias] = name
    return out


class Unresolved(Exception):
    """A key path leads nowhere in the settings models."""


def child(annotation: Any, key: str | int) -> Any:
    """The annotation one step down ``key`` (a field, a list index, or a mapping key).

    Raises:
        Unresolved: ``key`` is not a field of the model, or the type has no children.
    """
    model = model_of(annotation)
    if model is not None:
        name = field_lookup(model).get(key) if isinstance(key, str) else None
        if name is None:
            raise Unresolved(key)
        return model.model_fields[name].annotation
    tp = unwrap(annotation)
    if tp is Any:
        return Any
    origin, args = get_origin(tp), get_args(tp)
    if origin in (list, tuple, Sequence) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    raise Unresolved(key)


def is_container(annotation: Any) -> bool:
    """Whether values of this type are written as JSON in environment variables."""
    tp = unwrap(annotation)
    return model_of(tp) is not None or get_origin(tp) in (list, tuple, dict, Sequence, Mapping)


def is_secret(annotation: Any) -> bool:
    """Whether a field holds a ``SecretStr``."""
    return unwrap(annotation) is SecretStr


def dotted(path: Sequence[str | int]) -> str:
    """``("providers", 0, "name")`` -> ``providers[0].name``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def valid_keys(annotation: Any) -> list[str] | None:
    """The field names of the model at this type, or None when any key is allowed."""
    model = model_of(annotation)
    return sorted(model.model_fields) if model is not None else None
