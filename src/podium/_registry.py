"""Registry of named components: built-ins as lazy ``"module:Class"`` strings, plus plugin additions.

Built-ins are imported only when first used, so a provider type nobody configures costs nothing at
start-up. Unknown names fail with the list of valid ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

from podium.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps component names to classes.

    Args:
        what: What the components are (used in error messages), e.g. ``"provider type"``.
        builtins: Name to ``"module:Class"`` import paths.
    """

    def __init__(self, what: str, builtins: Mapping[str, str]) -> None:
        self.what = what
        self._paths: dict[str, str] = dict(builtins)
        self._loaded: dict[str, type[T]] = {}

    def register(self, name: str, component: type[T] | str) -> None:
        """Add (or replace) a component by class or by ``"module:Class"`` path."""
        self._loaded.pop(name, None)
        if isinstance(component, str):
            self._paths[name] = component
        else:
            self._paths.pop(name, None)
            self._loaded[name] = component

    def get(self, name: str) -> type[T]:
        """Return the component class named ``name``.

        Raises:
            ConfigError: no such component; the message lists the valid names.
        """
        found = self._loaded.get(name)
        if found is not None:
            return found
        path = self._paths.get(name)
        if path is None:
            raise ConfigError(f"unknown {self.what} {name!r}; valid: {', '.join(sorted(self))}")
        module_name, _, attr = path.partition(":")
        cls: type[T] = getattr(importlib.import_module(module_name), attr)
        self._loaded[name] = cls
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._paths or name in self._loaded

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._paths, *self._loaded}))
