from __future__ import annotations

import pytest
from pydantic import ValidationError

from podium.health.breaker import CircuitBreaker
from podium.health.config import BreakerSettings, HealthSettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(**kw: float) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    base = {"consecutive_failures": 3, "min_requests": 4, "failure_ratio": 0.5, "open_seconds": 10}
    return CircuitBreaker(BreakerSettings(**{**base, **kw}), clock), clock


def test_consecutive_faults_open_and_success_resets_the_run() -> None:
    b, _ = breaker(min_requests=100)
    b.fault(False, "x")
    b.fault(False, "x")
    b.success(False)
    b.fault(False, "x")
    b.fault(False, "x")
    assert b.state == "closed"
    b.fault(False, "x")
    assert b.state == "open"
    assert b.allow() == (False, False)


def test_open_turns_half_open_then_trials_close_it() -> None:
    b, clock = breaker(half_open_trials=2, close_after=2)
    for _ in range(3):
        b.fault(False, "x")
    assert b.retry_after() == 10
    clock.now += 10
    assert b.state == "half_open"
    assert b.allow() == (True, True)
    assert b.allow() == (True, True)
    assert b.allow() == (False, False)  # only two trials at a time
    b.success(True)
    assert b.state == "half_open"
    b.success(True)
    assert b.state == "closed"


def test_reopening_backs_off_up_to_the_maximum() -> None:
    b, clock = breaker(max_open_seconds=25)
    for _ in range(3):
        b.fault(False, "x")
    waits = []
    for _ in range(3):
        waits.append(b.retry_after())
        clock.now += b.retry_after()
        assert b.allow() == (True, True)
        b.fault(True, "still down")
    assert waits == [10, 20, 25]


def test_trip_honours_retry_after_and_never_shortens() -> None:
    b, clock = breaker()
    b.trip(30, "429")
    assert (b.state, b.retry_after()) == ("open", 30)
    b.trip(5, "429 again")
    assert b.retry_after() == 30
    clock.now += 30
    assert b.state == "half_open"


def test_remote_open_is_adopted_but_not_re_shared() -> None:
    b, clock = breaker()
    b.open_remote(clock.now + 8, "peer saw failures")
    assert (b.state, b.reason, b.own_open_until) == ("open", "peer saw failures", 0.0)
    assert b.open_until == clock.now + 8


def test_disabled_breaker_lets_everything_through() -> None:
    b, _ = breaker(enabled=False)
    for _ in range(10):
        b.fault(False, "x")
    assert b.allow() == (True, False)


def test_settings_validation() -> None:
    with pytest.raises(ValidationError, match="close_after"):
        BreakerSettings(half_open_trials=1, close_after=2)
    with pytest.raises(ValidationError, match="max_open_seconds"):
        BreakerSettings(open_seconds=60, max_open_seconds=30)
    with pytest.raises(ValidationError, match="extra"):
        HealthSettings.model_validate({"windw": 3})
    assert HealthSettings.model_validate({"breaker": {"openSeconds": 3}}).breaker.open_seconds == 3
