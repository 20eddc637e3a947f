"""Cost summaries and analytics from the ledger, and day analytics from the database request log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from podium.costs import Ledger
from podium.errors import RequestError
from podium.limits import RequestEstimate
from podium.limits.governance import Governance
from podium.state import MemoryStateStore, StateStore
from podium.storage import Database, RecordWriter, RequestLog, RequestRecord, migrate
from podium.types import Usage


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _spend(
    gov: Governance, tenant: str, provider: str, model: str, cost: float, tokens: int = 100
) -> None:
    ticket = await gov.guard.admit(tenant, None, provider, RequestEstimate(10))
    await gov.guard.settle(ticket, Usage(tokens, tokens, 2 * tokens), cost, model=model)


async def test_summary_totals_by_provider_and_model(store: StateStore) -> None:
    gov = Governance(store)
    await _spend(gov, "acme", "gpt", "gpt-4o", 1.25)
    await _spend(gov, "acme", "gpt", "gpt-4o-mini", 0.25)
    await _spend(gov, "acme", "claude", "claude-3-5-haiku", 0.5)
    await _spend(gov, "other", "gpt", "gpt-4o", 9.0)
    summary = await gov.get_cost_summary("acme")
    assert summary.total_cost == pytest.approx(2.0)
    assert summary.today == pytest.approx(2.0)
    assert summary.month == pytest.approx(2.0)
    assert summary.monthly_projection >= summary.month
    assert summary.by_provider == {"gpt": pytest.approx(1.5), "claude": pytest.approx(0.5)}
    assert summary.by_model["gpt/gpt-4o"] == pytest.approx(1.25)
    assert summary.requests == 3
    assert summary.total_tokens == 600


async def test_analytics_series_and_top_models_on_a_controlled_clock() -> None:
    clock = Clock(datetime(2025, 3, 10, 12, 30, tzinfo=UTC))
    store = MemoryStateStore("t:")
    ledger = Ledger(store, clock=clock)
    for days_ago, cost in ((0, 3), (1, 2), (6, 1), (8, 100)):
        at = clock.now - timedelta(days=days_ago)
        await store.commit(ledger.ops("acme", "gpt", "gpt-4o", Usage(10, 5, 15), cost * 10**9, at))
    await store.commit(
        ledger.ops("acme", "claude", "haiku", Usage(1, 1, 2), 10**9, clock.now - timedelta(hours=2))
    )
    week = await ledger.analytics("7d", "acme")
    assert week.series[0].period == "2025-03-04"
    assert [p.cost for p in week.series] == [1, 0, 0, 0, 0, 2, 4]
    assert week.total_cost == 7
    assert week.total_tokens == 15 * 3 + 2
    assert [(m.provider, m.model) for m in week.top_models] == [("gpt", "gpt-4o"), ("claude", "haiku")]
    day = await ledger.analytics("24h", "acme")
    assert len(day.series) == 24
    assert day.series[-1].period == "2025-03-10T12"
    assert day.total_cost == 4  # the 3 now, the 1 two hours ago; yesterday's 2 is 24 hours old
    summary = await ledger.summary("acme")
    # 107 dollars in the first 9.52 days of March (31 days): projected at that pace.
    assert summary.month == 107
    assert summary.monthly_projection == pytest.approx(107 * 31 / 9.52083, rel=1e-4)
    assert summary.total_cost == 107
    with pytest.raises(RequestError, match="window"):
        await ledger.analytics("7w", "acme")


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'podium.db'}"
    await migrate(url)
    db = Database(url)
    yield db
    await db.dispose()


async def test_day_analytics_read_the_request_log(database: Database) -> None:
    writer = RecordWriter(database)
    log = RequestLog(database)
    gov = Governance(writer=writer, request_log=log)
    # What the request path records (podium.recording) for two answered requests and a failed one.
    for n, cost in enumerate((0.75, 0.25)):
        await _spend(gov, "acme", "gpt", "gpt-4o", cost)
        writer.submit(
            RequestRecord(tenant="acme", request_id=f"r{n}", provider="gpt", model="gpt-4o", cost=cost)
        )
    writer.submit(RequestRecord(tenant="acme", request_id="r2", provider="gpt", status="error"))
    await writer.aclose()
    week = await gov.get_analytics("7d", "acme")
    assert week.source == "request_log"
    assert week.total_cost == pytest.approx(1.0)
    assert week.series[-1].requests == 3
    assert week.series[-1].errors == 1
    assert week.top_models[0].model == "gpt-4o"
    ledger_week = await Ledger(gov.store).analytics("7d", "acme")
    assert ledger_week.total_cost == pytest.approx(week.total_cost)
