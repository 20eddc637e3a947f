"""SIGTERM to ``podium serve`` under load: streams under way finish, and every answered request is
in the request log and the audit trail."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from podium.settings import Settings
from podium.storage import Database, RequestLog
from podium.storage.audit import list_events, verify
from podium.testing import SimulatedOpenAI
from tests.e2e.test_replicas import start_replica


@pytest.fixture
async def slow_upstream() -> AsyncIterator[SimulatedOpenAI]:
    # About 0.3 s per stream: plenty are under way when the signal arrives.
    async with SimulatedOpenAI("oa", chunk_delay=0.05) as up:
        yield up


async def test_sigterm_lets_streams_finish_and_loses_no_record(
    tmp_path: Path, slow_upstream: SimulatedOpenAI
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
framework: {{dataDir: {tmp_path / "data"}}}
configStore: {{encryptionKey: {"k" * 32}}}
storage: {{flushInterval: 0.5}}
providers:
  - {{type: openai, name: gpt, tenant: default, apiKey: sk-shutdown-test, baseUrl: {slow_upstream.base_url},
      defaultModel: gpt-4o-mini}}
"""
    )
    server = await start_replica(config)
    body = {"messages": [{"role": "user", "content": "a long enough answer please"}], "stream": True}
    completed: list[str] = []
    refused: list[int] = []
    enough = asyncio.Event()

    async def client(http: aiohttp.ClientSession) -> None:
        while True:
            try:
                async with http.post(f"{server.url}/v1/chat/completions", json=body) as r:
                    if r.status != 200:
                        refused.append(r.status)
                        return
                    text = (await r.read()).decode()
            except aiohttp.ClientConnectionError:
                return  # the server stopped listening: nothing was accepted
            # A stream that was cut would lack its end marker.
            assert text.rstrip().endswith("data: [DONE]"), text[-200:]
            completed.append(r.headers["x-request-id"])
            if len(completed) >= 24:
                enough.set()

    async with aiohttp.ClientSession() as http:
        clients = [asyncio.create_task(client(http)) for _ in range(12)]
        await asyncio.wait_for(enough.wait(), timeout=60)
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.proc.wait(), timeout=60)
        await asyncio.gather(*clients)
    # uvicorn re-raises the signal once its shutdown is complete: ended by SIGTERM, not by a crash.
    assert server.proc.returncode == -signal.SIGTERM
    settings = Settings.load(config)
    db = Database(settings.storage.database_url)
    try:
        rows = await RequestLog(db).query(tenant="default", limit=10_000)
        assert sorted(r.request_id for r in rows) == sorted(completed)
        assert all(r.status == "ok" for r in rows)
        events = await list_events(db, tenant="default", action="request.*", limit=10_000)
        assert len(events) == len(completed)
        assert (await verify(db)).ok
    finally:
        await db.dispose()
