"""``present``: the attributes of an object that are set (not None), as a dict, without a Python loop.

Request bodies are built from a fixed list of optional fields of which a request sets few. A Python
loop over the list (``getattr``, a comparison and a store per name) ran once or twice per served
request; here ``attrgetter``, ``zip``, ``map`` and ``compress`` do the same work in C.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from itertools import compress
from typing import Any


def present(names: tuple[str, ...]) -> Callable[[object], dict[str, Any]]:
    """A function giving ``{name: value}`` for each of ``names`` whose value on its argument is not None.

    Keys keep the order of ``names``.
    """
    if len(names) < 2:
        raise ValueError("present() takes two names or more")  # attrgetter of one name gives no tuple
    get = operator.attrgetter(*names)
    nones = (None,) * len(names)
    is_not = operator.is_not

    def pick(obj: object) -> dict[str, Any]:
        values = get(obj)
        return dict(compress(zip(names, values, strict=True), map(is_not, values, nones)))

    return pick
