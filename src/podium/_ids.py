"""Unique ids for requests and tickets without a system call each.

``uuid.uuid4()`` reads the kernel's random source on every call, which costs more than the rest of
an id's life on the request path. Ids here are a random per-process prefix (drawn again after a
fork) and a counter: unique across processes and replicas, 32 hex characters like a uuid4's hex.
They are identifiers, never secrets.
"""

from __future__ import annotations

import itertools
import os


class _Source:
    prefix = ""
    counter: itertools.count[int] = itertools.count(1)


def _reseed() -> None:
    _Source.prefix, _Source.counter = os.urandom(8).hex(), itertools.count(1)


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new id: 16 hex characters of this process's prefix, then 16 of its counter."""
    return f"{_Source.prefix}{next(_Source.counter):016x}"
