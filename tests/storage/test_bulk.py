"""``BulkInsert`` stores exactly what SQLAlchemy's ``insert()`` stores, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, text

from podium.storage import Database
from podium.storage.bulk import BulkInsert
from podium.storage.records import RequestRecord
from podium.storage.repositories import _REQUEST_INSERT, insert_requests
from podium.storage.tables import request_log

# Every stored column but the two that differ by construction, read back as the database's own text.
_COLUMNS = [c.name for c in request_log.columns if c.name not in ("id", "request_id")]
_AS_TEXT = text(
    f"SELECT {', '.join(f'CAST({c} AS TEXT)' for c in _COLUMNS)} FROM request_log "
    "WHERE request_id LIKE :prefix ORDER BY request_id"
)


def _records(prefix: str) -> list[RequestRecord]:
    plus_two = timezone(timedelta(hours=2))
    return [
        RequestRecord(
            tenant="acme",
            request_id=f"{prefix}-1",
            provider="gpt",
            model="gpt-4o",
            task_type="chat",
            user_id="ünï",
            prompt_tokens=12,
            completion_tokens=30,
            cost=0.000123456789,
            latency_ms=12.5,
            started_at=datetime(2026, 12, 4, 1, 59, 59, 999999, tzinfo=plus_two),  # 3 December in UTC
            finished_at=datetime(2026, 12, 4, 2, 0, 1, tzinfo=plus_two),
            metadata={"attempts": 1, "providers": ["gpt"], "note": "naïve “quotes”", "nested": {"x": None}},
            request_body={"messages": [{"role": "user", "content": "hi\n\u2028"}]},
        ),
        RequestRecord(
            tenant="acme",
            request_id=f"{prefix}-2",
            status="error",
            error_class="ProviderTimeout",
            started_at=datetime(2026, 1, 2, 3, 4, 5),  # naive: taken as UTC
        ),
    ]


def _core_row(r: RequestRecord) -> dict[str, Any]:
    """The row as an ``insert(request_log)`` caller would give it."""
    row = {name: getattr(r, name) for name in r.__struct_fields__}
    row.update(total_tokens=r.total_tokens, day=r.started_at.astimezone(UTC).date())
    return row


async def _stored(db: Database, prefix: str) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(_AS_TEXT, {"prefix": f"{prefix}-%"})]


async def test_request_rows_are_stored_as_sqlalchemys_insert_stores_them(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(insert(request_log), [_core_row(r) for r in _records("core")])
        await insert_requests(conn, _records("bulk"))
    core, bulk = await _stored(db, "core"), await _stored(db, "bulk")
    assert len(core) == 2
    assert bulk == core
    day = _COLUMNS.index("day")
    assert [str(row[day]) for row in bulk] == ["2026-12-03", "2026-01-02"]


async def test_a_row_of_the_wrong_shape_or_an_unknown_column_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="no column nope"):
        BulkInsert(request_log, ("tenant", "nope"))
    # prompt_tokens and others have Python-side defaults: an insert leaving them out binds them too.
    partial = BulkInsert(request_log, ("request_id", "tenant", "status", "started_at", "day", "metadata"))
    async with db.transaction() as conn:
        await partial.run(conn, [])  # nothing to write: no statement at all
        with pytest.raises(ValueError, match=r"binds .*prompt_tokens"):
            await partial.run(conn, [("r-1", "acme", "ok", datetime.now(UTC), date.today(), {})])
        with pytest.raises(ValueError, match="has 2 values, not 19"):
            await _REQUEST_INSERT.run(conn, [("r-1", "acme")])
    assert await _stored(db, "r") == []
