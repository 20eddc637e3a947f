"""Typed events and the in-process bus that delivers them to hooks.

Every event is a frozen ``msgspec.Struct`` whose class declares its ``name`` (``"config.updated"``, ...);
declaring a subclass with a name registers it, so subscribing to a misspelt name fails at once with the
list of valid ones. Handlers may be plain functions or coroutines; a failing handler is logged and
counted and never breaks the code that published the event::

    bus = EventBus()
    unsubscribe = bus.subscribe("config.updated", lambda event: print(event.provider))
    await bus.publish(ConfigUpdated(tenant="acme", provider="gpt", before=..., after=...))

Patterns: ``"*"`` receives every event, ``"config.*"`` every event whose name starts with ``config.``.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar, overload

import msgspec

from podium.errors import ConfigError

logger = logging.getLogger(__name__)

_EVENT_TYPES: dict[str, type[Event]] = {}

ConfigSource = Literal["api", "file", "replica"]
"""Where a configuration change came from: podium's own API, an edit of the config files, or another
replica (announced over Redis)."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every event.

    Attributes:
        name: The event's name, declared by each concrete class (``"config.updated"``).
        at: When it happened (seconds since the epoch).
    """

    name: ClassVar[str] = ""
    at: float = msgspec.field(default_factory=time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name:
            _EVENT_TYPES[name] = cls


class ConfigEvent(Event, frozen=True, kw_only=True):
    """A provider's stored configuration changed.

    Attributes:
        tenant: The tenant that owns the provider.
        provider: The provider's name.
        source: ``"api"`` (podium's API or Python calls), ``"file"`` (an edit of the config files) or
            ``"replica"`` (another replica, announced over Redis).
        before: The configuration before the change, secrets masked; None when it was created.
        after: The configuration after the change, secrets masked; None when it was removed.
    """

    tenant: str
    provider: str
    source: ConfigSource = "api"
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class ConfigCreated(ConfigEvent, frozen=True, kw_only=True):
    """A provider was added to the configuration."""

    name: ClassVar[str] = "config.created"


class ConfigUpdated(ConfigEvent, frozen=True, kw_only=True):
    """A provider's settings or secrets changed."""

    name: ClassVar[str] = "config.updated"


class ConfigRemoved(ConfigEvent, frozen=True, kw_only=True):
    """A provider was removed from the configuration."""

    name: ClassVar[str] = "config.removed"


def event_names() -> list[str]:
    """Names of every declared event type, sorted."""
    return sorted(_EVENT_TYPES)


E = TypeVar("E", bound=Event)
Handler = Callable[[Any], object]
"""A sync function or a coroutine function taking one event; its result is ignored."""


def _handler_name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


class EventBus:
    """Delivers events to the handlers subscribed to their names.

    Handlers run in the order they subscribed; ``publish`` returns once all of them finished, so the
    caller knows its hooks have seen the change.

    Attributes:
        failures: Number of handler exceptions per event name.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self.failures: Counter[str] = Counter()

    @overload
    def subscribe(self, event: type[E], handler: Callable[[E], object]) -> Callable[[], None]: ...

    @overload
    def subscribe(self, event: str, handler: Handler) -> Callable[[], None]: ...

    def subscribe(self, event: str | type[Event], handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for every published event matching ``event``.

        Args:
            event: An event name (``"config.updated"``), a pattern (``"config.*"``, ``"*"``) or an
                event class.
            handler: Function or coroutine function taking the event.

        Returns:
            A callable that unsubscribes the handler (calling it twice is harmless).

        Raises:
            ConfigError: no event type matches ``event``; the message lists the valid names.
        """
        key = event if isinstance(event, str) else event.name
        if not _known(key):
            raise ConfigError(f"unknown event {key!r}; valid: {', '.join(['*', *event_names()])}")
        self._handlers.setdefault(key, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(key, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every matching handler.

        A handler that raises is logged and counted in ``failures``; the others still run and
        ``publish`` itself never raises because of a handler.
        """
        name = type(event).name
        keys = [name, *(f"{name[:i]}.*" for i, c in enumerate(name) if c == "."), "*"]
        # A snapshot: handlers may unsubscribe (or subscribe others) while the event is delivered.
        handlers = [h for key in keys for h in self._handlers.get(key, ())]
        for handler in handlers:
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.failures[name] += 1
                logger.exception("handler %s for event %s failed", _handler_name(handler), name)


def _known(key: str) -> bool:
    if key == "*":
        return True
    if key.endswith(".*"):
        prefix = key[:-1]
        return any(name.startswith(prefix) for name in _EVENT_TYPES)
    return key in _EVENT_TYPES


__all__ = [
    "ConfigCreated",
    "ConfigEvent",
    "ConfigRemoved",
    "ConfigSource",
    "ConfigUpdated",
    "Event",
    "EventBus",
    "Handler",
    "event_names",
]
