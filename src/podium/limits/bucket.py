"""Token-bucket arithmetic, pure: no clock, no storage, so it is tested exactly.

A bucket holds at most ``capacity`` tokens and refills continuously at ``rate`` tokens per second. A
limit of N per window is a bucket of capacity N refilling at N/window: a burst of N is allowed, then
one more every window/N seconds. The same arithmetic runs inside the Redis Lua scripts
(``podium/state/scripts``); the state store tests hold both implementations to the same behaviour.
"""

from __future__ import annotations

import math

import msgspec

_TINY = math.ulp(0.0)  # the smallest positive float


class Taken(msgspec.Struct, frozen=True):
    """The outcome of :func:`take`.

    Attributes:
        ok: The tokens were available.
        tokens: The bucket's level afterwards (unchanged when refused).
        retry_after: Seconds until the request would fit (0 when ok).
    """

    ok: bool
    tokens: float
    retry_after: float


def level(tokens: float, stamp: float, capacity: float, rate: float, now: float) -> float:
    """The bucket's tokens at ``now``, given it held ``tokens`` at ``stamp``.

    A clock that went backwards adds nothing (never removes tokens either).
    """
    # Conditional expressions, not min()/max(): on Python 3.11 those parse keyword arguments on every
    # call, about six times a comparison's cost, and these run several times per governed request.
    elapsed = now - stamp
    filled = tokens + elapsed * rate if elapsed > 0.0 else tokens
    return filled if filled < capacity else capacity


def take(tokens: float, capacity: float, rate: float, amount: float) -> Taken:
    """Take ``amount`` (clamped to ``capacity``) from a bucket holding ``tokens`` right now."""
    need = amount if amount <= capacity else capacity
    if tokens >= need:
        return Taken(True, tokens - need, 0.0)
    # A refusal always names a positive wait: a deficit of a few subnormal tokens would divide to 0.
    return Taken(False, tokens, max((need - tokens) / rate, _TINY))


def adjust(tokens: float, capacity: float, amount: float) -> float:
    """Give back ``amount`` tokens (negative: take more, below zero if need be), never above capacity."""
    given = tokens + amount
    return given if given < capacity else capacity


def reset_after(tokens: float, capacity: float, rate: float) -> float:
    """Seconds until a bucket holding ``tokens`` is full again."""
    wait = (capacity - tokens) / rate
    return wait if wait > 0.0 else 0.0
