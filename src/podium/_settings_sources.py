"""Where settings come from: keyword arguments, the environment, a ``.env`` file and ``config.yaml``.

Each source turns its input into a nested dict keyed by field names (camelCase spellings resolved), so
pydantic-settings can deep-merge the layers by precedence, and records what it produced as a ``Layer``
so an error can say which file or variable a bad value came from.
"""

from __future__ import annotations

import enum
import os
from abc import abstractmethod
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from podium._settings_env import read_environment
from podium._settings_schema import (
    KeyPath,
    Unresolved,
    child,
    dotted,
    field_lookup,
    is_container,
    model_of,
    unwrap,
)
from podium.errors import ConfigError

DEFAULT_CONFIG_FILE = "config.yaml"
DEFAULT_ENV_FILE = ".env"


class Default(enum.Enum):
    """Marks a file argument left at its default (the file may then be absent)."""

    FILE = "default"


# --- layers and the load context --------------------------------------------------------------------


@dataclass
class Layer:
    """What one source contributed, for tracing a value back to where it was written."""

    label: str
    data: dict[str, Any]
    variables: dict[KeyPath, str] = field(default_factory=dict)

    def has(self, loc: KeyPath) -> bool:
        """Whether this layer set the value at ``loc``."""
        node: Any = self.data
        for key in loc:
            found = (isinstance(node, Mapping) and key in node) or (
                isinstance(node, list | tuple) and isinstance(key, int) and 0 <= key < len(node)
            )
            if not found:
                return False
            node = node[key]
        return True

    def origin(self, loc: KeyPath) -> str:
        """Describe where the value at ``loc`` came from: the variable for environments, else the file."""
        for path, name in self.variables.items():
            if loc[: len(path)] == path or path[: len(loc)] == loc:
                return (
                    f"environment variable {name}"
                    if self.label == "environment"
                    else f"{name} in {self.label}"
                )
        return self.label


@dataclass
class LoadOptions:
    """Which files one ``Settings`` construction reads, and the layers its sources produced."""

    config_file: Path
    config_required: bool
    env_file: Path | None
    env_required: bool
    layers: list[Layer] = field(default_factory=list)

    @classmethod
    def create(cls, config: str | Path | None, env_file: str | Path | Default | None) -> LoadOptions:
        """Resolve the file arguments of ``Settings.load``: explicit files must exist, defaults may not."""
        explicit_env = not isinstance(env_file, Default)
        return cls(
            config_file=Path(config if config is not None else DEFAULT_CONFIG_FILE),
            config_required=config is not None,
            env_file=None
            if env_file is None
            else Path(DEFAULT_ENV_FILE if isinstance(env_file, Default) else env_file),
            env_required=explicit_env and env_file is not None,
        )


LOAD_OPTIONS: ContextVar[LoadOptions | None] = ContextVar("podium_settings_load", default=None)


def _options() -> LoadOptions:
    options = LOAD_OPTIONS.get()
    if options is None:  # Settings.__init__ always sets it; this guards direct use of a source
        raise RuntimeError("settings sources run only inside Settings construction")
    return options


# --- turning input into canonical nested dicts ------------------------------------------------------


