"""A circuit breaker: stop sending requests to an upstream that is failing, and probe its recovery.

``closed`` lets everything through and watches the fault ratio and the run of consecutive faults;
``open`` lets nothing through until its time is up; ``half_open`` lets a few trial requests through, and
their outcome closes the circuit again or reopens it for longer. Only faults of the provider count:
the router decides what is one (see ``podium.health.registry.is_fault``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from podium.health.config import BreakerSettings
from podium.health.window import RollingCounts

CircuitState = Literal["closed", "open", "half_open"]

#: Gauge values of the states (Prometheus ``podium_circuit_state``).
STATE_VALUES: dict[CircuitState, int] = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """One circuit (of a provider, or of one model at a provider).

    Args:
        settings: Thresholds and timings.
        clock: Wall-clock seconds (``time.time``); wall time so replicas can share open-until times.
    """

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._state: CircuitState = "closed"
        self._open_until = 0.0
        self._window = RollingCounts(settings.window, 20)
        self._consecutive = 0
        self._reopenings = 0
        self._trials = 0
        self._trial_successes = 0
        self._adopted = False
        self.reason: str | None = None
        self.opened_at: float | None = None

    @property
    def state(self) -> CircuitState:
        """The current state (an open circuit whose time is up reads as half-open)."""
        if self._state == "open" and self._clock() >= self._open_until:
            self._state = "half_open"
            self._trials = self._trial_successes = 0
        return self._state

    @property
    def open_until(self) -> float:
        """Wall-clock time an open circuit turns half-open (0 when it is not open)."""
        return self._open_until if self.state == "open" else 0.0

    @property
    def own_open_until(self) -> float:
        """Like ``open_until``, but 0 when the circuit was opened by another replica (not re-shared)."""
        return 0.0 if self._adopted else self.open_until

    def retry_after(self) -> float:
        """Seconds until this circuit lets a request through again (0 when it would now)."""
        state = self.state
        if state == "open":
            return max(0.0, self._open_until - self._clock())
        return 0.0

    def allow(self) -> tuple[bool, bool]:
        """Ask to send one request: returns ``(allowed, trial)``.

        A half-open circuit admits up to ``half_open_trials`` requests at a time; each such ``trial``
        must be ended by ``success``, ``fault`` or ``release`` with ``trial=True``.
        """
        state = self.state
        if state == "closed" or not self.settings.enabled:
            return True, False
        if state == "half_open" and self._trials < self.settings.half_open_trials:
            self._trials += 1
            return True, True
        return False, False

    def release(self, trial: bool) -> None:
        """End an attempt whose outcome says nothing about the upstream (caller error, cancellation)."""
        if trial and self._state == "half_open":
            self._trials = max(0, self._trials - 1)

    def success(self, trial: bool) -> None:
        """Record a successful attempt."""
        now = self._clock()
        state = self.state
        if state == "open":
            return  # an attempt begun before the circuit opened proves nothing about now
        self._window.success(now)
        self._consecutive = 0
        if state == "half_open":
            if not trial:
                return
            self._trial_successes += 1
            if self._trial_successes >= self.settings.close_after:
                self._close()

    def fault(self, trial: bool, reason: str) -> None:
        """Record a fault; opens the circuit when a threshold is crossed (a half-open trial reopens it)."""
        now = self._clock()
        state = self.state
        if state == "open":
            return
        if state == "half_open":
            if trial:
                self._open(self._backoff(), f"trial request failed: {reason}")
            return
        self._window.fault(now)
        self._consecutive += 1
        s = self.settings
        if self._consecutive >= s.consecutive_failures:
            self._open(self._backoff(), f"{self._consecutive} consecutive failures, last: {reason}")
            return
        successes, faults = self._window.totals(now)
        judged = successes + faults
        if judged >= s.min_requests and faults / judged >= s.failure_ratio:
            self._open(
                self._backoff(),
                f"{faults} of the last {judged} requests failed, last: {reason}",
            )

    def trip(self, seconds: float, reason: str) -> None:
        """Open for ``seconds`` (e.g. a 429's Retry-After), or longer when already open for longer."""
        seconds = min(seconds, self.settings.max_retry_after)
        if seconds <= 0 or not self.settings.enabled:
            return
        if self.state == "open" and self._open_until >= self._clock() + seconds:
            return
        self._open(seconds, reason, count=False)

    def trip_to_half_open(self) -> None:
        """End an open period early (a probe just succeeded): trial requests may go through now."""
        if self.state == "open":
            self._open_until = self._clock()

    def open_remote(self, until: float, reason: str | None) -> None:
        """Adopt another replica's open circuit (kept until ``until``, wall clock)."""
        now = self._clock()
        if until <= now or not self.settings.enabled:
            return
        if self.state == "open" and self._open_until >= until:
            return
        self._state, self._open_until, self._adopted = "open", until, True
        self._trials = self._trial_successes = 0
        self.opened_at = self.opened_at if self.opened_at is not None else now
        self.reason = reason or "opened by another replica"

    def _backoff(self) -> float:
        s = self.settings
        return min(s.max_open_seconds, s.open_seconds * (2.0**self._reopenings))

    def _open(self, seconds: float, reason: str, count: bool = True) -> None:
        now = self._clock()
        if count:
            self._reopenings += 1
        self._state, self._open_until, self._adopted = "open", now + seconds, False
        self._trials = self._trial_successes = 0
        self.reason, self.opened_at = reason, now

    def _close(self) -> None:
        self._state, self._open_until = "closed", 0.0
        self._consecutive = self._reopenings = 0
        self._trials = self._trial_successes = 0
        self._window.clear()
        self.reason = self.opened_at = None
