"""Demo scene: what podium recorded, read back from the database, and the audit chain verified."""

from __future__ import annotations

from collections import Counter

from podium.cli._demo_env import DemoWorld
from podium.cli._demo_render import Report, ms, usd
from podium.storage.audit import list_events, verify
from podium.storage.repositories import RequestLog

_SHOWN = 8  # the newest requests shown in full; every request is counted
_MAX_ROWS = 10_000


async def show_health(world: DemoWorld, report: Report) -> None:
    """Every provider's health after the run: status, circuit, traffic, error rate, latency."""
    summary = world.orch.get_health_summary()
    report.section(
        "provider health",
        f"orch.get_health_summary(): {summary.healthy} healthy, {summary.degraded} degraded, "
        f"{summary.unhealthy} unhealthy of {summary.total_providers} providers.",
    )
    rows = []
    for key, h in sorted(summary.providers.items()):
        probe = h.last_check
        rows.append(
            (
                key,
                h.status,
                h.circuit,
                h.requests,
                h.errors,
                f"{h.error_rate:.0%}",
                ms(h.p50_latency_ms),
                ms(h.p95_latency_ms),
                "-" if probe is None else ("ok" if probe.success else f"failed: {probe.error}"),
            )
        )
    report.table(
        (
            "tenant/provider",
            "status",
            "circuit",
            "attempts",
            "errors",
            "error rate",
            "p50",
            "p95",
            "last probe",
        ),
        rows,
    )


async def show_records(world: DemoWorld, report: Report) -> None:
    """The request log and the audit trail, as written by the background writer, and the chain check."""
    orch = world.orch
    db, writer = orch.database, orch.writer
    if db is None or writer is None:  # from_config always opens storage; kept for type narrowing
        report.line("no database: nothing was recorded")
        return
    report.section(
        "request log and audit trail",
        f"Written off the request path by the background writer to {db.display_url}, read back here.",
    )
    await writer.flush(10)
    logged = await RequestLog(db).query(limit=_MAX_ROWS)
    by_status = Counter(r.status for r in logged)
    by_error = Counter(r.error_class for r in logged if r.error_class)
    report.fact(
        "request log",
        f"{len(logged)} requests: {by_status.get('ok', 0)} ok, {by_status.get('error', 0)} failed"
        + (f" ({', '.join(f'{k} x{v}' for k, v in sorted(by_error.items()))})" if by_error else ""),
    )
    report.table(
        ("started", "tenant", "provider", "model", "status", "tokens", "cost", "latency"),
        [
            (
                r.started_at.strftime("%H:%M:%S"),
                r.tenant,
                r.provider or "-",
                r.model or "-",
                r.status if r.error_class is None else f"{r.status}: {r.error_class}",
                r.prompt_tokens + r.completion_tokens,
                usd(r.cost),
                ms(r.latency_ms),
            )
            for r in logged[:_SHOWN]
        ],
        title=f"the newest {min(_SHOWN, len(logged))} of {len(logged)}",
    )
    events = await list_events(db, limit=_MAX_ROWS)
    actions = Counter(e.action for e in events)
    report.fact("audit events", ", ".join(f"{a} x{n}" for a, n in sorted(actions.items())))
    result = await verify(db)
    if result.ok:
        report.fact(
            "audit chain", f"OK: {result.checked} events verified, every hash links to the one before"
        )
    else:
        report.fact("audit chain", f"BROKEN at event {result.first_broken_seq}: {result.reason}")