def canonical(annotation: Any, data: Any, source: str, loc: KeyPath = ()) -> Any:
    """Rename camelCase keys to field names, at every level the models describe.

    Unknown keys are kept as written so validation reports them with their path; free-form mappings
    (provider settings, strategy options) are left untouched.

    Args:
        annotation: The type ``data`` must have.
        data: The input, as read.
        source: Where the input comes from, for the error message.
        loc: Where ``data`` sits in the settings.

    Raises:
        ConfigError: a key is given twice, in two spellings.
    """
    model = model_of(annotation)
    if model is not None and isinstance(data, Mapping):
        lookup = field_lookup(model)
        out: dict[str, Any] = {}
        spelled: dict[str, str] = {}
        for key, value in data.items():
            name = lookup.get(str(key), str(key))
            if name in out:
                where = dotted((*loc, name))
                raise ConfigError(
                    f"invalid configuration: '{where}' is given twice in {source}, "
                    f"as {spelled[name]!r} and {key!r}; keep one",
                    param=where,
                )
            spelled[name] = str(key)
            out[name] = (
                canonical(model.model_fields[name].annotation, value, source, (*loc, name))
                if name in model.model_fields
                else value
            )
        return out
    if model is not None or isinstance(data, str | bytes):
        return data
    if isinstance(data, list | tuple):
        return [_canonical_child(annotation, i, v, source, loc) for i, v in enumerate(data)]
    if isinstance(data, Mapping) and unwrap(annotation) is not Any:
        return {k: _canonical_child(annotation, k, v, source, loc) for k, v in data.items()}
    return data


def _canonical_child(annotation: Any, key: str | int, value: Any, source: str, loc: KeyPath) -> Any:
    try:
        return canonical(child(annotation, key), value, source, (*loc, key))
    except Unresolved:
        return value


def read_yaml(path: Path, required: bool) -> dict[str, Any]:
    """Load ``config.yaml`` as a mapping (an absent default file counts as empty).

    Raises:
        ConfigError: an explicit file is missing, the YAML does not parse, or it is not a mapping.
    """
    if not path.exists():
        if required:
            raise ConfigError(
                f"config file '{path}' not found (current directory: {Path.cwd()}); check the path"
            )
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file '{path}' must be a mapping of sections (framework:, providers:, ...), "
            f"not a {type(data).__name__}"
        )
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # Only the problem and its position: PyYAML's own message quotes the offending line, which may
    # hold a secret.
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return type(exc).__name__


# --- the pydantic-settings sources -----------------------------------------------------------------


class _Source(PydanticBaseSettingsSource):
    """A source that builds its whole ``Layer`` once and records it in the load context."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._layer: Layer | None = None

    def layer(self) -> Layer:
        """Build (once) and return what this source contributes."""
        if self._layer is None:
            self._layer = self.build()
            _options().layers.append(self._layer)
        return self._layer

    @abstractmethod
    def build(self) -> Layer:
        """Produce this source's layer."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Return this source's value of one top-level field."""
        value = self.layer().data.get(field_name)
        return value, field_name, is_container(field.annotation)

    def __call__(self) -> dict[str, Any]:
        return self.layer().data


class InitSource(_Source):
    """Keyword arguments of ``Settings(...)`` / ``Settings.load(...)``."""

    def __init__(self, settings_cls: type[BaseSettings], init_kwargs: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._kwargs = dict(init_kwargs)

    def build(self) -> Layer:
        """Canonicalise the keyword arguments."""
        label = "keyword arguments"
        return Layer(label, canonical(self.settings_cls, self._kwargs, label))


class EnvironSource(_Source):
    """The process environment."""

    def build(self) -> Layer:
        """Map the environment variables to settings keys."""
        return Layer("environment", *read_environment(self.settings_cls, os.environ))


class DotEnvSource(_Source):
    """A ``.env`` file: the same variables as the environment, lower precedence."""

    def build(self) -> Layer:
        """Read the ``.env`` file, when there is one."""
        options = _options()
        path = options.env_file
        if path is None or not path.is_file():
            if path is not None and options.env_required:
                raise ConfigError(
                    f"env file '{path}' not found (current directory: {Path.cwd()}); check the path"
                )
            return Layer(".env file", {})
        values = dotenv_values(path, encoding="utf-8")
        return Layer(f".env file '{path}'", *read_environment(self.settings_cls, values))


class YamlSource(_Source):
    """``config.yaml`` (or the file given to ``Settings.load``)."""

    def build(self) -> Layer:
        """Read and canonicalise the YAML file."""
        options = _options()
        data = read_yaml(options.config_file, options.config_required)
        label = f"YAML file '{options.config_file}'"
        return Layer(label, canonical(self.settings_cls, data, label))
