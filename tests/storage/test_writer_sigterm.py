from __future__ import annotations

import asyncio
import signal
import sys

from sqlalchemy import text

from podium.storage import Database

SCRIPT = """
import asyncio, sys
from podium.storage import Database, RecordWriter, RequestRecord

async def main(url):
    db = Database(url)
    writer = RecordWriter(db, max_queue=1_000_000, batch_size=200, flush_interval=0.02)
    writer.install_sigterm()
    writer.start()
    submitted = 0
    while not writer.closed:
        for _ in range(20):
            writer.submit(RequestRecord(tenant="acme", request_id=f"r{submitted}"))
            submitted += 1
        print(submitted, flush=True)
        await asyncio.sleep(0.001)
    await asyncio.Event().wait()  # SIGTERM ends the process once the writer has drained

asyncio.run(main(sys.argv[1]))
"""


async def test_sigterm_drains_every_submitted_record_before_the_process_ends(
    db: Database, db_url: str
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRIPT, db_url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[bytes] = []
    while not lines or int(lines[-1]) < 3000:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, (await proc.stderr.read()).decode()
        lines.append(line)
    proc.send_signal(signal.SIGTERM)
    rest, err = await asyncio.wait_for(proc.communicate(), 60)
    lines += rest.splitlines()

    assert proc.returncode == -signal.SIGTERM, err.decode()  # it still dies of SIGTERM, after draining
    submitted = int(lines[-1])
    async with db.engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT count(*), count(DISTINCT request_id) FROM request_log"))
        ).one()
    assert tuple(stored) == (submitted, submitted)
