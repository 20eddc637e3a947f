from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from podium.storage import (
    Database,
    PerformanceSample,
    PerformanceSamples,
    RequestLog,
    RequestRecord,
    UsageRow,
)

DAY1 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 23, 59, 59, 999999, tzinfo=UTC)


def _req(n: int, **kw: object) -> RequestRecord:
    fields: dict[str, object] = {
        "tenant": "acme",
        "request_id": f"req-{n}",
        "provider": "gpt",
        "model": "gpt-4o",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": 0.25,
        "latency_ms": 120.5,
        "started_at": DAY1 + timedelta(minutes=n),
    }
    fields.update(kw)
    return RequestRecord(**fields)  # type: ignore[arg-type]


async def test_request_records_round_trip_with_every_field(db: Database) -> None:
    record = RequestRecord(
        tenant="acme",
        request_id="req-1",
        provider="claude",
        model="claude-3-5-haiku",
        task_type="code",
        user_id="alice",
        prompt_tokens=100,
        completion_tokens=40,
        cost=0.0123,
        latency_ms=812.25,
        status="error",
        error_class="ProviderTimeout",
        started_at=datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        finished_at=datetime(2025, 3, 1, 12, 0, 1, tzinfo=UTC),
        metadata={"attempts": [{"provider": "gpt", "error": "ProviderUnavailable"}], "cache": False},
        request_body={"messages": [{"role": "user", "content": "héllo"}]},
        response_body=None,
    )
    log = RequestLog(db)
    await log.add([record])
    assert await log.query(tenant="acme") == [record]


async def test_query_filters_by_tenant_provider_status_and_time_newest_first(db: Database) -> None:
    log = RequestLog(db)
    await log.add(
        [
            _req(1),
            _req(2, provider="claude"),
            _req(3, status="error", error_class="ProviderTimeout"),
            _req(4, tenant="globex"),
            _req(5),
        ]
    )
    assert [r.request_id for r in await log.query(tenant="acme")] == ["req-5", "req-3", "req-2", "req-1"]
    assert [r.request_id for r in await log.query(tenant="acme", provider="claude")] == ["req-2"]
    assert [r.request_id for r in await log.query(tenant="acme", status="error")] == ["req-3"]
    assert [r.request_id for r in await log.query(tenant="globex")] == ["req-4"]
    window = await log.query(since=DAY1 + timedelta(minutes=2), until=DAY1 + timedelta(minutes=4))
    assert [r.request_id for r in window] == ["req-3", "req-2"]
    assert [r.request_id for r in await log.query(tenant="acme", limit=2, offset=1)] == ["req-3", "req-2"]
    # Naive datetimes are taken as UTC.
    naive = await log.query(since=(DAY1 + timedelta(minutes=5)).replace(tzinfo=None))
    assert [r.request_id for r in naive] == ["req-5"]
    # Timestamps come back timezone-aware on every database.
    assert all(r.started_at.tzinfo is not None for r in await log.query())


async def test_usage_by_day_sums_tokens_and_cost_per_tenant_provider_model_and_day(db: Database) -> None:
    log = RequestLog(db)
    await log.add(
        [
            _req(1),
            _req(2),
            _req(3, status="error", prompt_tokens=7, completion_tokens=0, cost=0.0),
            _req(4, provider="claude", model="haiku", cost=0.5),
            _req(5, started_at=DAY2),
            _req(6, tenant="globex"),
        ]
    )
    rows = await log.usage_by_day(tenant="acme")
    assert rows == [
        UsageRow(
            day=date(2025, 3, 1),
            tenant="acme",
            provider="claude",
            model="haiku",
            requests=1,
            errors=0,
            prompt_tokens=10,
            completion_tokens=5,
            total_tokens=15,
            cost=0.5,
        ),
        UsageRow(
            day=date(2025, 3, 1),
            tenant="acme",
            provider="gpt",
            model="gpt-4o",
            requests=3,
            errors=1,
            prompt_tokens=27,
            completion_tokens=10,
            total_tokens=37,
            cost=0.5,
        ),
        UsageRow(
            day=date(2025, 3, 2),
            tenant="acme",
            provider="gpt",
            model="gpt-4o",
            requests=1,
            errors=0,
            prompt_tokens=10,
            completion_tokens=5,
            total_tokens=15,
            cost=0.25,
        ),
    ]
    assert [r.day for r in await log.usage_by_day(since=date(2025, 3, 2))] == [date(2025, 3, 2)]
    assert {r.tenant for r in await log.usage_by_day(until=date(2025, 3, 1))} == {"acme", "globex"}
    assert [r.provider for r in await log.usage_by_day(tenant="acme", provider="claude")] == ["claude"]


async def test_spend_totals_a_tenants_cost_over_a_period(db: Database) -> None:
    log = RequestLog(db)
    await log.add([_req(1), _req(2, cost=1.5), _req(3, started_at=DAY2), _req(4, tenant="globex", cost=9.0)])
    assert await log.spend(tenant="acme", since=DAY1) == 2.0
    assert await log.spend(tenant="acme", since=DAY1, until=DAY1 + timedelta(minutes=2)) == 0.25
    assert await log.spend(tenant="nobody", since=DAY1) == 0.0


async def test_performance_samples_query_and_summary(db: Database) -> None:
    samples = PerformanceSamples(db)
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    await samples.add(
        [
            PerformanceSample(
                tenant="acme",
                provider="gpt",
                model="gpt-4o",
                latency_ms=100,
                success=True,
                task_type="code",
                quality=0.9,
                cost=0.02,
                total_tokens=50,
                recorded_at=t0,
            ),
            PerformanceSample(
                tenant="acme",
                provider="gpt",
                model="gpt-4o",
                latency_ms=300,
                success=False,
                task_type="code",
                quality=None,
                cost=0.0,
                recorded_at=t0 + timedelta(seconds=1),
            ),
            PerformanceSample(
                tenant="acme",
                provider="claude",
                model="haiku",
                latency_ms=50,
                success=True,
                task_type="code",
                quality=0.7,
                cost=0.01,
                recorded_at=t0 + timedelta(seconds=2),
            ),
            PerformanceSample(
                tenant="globex",
                provider="gpt",
                model="gpt-4o",
                latency_ms=999,
                success=True,
                recorded_at=t0 + timedelta(seconds=3),
            ),
        ]
    )
    newest = await samples.query(tenant="acme", provider="gpt")
    assert [s.latency_ms for s in newest] == [300, 100]
    assert newest[1].quality == 0.9 and newest[1].recorded_at == t0
    assert len(await samples.query(since=t0 + timedelta(seconds=2))) == 2

    summary = {(s.provider, s.model): s for s in await samples.summary(tenant="acme", task_type="code")}
    gpt = summary[("gpt", "gpt-4o")]
    assert (gpt.samples, gpt.success_rate, gpt.avg_latency_ms, gpt.avg_quality) == (2, 0.5, 200.0, 0.9)
    assert abs(gpt.avg_cost - 0.01) < 1e-12
    assert summary[("claude", "haiku")].success_rate == 1.0
