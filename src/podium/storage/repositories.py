"""Queries over the request log and performance samples, and the aggregates budgets and reports use.

Rows are normally written by the :class:`~podium.storage.writer.RecordWriter`; the ``add`` methods
write immediately, for code that is not on the request path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from sqlalchemy import Select, case, func, insert, select

from podium.storage.aio import AsyncConnection
from podium.storage.bulk import BulkInsert
from podium.storage.db import Database
from podium.storage.records import PerformanceSample, RequestRecord
from podium.storage.tables import performance_samples, request_log

_REQUEST_FIELDS = tuple(f for f in RequestRecord.__struct_fields__)
_SAMPLE_FIELDS = tuple(f for f in PerformanceSample.__struct_fields__)


class UsageRow(msgspec.Struct, frozen=True, kw_only=True):
    """Requests, tokens and cost of one tenant, provider and model on one UTC day."""

    day: date
    tenant: str
    provider: str | None
    model: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float


class PerformanceStats(msgspec.Struct, frozen=True, kw_only=True):
    """Aggregated performance of one provider/model (and task type) over the samples queried."""

    provider: str
    model: str
    task_type: str | None
    samples: int
    success_rate: float
    avg_latency_ms: float
    avg_quality: float | None
    avg_cost: float


def sample_row(sample: PerformanceSample) -> dict[str, Any]:
    """The ``performance_samples`` row of a sample."""
    return {name: getattr(sample, name) for name in _SAMPLE_FIELDS}


_REQUEST_INSERT = BulkInsert(
    request_log,
    ("request_id", "tenant", "user_id", "provider", "model", "task_type", "prompt_tokens",
     "completion_tokens", "total_tokens", "cost", "latency_ms", "status", "error_class", "started_at",
     "finished_at", "day", "metadata", "request_body", "response_body"),
)  # fmt: skip


def _request_values(r: RequestRecord) -> tuple[Any, ...]:
    """The values of a record's ``request_log`` row, in ``_REQUEST_INSERT``'s column order."""
    started = _utc(r.started_at)
    return (r.request_id, r.tenant, r.user_id, r.provider, r.model, r.task_type, r.prompt_tokens,
            r.completion_tokens, r.total_tokens, r.cost, r.latency_ms, r.status, r.error_class, started,
            r.finished_at, started.date(), r.metadata, r.request_body, r.response_body)  # fmt: skip


async def insert_requests(conn: AsyncConnection, records: Sequence[RequestRecord]) -> None:
    """Insert request records inside the caller's transaction (one ``executemany``)."""
    await _REQUEST_INSERT.run(conn, [_request_values(r) for r in records])


async def insert_samples(conn: AsyncConnection, samples: Sequence[PerformanceSample]) -> None:
    """Insert performance samples inside the caller's transaction (one ``executemany``)."""
    if samples:
        await conn.execute(insert(performance_samples), [sample_row(s) for s in samples])


