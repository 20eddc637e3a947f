"""Makes one of podium's subsystems a no-op, for ``benchmarks/subsystems.sh`` (never imported otherwise).

Python imports ``sitecustomize`` at start-up from the first directory on ``sys.path`` that has one;
``subsystems.sh`` puts this directory there and names what to switch off in
``PODIUM_BENCH_WITHOUT``. What is switched off is still called (so the request takes the same path),
but returns at once: the difference in instructions per request is what that subsystem costs.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


async def _unbounded(awaitable: Awaitable[T], seconds: float) -> T:
    return await awaitable


def _switch_off(name: str) -> None:
    import podium.costs.ledger as ledger
    import podium.health.registry as registry
    import podium.observability.metrics as metrics
    import podium.providers._http as http
    import podium.recording as recording
    import podium.routing.deadline as deadline
    from podium.storage.records import AuditRecord, RequestRecord
    from podium.storage.writer import RecordWriter

    submit = RecordWriter.submit

    def dropping(kind: type) -> Any:
        def submit_others(self: RecordWriter, record: Any) -> bool:
            return True if isinstance(record, kind) else submit(self, record)

        return submit_others

    patches: dict[str, list[tuple[Any, str, Any]]] = {
        # The request log and the audit trail: neither built nor written.
        "records": [(recording.Recorded, "_record", _nothing)],
        # Both built, neither written (the record writer's share of "records").
        "writes": [(RecordWriter, "submit", lambda self, record: True)],
        "audit": [(RecordWriter, "submit", dropping(AuditRecord))],
        "request-log": [(RecordWriter, "submit", dropping(RequestRecord))],
        "ledger": [(ledger.Ledger, "ops", lambda *args, **kwargs: [])],
        "metrics": [
            (metrics.PodiumMetrics, method, _nothing)
            for method in ("request_started", "request_finished", "attempt", "record_tokens", "record_cost")
        ],
        "health": [(registry.HealthRegistry, "succeeded", _nothing)],
        "timeouts": [(http, "within", _unbounded), (deadline, "within", _unbounded)],
    }
    if name not in patches:
        raise SystemExit(f"PODIUM_BENCH_WITHOUT: unknown subsystem {name!r}; one of {', '.join(patches)}")
    for owner, attribute, replacement in patches[name]:
        setattr(owner, attribute, replacement)


if os.environ.get("PODIUM_BENCH_WITHOUT"):
    _switch_off(os.environ["PODIUM_BENCH_WITHOUT"])
