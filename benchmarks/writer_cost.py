"""CPU the record writer spends per served request: a request-log row, an audit event, a key touch.

    python benchmarks/writer_cost.py [DATABASE_URL] [--profile]

Writes 40 batches of 250 requests' records (what ``podium serve`` queues for each request with an
API key) through ``RecordWriter._write``, one transaction per batch as the writer does under load,
into a new SQLite file (or DATABASE_URL, which must be an empty database), and prints the process
CPU time per request. Process time includes the driver's thread (aiosqlite runs SQLite in one).
``--profile`` also prints the 25 functions with the most own time.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime

from podium.storage import Database, audit, migrate
from podium.storage.records import KeyUsage, Record, RequestRecord
from podium.storage.writer import RecordWriter

BATCH = 250
BATCHES = 40


def _records(first: int) -> list[Record]:
    out: list[Record] = []
    for i in range(first, first + BATCH):
        now = datetime.now(UTC)
        request = RequestRecord(
            tenant="default",
            request_id=f"req-{i:012d}",
            provider="fake",
            model="fake-gpt",
            task_type="chat",
            prompt_tokens=12,
            completion_tokens=30,
            cost=0.000123,
            latency_ms=0.9,
            started_at=now,
            finished_at=now,
            metadata={"attempts": 1, "strategy": "priority", "providers": ["fake"]},
        )
        out += [request, audit.request_event(request, actor="key:bench"), KeyUsage(key_id="bench", at=now)]
    return out


async def main(url: str, profile: bool) -> None:
    """Write the batches and print the CPU time per request."""
    await migrate(url)
    db = Database(url)
    writer = RecordWriter(db)
    batches = [_records(k * BATCH) for k in range(BATCHES + 1)]
    await writer._write(batches[0])  # warm-up: statement caches, the first connection
    profiler = cProfile.Profile() if profile else None
    cpu = time.process_time()
    if profiler is not None:
        profiler.enable()
    for batch in batches[1:]:
        await writer._write(batch)
    if profiler is not None:
        profiler.disable()
    per = (time.process_time() - cpu) / (BATCHES * BATCH) * 1e6
    await db.dispose()
    print(f"{per:.1f} us CPU per request (a request-log row, an audit event, a key touch) on {db.dialect}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    target = args[0] if args else f"sqlite:///{tempfile.mkdtemp()}/writer.db"
    asyncio.run(main(target, "--profile" in sys.argv))
