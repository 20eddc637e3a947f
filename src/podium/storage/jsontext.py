"""The JSON text podium stores (JSON columns) and hashes (the audit chain), from reusable encoders.

``json.dumps`` with any option builds a new encoder object and a new C encoder on every call; the
record writer serialises several values per request, and that set-up showed as a large part of its
cost. These functions build the C encoder once, with the same options, so they produce the very
text ``json.dumps`` would:

- :func:`strict` = ``json.dumps(value, separators=(",", ":"), allow_nan=False)``
- :func:`canonical` = ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
  allow_nan=False)``

Both raise ``TypeError`` for values JSON cannot represent and ``ValueError`` for NaN, infinity and
circular structures, as ``json.dumps`` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any

__all__ = ["Encoded", "canonical", "quote", "strict", "string"]


class Encoded(str):
    """JSON text encoded already: :func:`strict` returns it as it is (a JSON column stores it verbatim)."""


def _unsupported(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _build(*, sort_keys: bool, ensure_ascii: bool) -> Callable[[Any], str]:
    basestring = _encoder.encode_basestring_ascii if ensure_ascii else _encoder.encode_basestring
    c_make = getattr(_encoder, "c_make_encoder", None)
    if c_make is None:  # an interpreter without the C accelerator: the standard path, same text
        plain = json.JSONEncoder(
            sort_keys=sort_keys, ensure_ascii=ensure_ascii, allow_nan=False, separators=(",", ":")
        )
        return plain.encode
    # No shared circular-reference memo: one left behind by a failed call would poison the next.
    # Recursion depth still bounds a circular value; it is reported as the ValueError json gives.
    encode = c_make(None, _unsupported, basestring, None, ":", ",", sort_keys, False, False)

    def dumps(value: Any) -> str:
        if value is None:  # absent bodies: two of a request log row's three JSON columns
            return "null"
        if type(value) is Encoded:
            return str(value)
        if isinstance(value, str):
            return str(basestring(value))
        try:
            return "".join(encode(value, 0))
        except RecursionError as exc:
            raise ValueError("Circular reference detected (or nesting too deep for JSON)") from exc

    return dumps


strict: Callable[[Any], str] = _build(sort_keys=False, ensure_ascii=True)
canonical: Callable[[Any], str] = _build(sort_keys=True, ensure_ascii=False)


def string(value: str) -> str:
    """A JSON string literal as :func:`canonical` writes it (UTF-8 kept, control characters escaped)."""
    return quote(value)


# string() without its Python frame, for loops that quote many values (the C encoder returns a str).
quote: Callable[[str], str] = _encoder.encode_basestring
