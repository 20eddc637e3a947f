"""Routing strategies: one module each, registered by name below."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from podium._registry import Registry
from podium.providers.base import Provider


class Strategy(Protocol):
    """Orders candidate providers for one request (first is tried first)."""

    def order(self, candidates: Sequence[Provider]) -> list[Provider]:
        """Return the candidates in the order to try them."""
        ...


STRATEGIES: Registry[Strategy] = Registry(
    "routing strategy",
    {
        "priority": "podium.routing.strategies.priority:PriorityStrategy",
    },
)
