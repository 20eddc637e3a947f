"""Priority tiers with weighted round-robin inside each tier.

Lower ``priority`` numbers are tried first. Among providers of equal priority, traffic is spread by
smooth weighted round-robin (the scheme nginx uses): with equal weights it is plain round-robin, with
weights 3:1 the first provider leads three requests in four, and the sequence is evenly interleaved
rather than bursty. The providers a request does not lead with follow as its failover order.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from itertools import groupby

from podium.providers.base import Provider


class PriorityStrategy:
    """Order by priority; rotate by weight among equals."""

    name = "priority"

    def __init__(self) -> None:
        # Smooth-WRR "current weight" per provider; weak so replaced providers drop out by themselves.
        self._current: weakref.WeakKeyDictionary[Provider, float] = weakref.WeakKeyDictionary()

    def order(self, candidates: Sequence[Provider]) -> list[Provider]:
        """Return candidates ordered by tier, each tier led by its weighted round-robin pick."""
        ordered = sorted(candidates, key=lambda p: p.config.priority)
        out: list[Provider] = []
        for _, tier_iter in groupby(ordered, key=lambda p: p.config.priority):
            tier = list(tier_iter)
            out.extend(self._rotate(tier) if len(tier) > 1 else tier)
        return out

    def _rotate(self, tier: list[Provider]) -> list[Provider]:
        total = 0.0
        best: Provider | None = None
        best_weight = float("-inf")
        for p in tier:
            w = p.config.weight
            total += w
            cur = self._current.get(p, 0.0) + w
            self._current[p] = cur
            if cur > best_weight:
                best, best_weight = p, cur
        assert best is not None
        self._current[best] = best_weight - total
        rest = sorted((p for p in tier if p is not best), key=lambda p: -self._current.get(p, 0.0))
        return [best, *rest]
