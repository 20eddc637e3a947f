"""``UtcDateTime`` on SQLite writes the text SQLAlchemy's own processors would write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from podium.storage.tables import UtcDateTime

_DIALECT = sqlite.dialect()
_OURS = UtcDateTime().dialect_impl(_DIALECT).bind_processor(_DIALECT)
_SQLALCHEMY_DATETIME = sqlite.DATETIME().bind_processor(_DIALECT)  # type: ignore[no-untyped-call]


def _sqlalchemys_text(value: datetime) -> str:
    """What process_bind_param followed by SQLite's DATETIME processor writes."""
    as_utc = UtcDateTime().process_bind_param(value, _DIALECT)
    assert _SQLALCHEMY_DATETIME is not None
    text: str = _SQLALCHEMY_DATETIME(as_utc)
    return text


_MINUTES = st.integers(min_value=-23 * 60, max_value=23 * 60)
_ZONES: st.SearchStrategy[timezone | None] = st.one_of(
    st.none(), st.just(UTC), _MINUTES.map(lambda m: timezone(timedelta(minutes=m)))
)


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_ZONES))  # type: ignore[arg-type]
def test_the_sqlite_text_is_sqlalchemys_for_naive_and_aware_values(value: datetime) -> None:
    assert _OURS is not None
    assert _OURS(value) == _sqlalchemys_text(value)


def test_examples_and_none() -> None:
    assert _OURS is not None
    assert _OURS(None) is None
    plus_two = timezone(timedelta(hours=2))
    assert _OURS(datetime(2026, 12, 3, 9, 0, tzinfo=plus_two)) == "2026-12-03 07:00:00.000000"
    assert _OURS(datetime(2026, 12, 3, 9, 0, 0, 5, tzinfo=UTC)) == "2026-12-03 09:00:00.000005"
