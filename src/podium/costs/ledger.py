"""The cost ledger: spend and tokens per tenant, provider, model and period, kept in the state store.

Each settled request adds to four integer hashes of its tenant (all time, its UTC month, day and hour)
in the same atomic step that settles its limits and budgets, so reports are exact and cost no
database I/O. Fields are ``<metric>|<provider>|<model>`` with metrics ``c`` (cost, nano-dollars),
``p``/``o`` (prompt/completion tokens) and ``n`` (requests). The request log in the database (each
settled request is also submitted to the ``RecordWriter``) is the durable copy; analytics over days
read it when it is given.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import msgspec

from podium.errors import RequestError
from podium.state.base import HashIncr, StateStore, to_usd
from podium.storage.repositories import RequestLog
from podium.types import Usage

_DAY = 86_400.0
_TTL = {"all": 10 * 365 * _DAY, "m": 800 * _DAY, "d": 400 * _DAY, "h": 8 * _DAY}
_WINDOW = re.compile(r"^(\d+)([hd])$")
_MAX_WINDOW = {"h": 168, "d": 366}


def _keys(tenant: str, at: datetime) -> dict[str, str]:
    at = at.astimezone(UTC)
    return _hour_keys(tenant, at.year, at.month, at.day, at.hour)


@functools.lru_cache(maxsize=4096)
def _hour_keys(tenant: str, year: int, month: int, day: int, hour: int) -> dict[str, str]:
    # Every request settles into the same four keys for an hour: format them once (callers only read).
    return {
        "all": f"lg:{tenant}:all",
        "m": f"lg:{tenant}:m:{year:04d}-{month:02d}",
        "d": f"lg:{tenant}:d:{year:04d}-{month:02d}-{day:02d}",
        "h": f"lg:{tenant}:h:{year:04d}-{month:02d}-{day:02d}T{hour:02d}",
    }


class ModelUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Spend and tokens of one provider/model."""

    provider: str
    model: str
    cost: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    requests: int


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """One day (``2025-01-31``) or hour (``2025-01-31T14``) of a series."""

    period: str
    cost: float
    tokens: int
    requests: int
    errors: int | None = None


class CostSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a tenant spent, in US dollars.

    Attributes:
        total_cost: All recorded spend.
        today: Spend of the current UTC day.
        month: Spend of the current UTC month.
        monthly_projection: This month's spend extrapolated to the whole month at its pace so far.
        by_provider: All-time spend per provider.
        by_model: All-time spend per ``provider/model``.
    """

    tenant: str
    total_cost: float
    total_tokens: int
    requests: int
    today: float
    month: float
    monthly_projection: float
    by_provider: dict[str, float]
    by_model: dict[str, float]
    currency: str = "USD"


class Analytics(msgspec.Struct, frozen=True, kw_only=True):
    """Spend and usage over a window (``24h``, ``7d``, ``30d``), with a series per hour or day."""

    tenant: str
    window: str
    start: datetime
    end: datetime
    total_cost: float
    total_tokens: int
    total_requests: int
    top_models: list[ModelUsage]
    series: list[Point]
    source: str


def _models(fields: Iterable[dict[str, int]]) -> list[ModelUsage]:
    acc: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in fields:
        for name, value in row.items():
            metric, provider, model = name.split("|", 2)
            acc[(provider, model)][metric] += value
    out = [
        ModelUsage(
            provider=p,
            model=m,
            cost=to_usd(v["c"]),
            prompt_tokens=v["p"],
            completion_tokens=v["o"],
            total_tokens=v["p"] + v["o"],
            requests=v["n"],
        )
        for (p, m), v in acc.items()
    ]
    return sorted(out, key=lambda u: (-u.cost, -u.total_tokens, u.provider, u.model))


def parse_window(window: str) -> tuple[str, int]:
    """``"7d"`` -> ``("d", 7)``.

    Raises:
        RequestError: not ``<n>h`` or ``<n>d`` within 168 hours / 366 days.
    """
    found = _WINDOW.match(window.strip().lower())
    if not found or not 0 < int(found[1]) <= _MAX_WINDOW[found[2]]:
        raise RequestError(
            f"window {window!r} is invalid; use e.g. 24h, 7d or 30d (at most 168h or 366d)", param="window"
        )
    return found[2], int(found[1])


class Ledger:
    """Adds settled costs to the state store and reports on them.

    Args:
        store: The state store (shared by replicas when it is Redis).
        request_log: The database request log, for day-by-day analytics from durable records.
        clock: Current time (timezone-aware); injectable for tests.
    """

    def __init__(
        self, store: StateStore, request_log: RequestLog | None = None, clock: object = None
    ) -> None:
        self.store = store
        self.request_log = request_log
        self._clock = clock or functools.partial(datetime.now, UTC)  # C-level: no Python frame per call

    def _now(self) -> datetime:
        now: datetime = self._clock()  # type: ignore[operator]
        return now

    def ops(
        self, tenant: str, provider: str, model: str, usage: Usage, cost_nanos: int, at: datetime
    ) -> list[HashIncr]:
        """The increments one settled request adds (submitted with the rest of its settlement)."""
        suffix = f"|{provider}|{model}"
        fields = (
            ("c" + suffix, cost_nanos),
            ("p" + suffix, usage.prompt_tokens),
            ("o" + suffix, usage.completion_tokens),
            ("n" + suffix, 1),
        )
        return [HashIncr(key, fields, _TTL[span]) for span, key in _keys(tenant, at).items()]

    async def summary(self, tenant: str) -> CostSummary:
        """Total, today, this month, the month's projection, and spend by provider and model."""
        now = self._now()
        keys = _keys(tenant, now)
        every, month, today = await self.store.hashes([keys["all"], keys["m"], keys["d"]])
        models = _models([every])
        by_provider: dict[str, float] = defaultdict(float)
        for usage in models:
            by_provider[usage.provider] += usage.cost
        month_nanos = sum(v for k, v in month.items() if k.startswith("c|"))
        start = datetime(now.year, now.month, 1, tzinfo=UTC)
        end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
        elapsed = max((now - start).total_seconds(), _DAY)  # a few early hours would wildly extrapolate
        return CostSummary(
            tenant=tenant,
            total_cost=sum(u.cost for u in models),
            total_tokens=sum(u.total_tokens for u in models),
            requests=sum(u.requests for u in models),
            today=to_usd(sum(v for k, v in today.items() if k.startswith("c|"))),
            month=to_usd(month_nanos),
            monthly_projection=to_usd(round(month_nanos * (end - start).total_seconds() / elapsed)),
            by_provider=dict(by_provider),
            by_model={f"{u.provider}/{u.model}": u.cost for u in models},
        )

    async def analytics(self, window: str, tenant: str, top: int = 5) -> Analytics:
        """Spend, tokens, the top models, and a per-day (``Nd``) or per-hour (``Nh``) series.

        Day windows read the database request log when the ledger has one (it also counts errors).

        Raises:
            RequestError: the window is invalid.
        """
        unit, count = parse_window(window)
        now = self._now().astimezone(UTC)
        if unit == "d":
            first = now.date() - timedelta(days=count - 1)
            labels = [(first + timedelta(days=i)).isoformat() for i in range(count)]
            start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
            if self.request_log is not None:
                return await self._from_log(window, tenant, first, now.date(), labels, start, now, top)
        else:
            hour = now.replace(minute=0, second=0, microsecond=0)
            starts = [hour - timedelta(hours=count - 1 - i) for i in range(count)]
            labels = [f"{h:%Y-%m-%dT%H}" for h in starts]
            start = starts[0]
        rows = await self.store.hashes([f"lg:{tenant}:{unit}:{label}" for label in labels])
        series = []
        for label, row in zip(labels, rows, strict=True):
            used = _models([row])
            series.append(
                Point(
                    period=label,
                    cost=to_usd(sum(v for k, v in row.items() if k.startswith("c|"))),
                    tokens=sum(u.total_tokens for u in used),
                    requests=sum(u.requests for u in used),
                )
            )
        models = _models(rows)
        return Analytics(
            tenant=tenant,
            window=window,
            start=start,
            end=now,
            total_cost=to_usd(sum(sum(v for k, v in r.items() if k.startswith("c|")) for r in rows)),
            total_tokens=sum(u.total_tokens for u in models),
            total_requests=sum(u.requests for u in models),
            top_models=models[:top],
            series=series,
            source="ledger",
        )

    async def _from_log(
        self,
        window: str,
        tenant: str,
        first: date,
        last: date,
        labels: list[str],
        start: datetime,
        now: datetime,
        top: int,
    ) -> Analytics:
        assert self.request_log is not None
        rows = await self.request_log.usage_by_day(tenant=tenant, since=first, until=last)
        # Per day and per model: cost, prompt tokens, completion tokens, requests, errors.
        days: dict[str, list[float]] = {label: [0.0] * 5 for label in labels}
        per_model: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0] * 5)
        for row in rows:
            values = (row.cost, row.prompt_tokens, row.completion_tokens, row.requests, row.errors)
            for acc in (days[row.day.isoformat()], per_model[(row.provider or "", row.model or "")]):
                for i, value in enumerate(values):
                    acc[i] += value
        usage = sorted(
            (
                ModelUsage(
                    provider=p,
                    model=m,
                    cost=v[0],
                    prompt_tokens=int(v[1]),
                    completion_tokens=int(v[2]),
                    total_tokens=int(v[1] + v[2]),
                    requests=int(v[3]),
                )
                for (p, m), v in per_model.items()
            ),
            key=lambda u: (-u.cost, -u.total_tokens, u.provider, u.model),
        )
        return Analytics(
            tenant=tenant,
            window=window,
            start=start,
            end=now,
            total_cost=sum(v[0] for v in days.values()),
            total_tokens=int(sum(v[1] + v[2] for v in days.values())),
            total_requests=int(sum(v[3] for v in days.values())),
            top_models=usage[:top],
            series=[
                Point(period=label, cost=v[0], tokens=int(v[1] + v[2]), requests=int(v[3]), errors=int(v[4]))
                for label, v in days.items()
            ],
            source="request_log",
        )
