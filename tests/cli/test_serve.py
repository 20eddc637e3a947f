"""``podium serve``'s app: what start-up leaves for the collector while serving."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sys
from pathlib import Path

from podium.cli.serve import SERVING_GC_THRESHOLD, build_app


async def test_the_collector_leaves_requests_alone_while_serving_and_is_restored_after(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"framework": {"data_dir": str(tmp_path)}, "auth": {"enabled": False}}))
    app = build_app(str(config))
    threshold = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        # Full collections skip what start-up built (they set the p99 latency before).
        assert gc.get_freeze_count() > 10_000
        # Young collections wait for more than the objects of the requests in flight.
        assert gc.get_threshold() == (SERVING_GC_THRESHOLD, *threshold[1:])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


async def test_several_workers_on_a_sqlite_file_are_warned_about_its_write_lock(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"framework": {"data_dir": str(tmp_path)}, "auth": {"enabled": False}}))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("podium")), "serve", "--config", str(config),
        "--port", str(port), "--workers", "2", "--log-level", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), timeout=60)
        assert b"2 workers share one SQLite file" in line
        assert b"PostgreSQL" in line
    finally:
        proc.terminate()
        await proc.wait()
