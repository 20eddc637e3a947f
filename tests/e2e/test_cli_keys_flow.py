"""The operator's flow end to end: ``podium serve`` with auth, ``podium keys create`` in another process,
the official openai SDK with that key; ``podium keys revoke`` and the key stops working."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from podium.testing import SimulatedOpenAI
from tests.e2e.test_replicas import start_replica


@pytest.fixture
async def up() -> AsyncIterator[SimulatedOpenAI]:
    async with SimulatedOpenAI("oa") as server:
        yield server


async def podium_cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from podium.cli.main import app; app()", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_a_key_made_by_the_cli_works_with_the_sdk_until_revoked(
    tmp_path: Path, up: SimulatedOpenAI
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
framework: {{dataDir: {tmp_path / "data"}}}
configStore: {{encryptionKey: {"k" * 32}}}
auth: {{keyRefreshInterval: 0.2}}
providers:
  - {{type: openai, name: gpt, tenant: my-app, apiKey: sk-upstream-test, baseUrl: {up.base_url},
      defaultModel: gpt-4o-mini}}
"""
    )
    server = await start_replica(config, auth=True)
    try:
        key = (
            await podium_cli(
                "keys", "create", "--tenant", "my-app", "--role", "user", "-q", "--config", str(config)
            )
        ).strip()
        assert key.startswith("pdm-")
        client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
        for _ in range(50):  # the server picks new keys up within its refresh interval
            try:
                r = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
                )
                break
            except openai.AuthenticationError:
                await asyncio.sleep(0.1)
        assert r.choices[0].message.content == "[oa] you said: hello"
        listed = await podium_cli("keys", "list", "--config", str(config))
        key_id = next(line.split()[0] for line in listed.splitlines() if "my-app" in line and "user" in line)
        key_id = key_id.strip("│| ")
        await podium_cli("keys", "revoke", key_id, "--config", str(config))
        refusal = None
        for _ in range(50):
            try:
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
                )
            except openai.AuthenticationError as exc:
                refusal = exc.message
                break
            await asyncio.sleep(0.1)
        assert refusal is not None and "revoked" in refusal, "the revoked key still works"
        await client.close()
    finally:
        server.proc.terminate()
        await server.proc.wait()
