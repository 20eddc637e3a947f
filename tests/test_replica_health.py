"""Replicas sharing Redis share health: a circuit one opens is open on the other, no request needed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podium import AllProvidersFailed, NoHealthyProviders, Orchestrator
from podium.testing import SimulatedOpenAI
from tests.services import REDIS_URL, require_redis


@pytest.fixture
async def up() -> AsyncIterator[SimulatedOpenAI]:
    async with SimulatedOpenAI("oa") as server:
        yield server


async def test_a_circuit_opened_on_one_replica_is_open_on_the_other(
    tmp_path: Path, up: SimulatedOpenAI
) -> None:
    require_redis()
    settings = {
        "framework": {"data_dir": str(tmp_path)},
        "redis_url": REDIS_URL,
        "config_store": {"encryption_key": "k" * 32},
        "governance": {"key_prefix": f"podium-test-{uuid.uuid4().hex[:8]}:"},
        "routing": {"retry": {"max_retries": 0}},
        # The one probe comes at once (no jitter) and the next an hour later, so no probe lands among
        # the failures below and opens the circuit a request early.
        "health": {"sync_interval": 0.1, "check_interval": 3600, "check_jitter": 0,
                   "breaker": {"consecutive_failures": 2, "open_seconds": 30}},
        "providers": [
            {"type": "openai", "name": "gpt", "tenant": "acme", "api_key": "sk-replica-0123456789",
             "base_url": up.base_url, "default_model": "gpt-4o-mini"},
        ],
    }  # fmt: skip
    a = await Orchestrator.from_config(None, **settings)
    b = await Orchestrator.from_config(None, **settings)
    try:
        for _ in range(100):  # one replica takes the probe lock; wait for its (healthy) probe
            if any(o.get_provider_health("gpt", "acme").last_check is not None for o in (a, b)):
                break
            await asyncio.sleep(0.05)
        assert any(o.get_provider_health("gpt", "acme").last_check is not None for o in (a, b))
        up.fail(503, times=1000)
        for _ in range(2):
            with pytest.raises(AllProvidersFailed):
                await a.chat("x", tenant="acme")
        assert a.get_provider_health("gpt", "acme").circuit == "open"
        calls = len(up.requests)
        for _ in range(100):
            if b.get_provider_health("gpt", "acme").circuit == "open":
                break
            await asyncio.sleep(0.05)
        assert b.get_provider_health("gpt", "acme").circuit == "open"
        with pytest.raises(NoHealthyProviders):
            await b.chat("y", tenant="acme")
        assert len(up.requests) == calls  # b refused without calling the dead upstream
    finally:
        await a.aclose()
        await b.aclose()
