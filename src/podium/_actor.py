"""Who is acting: the name recorded in the audit trail for changes and requests.

A context variable, so the gateway can set it per request (the authenticated principal) and the
library's own calls default to ``"library"`` without threading an argument through every method.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

current_actor: ContextVar[str] = ContextVar("podium_actor", default="library")


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record ``actor`` as the author of what happens inside the ``with`` block (in this task)."""
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)
