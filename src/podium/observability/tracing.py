"""OpenTelemetry spans when ``opentelemetry-api`` is installed; nothing at all when it is not.

podium only uses the API package: with no SDK configured, spans are the API's own no-ops; with an SDK
(and exporter) configured by the application, requests and upstream attempts appear in its traces.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

try:
    _trace: Any = importlib.import_module("opentelemetry.trace")
except ImportError:  # optional dependency
    _trace = None


def tracing_enabled() -> bool:
    """Whether ``opentelemetry-api`` is installed."""
    return _trace is not None


def span(
    name: str, attributes: dict[str, str | int | float | bool] | None = None
) -> AbstractContextManager[Any]:
    """A span around a block (``None`` without OpenTelemetry); an escaping exception is recorded on it.

    Args:
        name: Span name, e.g. ``podium.request`` or ``podium.upstream``.
        attributes: Span attributes (``podium.tenant``, ``podium.provider``, ...).
    """
    if _trace is None or isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        # No SDK configured: the API's proxy would build a no-op span per call, for nothing; one shared
        # empty context manager costs no allocation (spans wrap every request and upstream attempt).
        return _NO_SPAN
    return _recorded(name, attributes)


_NO_SPAN: AbstractContextManager[Any] = nullcontext()


@contextmanager
def _recorded(name: str, attributes: dict[str, str | int | float | bool] | None) -> Iterator[Any]:
    tracer = _trace.get_tracer("podium")
    with tracer.start_as_current_span(name, attributes=attributes or {}) as current:
        yield current
