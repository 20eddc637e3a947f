"""OpenTelemetry spans when ``opentelemetry-api`` is installed; nothing at all when it is not.

podium only uses the API package: with no SDK configured, spans are the API's own no-ops; with an SDK
(and exporter) configured by the application, requests and upstream attempts appear in its traces.
"""

from __future__ import annotations

import importlib
import os
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
    if _trace is None or not _sdk_configured():
        # No SDK configured: the API's proxy would build a no-op span per call, for nothing; one shared
        # empty context manager costs no allocation (spans wrap every request and upstream attempt).
        return _NO_SPAN
    return _recorded(name, attributes)


_ENV_PROVIDER = "OTEL_PYTHON_TRACER_PROVIDER"
_ENV_AT_IMPORT = _ENV_PROVIDER in os.environ


def _sdk_configured() -> bool:
    """Whether the application has set a tracer provider (in code, or by the environment variable).

    ``get_tracer_provider()`` looks the environment variable up in ``os.environ`` on every call until
    a provider is set, about a microsecond of Python per span, twice per request. The API keeps the
    provider set in code in a module global, set once: while it is unset and the variable was not
    there at start, no SDK can be configured, and the lookup is skipped. (tests/test_tracing.py sets
    a provider after import, so a change of that global in a new API release fails there.)
    """
    if not _ENV_AT_IMPORT and getattr(_trace, "_TRACER_PROVIDER", None) is None:
        return False
    return not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider)


_NO_SPAN: AbstractContextManager[Any] = nullcontext()


@contextmanager
def _recorded(name: str, attributes: dict[str, str | int | float | bool] | None) -> Iterator[Any]:
    tracer = _trace.get_tracer("podium")
    with tracer.start_as_current_span(name, attributes=attributes or {}) as current:
        yield current
