"""A sliding window of attempt outcomes: counts, errors by class, and a latency histogram.

Time is cut into equal buckets; a bucket older than the window is reused for the present, so recording
is O(1) and memory is fixed. Latencies go into geometric bins (each 25 % wider than the previous), which
keeps percentiles within a few percent and, unlike raw samples, lets windows of several replicas be
added together.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_GROWTH = 1.25
_LOG_GROWTH = math.log(_GROWTH)
_MAX_BIN = 64  # 1.25**64 ms is about 42 minutes: anything slower shares the last bin


def latency_bin(latency_ms: float) -> int:
    """The histogram bin of a latency: bin ``i`` holds ``[1.25**(i-1), 1.25**i)`` ms (bin 0: under 1 ms)."""
    if latency_ms < 1.0:
        return 0
    return min(_MAX_BIN, int(math.log(latency_ms) / _LOG_GROWTH) + 1)


def _bin_bounds(i: int) -> tuple[float, float]:
    if i == 0:
        return 0.0, 1.0
    return _GROWTH ** (i - 1), _GROWTH**i


@dataclass(slots=True)
class WindowTotals:
    """What a window (or several replicas' windows added together) holds.

    Attributes:
        attempts: Every recorded attempt.
        successes: Attempts that returned an answer.
        faults: Failures that count against the provider's health (timeouts, 5xx, resets, ...).
        errors: Failures by error class, faults and the caller's own errors alike.
        latency: Histogram of successful attempts' latency (bin -> count).
        latency_sum_ms: Sum of successful attempts' latency.
        last_success: Wall-clock time of the newest success in the window (0 when none).
    """

    attempts: int = 0
    successes: int = 0
    faults: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency: Counter[int] = field(default_factory=Counter)
    latency_sum_ms: float = 0.0
    last_success: float = 0.0

    def add(self, other: WindowTotals) -> None:
        """Add another window's figures to these."""
        self.attempts += other.attempts
        self.successes += other.successes
        self.faults += other.faults
        self.errors.update(other.errors)
        self.latency.update(other.latency)
        self.latency_sum_ms += other.latency_sum_ms
        self.last_success = max(self.last_success, other.last_success)

    @property
    def error_rate(self) -> float:
        """Faults among attempts that either succeeded or faulted (the caller's own errors excluded)."""
        judged = self.successes + self.faults
        return self.faults / judged if judged else 0.0

    @property
    def avg_latency_ms(self) -> float:
        """Mean latency of successful attempts (0 when none)."""
        return self.latency_sum_ms / self.successes if self.successes else 0.0

    def percentile(self, q: float) -> float:
        """Latency below which a fraction ``q`` of successes fell, interpolated inside its bin (0: none)."""
        total = sum(self.latency.values())
        if not total:
            return 0.0
        rank = q * total
        seen = 0
        for i in sorted(self.latency):
            n = self.latency[i]
            if seen + n >= rank:
                lo, hi = _bin_bounds(i)
                return lo + (hi - lo) * ((rank - seen) / n)
            seen += n
        return _bin_bounds(max(self.latency))[1]

    def to_wire(self) -> dict[str, Any]:
        """A plain-data form for the state store."""
        return {
            "a": self.attempts,
            "s": self.successes,
            "f": self.faults,
            "e": dict(self.errors),
            "l": {str(k): v for k, v in self.latency.items()},
            "ls": self.latency_sum_ms,
            "lt": self.last_success,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WindowTotals:
        """Rebuild from ``to_wire`` output."""
        return cls(
            attempts=int(data["a"]),
            successes=int(data["s"]),
            faults=int(data["f"]),
            errors=Counter({str(k): int(v) for k, v in data["e"].items()}),
            latency=Counter({int(k): int(v) for k, v in data["l"].items()}),
            latency_sum_ms=float(data["ls"]),
            last_success=float(data["lt"]),
        )


@dataclass(slots=True)
class _Bucket:
    slot: int = -1
    totals: WindowTotals = field(default_factory=WindowTotals)


class RollingWindow:
    """Attempt outcomes over the last ``window`` seconds, in ``buckets`` slices.

    Args:
        window: Seconds covered.
        buckets: Number of slices (the window slides one slice at a time).
    """

    def __init__(self, window: float, buckets: int = 30) -> None:
        self.window = window
        self.width = window / buckets
        self._buckets = [_Bucket() for _ in range(buckets)]

    def _bucket(self, now: float) -> WindowTotals:
        slot = int(now // self.width)
        b = self._buckets[slot % len(self._buckets)]
        if b.slot != slot:
            b.slot, b.totals = slot, WindowTotals()
        return b.totals

    def success(self, now: float, latency_ms: float) -> None:
        """Record a successful attempt."""
        t = self._bucket(now)
        t.attempts += 1
        t.successes += 1
        t.latency[latency_bin(latency_ms)] += 1
        t.latency_sum_ms += latency_ms
        if now > t.last_success:  # not max(): see limits/bucket.py
            t.last_success = now

    def failure(self, now: float, error_class: str, *, fault: bool) -> None:
        """Record a failed attempt (``fault``: it counts against the provider's health)."""
        t = self._bucket(now)
        t.attempts += 1
        t.errors[error_class] += 1
        if fault:
            t.faults += 1

    def totals(self, now: float) -> WindowTotals:
        """The sum of the buckets still inside the window."""
        current = int(now // self.width)
        oldest = current - len(self._buckets) + 1
        out = WindowTotals()
        for b in self._buckets:
            if oldest <= b.slot <= current:
                out.add(b.totals)
        return out

    def clear(self) -> None:
        """Forget everything."""
        for b in self._buckets:
            b.slot, b.totals = -1, WindowTotals()


class RollingCounts:
    """Successes and faults over the last ``window`` seconds, in ``buckets`` slices.

    What a circuit breaker judges by, sliced as :class:`RollingWindow` is, without the latency histogram
    and error classes a breaker never reads: every answered attempt records into two breakers (the
    provider's and the model's), and the histogram was most of the cost of recording.

    Args:
        window: Seconds covered.
        buckets: Number of slices (the window slides one slice at a time).
    """

    def __init__(self, window: float, buckets: int = 20) -> None:
        self.width = window / buckets
        self._slots = [-1] * buckets
        self._successes = [0] * buckets
        self._faults = [0] * buckets

    def _index(self, now: float) -> int:
        slot = int(now // self.width)
        i = slot % len(self._slots)
        if self._slots[i] != slot:
            self._slots[i], self._successes[i], self._faults[i] = slot, 0, 0
        return i

    def success(self, now: float) -> None:
        """Count a successful attempt."""
        self._successes[self._index(now)] += 1

    def fault(self, now: float) -> None:
        """Count an attempt that failed through the upstream's fault."""
        self._faults[self._index(now)] += 1

    def totals(self, now: float) -> tuple[int, int]:
        """``(successes, faults)`` of the slices still inside the window."""
        current = int(now // self.width)
        oldest = current - len(self._slots) + 1
        successes = faults = 0
        for i, slot in enumerate(self._slots):
            if oldest <= slot <= current:
                successes += self._successes[i]
                faults += self._faults[i]
        return successes, faults

    def clear(self) -> None:
        """Forget everything."""
        n = len(self._slots)
        self._slots, self._successes, self._faults = [-1] * n, [0] * n, [0] * n
