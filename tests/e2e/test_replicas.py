"""Two ``podium serve`` processes sharing the real Redis and one database act as one gateway:
a tenant's rate limit and hard budget hold across both."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from podium.limits.governance import Governance
from podium.settings import Settings
from podium.storage import Database, RequestLog
from podium.testing import SimulatedOpenAI
from tests.services import REDIS_URL, require_redis

K = 10
PRICES = {"input": 100.0, "output": 1000.0}  # USD per million tokens: costs add up quickly


@pytest.fixture(autouse=True)
def _need_redis() -> None:
    require_redis()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedOpenAI]:
    async with SimulatedOpenAI("oa", chunk_delay=0.005, models=("house-model",)) as up:
        yield up


def write_config(tmp_path: Path, upstream: SimulatedOpenAI, prefix: str, extra: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
framework: {{dataDir: {tmp_path / "data"}}}
redisUrl: {REDIS_URL}
configStore: {{encryptionKey: {"k" * 32}}}
storage: {{flushInterval: 0.1}}
governance: {{keyPrefix: "{prefix}"}}
providers:
  - type: openai
    name: house
    tenant: default
    apiKey: sk-replica-test-key
    baseUrl: {upstream.base_url}
    defaultModel: house-model
    prices: {json.dumps(PRICES)}
{extra}
"""
    )
    return config


class Replica:
    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url


async def start_replica(config: Path, *, auth: bool = False) -> Replica:
    """Start ``podium serve`` on a free port; without ``auth``, as ``--no-auth``."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from podium.cli.main import app; app()",
        "serve", "--config", str(config), "--port", str(port), "--log-level", "warning",
        *([] if auth else ["--no-auth"]),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.returncode is not None:
                err = await proc.stderr.read() if proc.stderr else b""
                raise AssertionError(f"podium serve exited: {err.decode(errors='replace')}")
            try:
                async with http.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return Replica(proc, url)
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("podium serve did not come up")


@pytest.fixture
async def replicas(
    tmp_path: Path, upstream: SimulatedOpenAI, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[list[Replica], Path, str]]:
    prefix = f"podium-test-{uuid.uuid4().hex[:8]}:"
    config = write_config(tmp_path, upstream, prefix, request.param)
    started: list[Replica] = []
    try:
        for _ in range(2):
            started.append(await start_replica(config))
        yield started, config, prefix
    finally:
        for r in started:
            if r.proc.returncode is None:
                r.proc.terminate()
        for r in started:
            await r.proc.wait()


LIMITED = f"""limits:
  - {{target: default, scope: tenant, limits: {{requestsPerMinute: {K}}}}}"""


@pytest.mark.parametrize("replicas", [LIMITED], indirect=True)
async def test_a_tenant_limit_holds_exactly_across_two_processes(
    replicas: tuple[list[Replica], Path, str],
) -> None:
    servers, _, _ = replicas
    body = {"model": "house-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

    async def one(http: aiohttp.ClientSession, n: int) -> tuple[int, str | None]:
        async with http.post(f"{servers[n % 2].url}/v1/chat/completions", json=body) as r:
            await r.read()
            return r.status, r.headers.get("retry-after")

    async with aiohttp.ClientSession() as http:
        results = await asyncio.gather(*(one(http, n) for n in range(5 * K)))
    statuses = [s for s, _ in results]
    assert statuses.count(200) == K
    assert statuses.count(429) == 4 * K
    assert all(ra is not None and int(ra) > 0 for s, ra in results if s == 429)


BUDGET = 0.05
BUDGETED = f"""budgets:
  - {{tenant: default, daily: {BUDGET}, enforceHardLimit: true}}"""


@pytest.mark.parametrize("replicas", [BUDGETED], indirect=True)
async def test_a_hard_budget_holds_across_two_processes_under_64_concurrent_streams(
    replicas: tuple[list[Replica], Path, str],
) -> None:
    servers, config, _ = replicas
    # Each stream reserves its worst case (prompt estimate + 5 output tokens: about $0.0055) and costs
    # about $0.0052: the $0.05 budget is used up within the first wave of 64 concurrent streams.
    body = {
        "model": "house-model",
        "messages": [{"role": "user", "content": "stream please"}],
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async def one(http: aiohttp.ClientSession, n: int) -> int:
        async with http.post(f"{servers[n % 2].url}/v1/chat/completions", json=body) as r:
            if n == 0 and r.status == 200:
                await r.content.readline()  # read one event, then hang up mid-stream
                return -200
            await r.read()
            return r.status

    statuses: list[int] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            statuses += await asyncio.gather(*(one(http, n) for n in range(64)))
    admitted = sum(1 for s in statuses if s in (200, -200))
    assert statuses.count(402) == len(statuses) - admitted
    assert admitted >= 4  # the budget covers several, not one

    settings = Settings.load(config)
    gov = Governance.from_settings(settings, settings.governance)
    try:
        summary = await gov.get_cost_summary("default")
    finally:
        await gov.aclose()
    # Generous bound on one request's reservation: 20 prompt tokens and its 5 output tokens.
    one_reservation = (20 * PRICES["input"] + 5 * PRICES["output"]) / 1e6
    # Never more than one reservation over; and the budget was really used up (the aborted stream is
    # charged only for what it received, so "used up" is read loosely).
    assert BUDGET / 2 <= summary.total_cost <= BUDGET + one_reservation

    # Stop the replicas so they write their request logs, then compare with the shared ledger.
    for r in servers:
        r.proc.terminate()
    for r in servers:
        await r.proc.wait()
    db = Database(settings.storage.database_url)
    try:
        rows = await RequestLog(db).query(tenant="default", limit=1000)
    finally:
        await db.dispose()
    charged = [r for r in rows if r.cost > 0]
    assert len(charged) == admitted
    assert sum(r.cost for r in charged) == pytest.approx(summary.total_cost, abs=1e-9)
