"""The reusable encoders write exactly what json.dumps writes, and refuse what it refuses."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.storage import audit, jsontext

_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_SCALARS = st.none() | st.booleans() | st.integers() | _FLOATS | st.text()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(_VALUES)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert jsontext.strict(value) == json.dumps(value, separators=(",", ":"), allow_nan=False)
    assert jsontext.canonical(value) == json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


@pytest.mark.parametrize("bad", [float("nan"), {"x": [float("inf")]}])
def test_nan_and_infinity_are_value_errors(bad: Any) -> None:
    with pytest.raises(ValueError):
        jsontext.strict(bad)
    with pytest.raises(ValueError):
        jsontext.canonical(bad)


def test_unsupported_types_are_type_errors_and_do_not_poison_the_next_call() -> None:
    with pytest.raises(TypeError, match="datetime"):
        jsontext.strict({"at": datetime.now(UTC)})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError):
        jsontext.strict(loop)
    assert jsontext.strict({"a": [1, 2]}) == '{"a":[1,2]}'


@given(
    details=st.dictionaries(st.text(max_size=8), _VALUES, max_size=5),
    actor=st.text(),
    tenant=st.none() | st.text(),
    target=st.none() | st.text(),
    seq=st.integers(min_value=1),
)
def test_event_hash_with_precomputed_details_is_the_canonical_hash(
    details: dict[str, Any], actor: str, tenant: str | None, target: str | None, seq: int
) -> None:
    fields = {
        "seq": seq,
        "ts": datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC),
        "actor": actor,
        "action": "request.completed",
        "tenant": tenant,
        "target": target,
        "details": details,
    }
    body = {**fields, "ts": "2026-11-23T12:00:00.123456+00:00"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    expected = hashlib.sha256(("0" * 64 + text).encode()).hexdigest()
    assert audit.event_hash("0" * 64, fields) == expected
    assert audit.event_hash("0" * 64, fields, jsontext.canonical(details)) == expected
