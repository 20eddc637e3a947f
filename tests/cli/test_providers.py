"""``podium providers list|test`` against real simulated upstreams, through the CLI as a user runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from podium.cli.providers import app
from podium.orchestrator import Orchestrator
from podium.testing import SimulatedOpenAI

UP_KEY = "sk-up-0123456789abcdefSECRET"
DOWN_KEY = "sk-down-0123456789abcdefSECRET"
# The shell must not redirect the test's storage elsewhere.
CLEAN_ENV: dict[str, str | None] = {
    "DATABASE_URL": None,
    "REDIS_URL": None,
    "AI_CONFIG_DIR": None,
    "AI_ENCRYPTION_KEY": None,
    "COLUMNS": "200",
}


async def cli(*args: str) -> Result:
    # The command runs its own event loop, so it runs in a thread beside the upstreams' loop.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=CLEAN_ENV)


def rows(result: Result, key: int = 0) -> dict[str, list[str]]:
    """The table's rows (words of each line), keyed by their cell ``key``."""
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] in (["Provider"], ["Tenant"]))
    out: dict[str, list[str]] = {}
    for line in lines[start + 2 :]:  # past the header and its rule
        if not line.strip():
            break
        cells = line.split()
        out[cells[key]] = cells
    return out


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[SimulatedOpenAI, SimulatedOpenAI]]:
    async with SimulatedOpenAI("up") as up, SimulatedOpenAI("down") as down:
        yield up, down


@pytest.fixture
def config(tmp_path: Path, upstreams: tuple[SimulatedOpenAI, SimulatedOpenAI]) -> Path:
    up, down = upstreams
    path = tmp_path / "config.yaml"
    doc = {
        "framework": {"data_dir": str(tmp_path / "data")},
        "providers": [
            {"type": "openai", "name": "up", "tenant": "t1", "api_key": UP_KEY, "base_url": up.base_url},
            {
                "type": "openai",
                "name": "down",
                "tenant": "t2",
                "api_key": DOWN_KEY,
                "base_url": down.base_url,
            },
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_every_provider_is_probed_and_one_down_fails_the_command(
    config: Path, upstreams: tuple[SimulatedOpenAI, SimulatedOpenAI]
) -> None:
    up, down = upstreams
    down.fail(503, body={"error": {"message": "upstream overloaded", "type": "server_error"}})
    result = await cli("test", "--config", str(config))
    assert result.exit_code == 1, result.output
    table = rows(result)
    assert table["up"][:4] == ["up", "t1", "openai", "ok"]
    assert table["up"][6] == "2"  # the models the upstream listed
    assert table["down"][:4] == ["down", "t2", "openai", "failed"]
    error = " ".join(table["down"][7:])
    assert error.startswith("ProviderUnavailable:") and "upstream overloaded" in error
    assert "1 of 2 providers failed." in result.output
    assert any(r.path == "/v1/models" for r in up.requests)  # a real probe reached the upstream

    down.recover()
    again = await cli("test", "--config", str(config))
    assert again.exit_code == 0, again.output
    assert rows(again)["down"][3] == "ok" and "All 2 providers answered." in again.output


async def test_one_provider_by_name_or_tenant(
    config: Path, upstreams: tuple[SimulatedOpenAI, SimulatedOpenAI]
) -> None:
    _, down = upstreams
    down.fail(503)
    only_up = await cli("test", "up", "--config", str(config))
    assert only_up.exit_code == 0, only_up.output  # the failing one was not probed
    assert set(rows(only_up)) == {"up"} and "All 1 providers answered." in only_up.output
    calls = len(down.requests)
    only_t2 = await cli("test", "--tenant", "t2", "--config", str(config))
    assert only_t2.exit_code == 1 and set(rows(only_t2)) == {"down"}
    assert len(down.requests) > calls

    unknown = await cli("test", "nope", "--config", str(config))
    assert unknown.exit_code == 2
    assert "no provider named 'nope' (configured: down, up)" in unknown.output
    wrong_tenant = await cli("test", "up", "--tenant", "t2", "--config", str(config))
    assert wrong_tenant.exit_code == 2 and "no provider named 'up' in tenant 't2'" in wrong_tenant.output


async def test_an_unreachable_provider_fails_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    doc = {
        "framework": {"data_dir": str(tmp_path / "data")},
        # Port 1 on loopback: nothing listens there, the connection is refused.
        "providers": [
            {"type": "openai", "name": "gone", "api_key": UP_KEY, "base_url": "http://127.0.0.1:1/v1"}
        ],
    }
    path.write_text(yaml.safe_dump(doc))
    result = await cli("test", "--config", str(path))
    assert result.exit_code == 1, result.output
    assert rows(result)["gone"][3] == "failed" and "1 of 1 providers failed." in result.output


async def test_list_shows_configured_and_stored_providers_with_keys_masked(
    config: Path, upstreams: tuple[SimulatedOpenAI, SimulatedOpenAI]
) -> None:
    up, _ = upstreams
    # A provider created at run time (through the API) is stored in the config directory.
    orch = await Orchestrator.from_config(config, env_file=None)
    try:
        await orch.create_provider(
            type="openai", name="added", tenant="t1", api_key=UP_KEY, base_url=up.base_url, priority=3
        )
    finally:
        await orch.aclose()
    result = await cli("list", "--config", str(config))
    assert result.exit_code == 0, result.output
    table = rows(result, key=1)
    assert set(table) == {"up", "down", "added"}
    assert table["added"][:3] == ["t1", "added", "openai"] and table["added"][5] == "3"
    assert UP_KEY not in result.output and DOWN_KEY not in result.output
    assert "sk-...CRET" in result.output

    only_t2 = await cli("list", "--tenant", "t2", "--config", str(config))
    assert set(rows(only_t2, key=1)) == {"down"}


async def test_a_bad_configuration_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"framework": {"data_dir": str(tmp_path)}, "routng": {}}))
    result = await cli("test", "--config", str(path))
    assert result.exit_code == 2
    assert "error:" in result.output and "routng" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