class RequestLog:
    """The request log: what was served, for whom, by which provider, at what cost.

    Args:
        db: The database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, records: Iterable[RequestRecord]) -> None:
        """Write records now, in one transaction."""
        async with self.db.transaction() as conn:
            await insert_requests(conn, list(records))

    async def query(
        self,
        *,
        tenant: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RequestRecord]:
        """Logged requests, newest first, filtered by any of the arguments.

        Args:
            tenant: Only this tenant's requests.
            provider: Only requests answered by this provider.
            model: Only requests to this model.
            status: Only ``"ok"`` or only ``"error"`` requests.
            since: Only requests that started at or after this time.
            until: Only requests that started before this time.
            limit: At most this many.
            offset: Skip this many first (paging).
        """
        t = request_log.c
        query = select(request_log).order_by(t.started_at.desc(), t.id.desc()).limit(limit).offset(offset)
        for column, value in (
            (t.tenant, tenant),
            (t.provider, provider),
            (t.model, model),
            (t.status, status),
        ):
            if value is not None:
                query = query.where(column == value)
        query = _time_range(query, t.started_at, since, until)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [RequestRecord(**{name: row[name] for name in _REQUEST_FIELDS}) for row in rows]

    async def usage_by_day(
        self,
        *,
        tenant: str | None = None,
        provider: str | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[UsageRow]:
        """Requests, errors, tokens and cost per UTC day, tenant, provider and model.

        Args:
            tenant: Only this tenant.
            provider: Only this provider.
            since: First day included.
            until: Last day included.
        """
        t = request_log.c
        keys = (t.day, t.tenant, t.provider, t.model)
        query = select(
            *keys,
            func.count().label("requests"),
            func.coalesce(func.sum(case((t.status != "ok", 1), else_=0)), 0).label("errors"),
            func.coalesce(func.sum(t.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(t.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(t.total_tokens), 0).label("total_tokens"),
            func.coalesce(func.sum(t.cost), 0.0).label("cost"),
        ).group_by(*keys)
        if tenant is not None:
            query = query.where(t.tenant == tenant)
        if provider is not None:
            query = query.where(t.provider == provider)
        if since is not None:
            query = query.where(t.day >= since)
        if until is not None:
            query = query.where(t.day <= until)
        query = query.order_by(*keys)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        ints = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens")
        return [
            UsageRow(**{**row, **{k: int(row[k]) for k in ints}, "cost": float(row["cost"])}) for row in rows
        ]

    async def spend(self, *, tenant: str, since: datetime, until: datetime | None = None) -> float:
        """Total cost in US dollars of a tenant's requests that started in ``[since, until)``."""
        t = request_log.c
        query = _time_range(
            select(func.coalesce(func.sum(t.cost), 0.0)).where(t.tenant == tenant), t.started_at, since, until
        )
        async with self.db.engine.connect() as conn:
            return float((await conn.execute(query)).scalar_one())


class PerformanceSamples:
    """Performance samples: the raw observations learned routing and the analyzer work from.

    Args:
        db: The database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, samples: Iterable[PerformanceSample]) -> None:
        """Write samples now, in one transaction."""
        async with self.db.transaction() as conn:
            await insert_samples(conn, list(samples))

    async def query(
        self,
        *,
        tenant: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        task_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[PerformanceSample]:
        """Samples, newest first, filtered by any of the arguments."""
        query = (
            _sample_filter(select(performance_samples), tenant, provider, model, task_type, since, until)
            .order_by(performance_samples.c.recorded_at.desc(), performance_samples.c.id.desc())
            .limit(limit)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [PerformanceSample(**{name: row[name] for name in _SAMPLE_FIELDS}) for row in rows]

    async def summary(
        self,
        *,
        tenant: str | None = None,
        task_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[PerformanceStats]:
        """Success rate, mean latency, quality and cost per provider, model and task type."""
        s = performance_samples.c
        keys = (s.provider, s.model, s.task_type)
        query = (
            _sample_filter(
                select(
                    *keys,
                    func.count().label("samples"),
                    func.avg(case((s.success, 1.0), else_=0.0)).label("success_rate"),
                    func.avg(s.latency_ms).label("avg_latency_ms"),
                    func.avg(s.quality).label("avg_quality"),
                    func.avg(s.cost).label("avg_cost"),
                ),
                tenant,
                None,
                None,
                task_type,
                since,
                until,
            )
            .group_by(*keys)
            .order_by(*keys)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            PerformanceStats(
                provider=row["provider"],
                model=row["model"],
                task_type=row["task_type"],
                samples=int(row["samples"]),
                success_rate=float(row["success_rate"]),
                avg_latency_ms=float(row["avg_latency_ms"]),
                avg_quality=None if row["avg_quality"] is None else float(row["avg_quality"]),
                avg_cost=float(row["avg_cost"]),
            )
            for row in rows
        ]


def _sample_filter(
    query: Select[Any],
    tenant: str | None,
    provider: str | None,
    model: str | None,
    task_type: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    s = performance_samples.c
    for column, value in (
        (s.tenant, tenant),
        (s.provider, provider),
        (s.model, model),
        (s.task_type, task_type),
    ):
        if value is not None:
            query = query.where(column == value)
    return _time_range(query, s.recorded_at, since, until)


def _time_range(
    query: Select[Any], column: Any, since: datetime | None, until: datetime | None
) -> Select[Any]:
    if since is not None:
        query = query.where(column >= _utc(since))
    if until is not None:
        query = query.where(column < _utc(until))
    return query


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
