"""``podium data export|import`` as a user runs them: config files, JSON on disk, secrets kept out."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

from typer.testing import CliRunner, Result

from podium import Orchestrator
from podium.cli.main import app

KEY = "sk-cli-0123456789abcdefSECRETKEY"


def write_config(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yaml"
    config.write_text(
        f"framework: {{dataDir: {root / 'data'}}}\nconfigStore: {{encryptionKey: {'k' * 32}}}\n"
    )
    return config


async def invoke(*args: str) -> Result:
    # The command runs its own event loop, so it runs in a thread beside the test's loop.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def test_export_without_secrets_then_import_asks_for_them(tmp_path: Path) -> None:
    src = write_config(tmp_path / "a")
    orch = await Orchestrator.from_config(src)
    try:
        await orch.create_provider(
            type="openai", name="gpt", tenant="acme", api_key=KEY, base_url="https://api.example.com/v1"
        )
    finally:
        await orch.aclose()
    out = tmp_path / "export.json"
    result = await invoke("data", "export", str(out), "--config", str(src))
    assert result.exit_code == 0, result.output
    assert "exported 1 providers" in result.output
    assert KEY not in out.read_text()
    assert json.loads(out.read_text())["providers"][0]["required_secrets"] == ["api_key"]

    dst = write_config(tmp_path / "b")
    refused = await invoke("data", "import", str(out), "--config", str(dst))
    assert refused.exit_code == 1
    assert "acme/gpt: api_key" in refused.output and "Nothing was imported" in refused.output

    done = await invoke(
        "data", "import", str(out), "--config", str(dst), "--secret", f"acme/gpt:api_key={KEY}"
    )
    assert done.exit_code == 0, done.output
    assert "imported 1 providers" in done.output
    assert KEY not in done.output
    copy = await Orchestrator.from_config(dst)
    try:
        provider = copy.provider("gpt", "acme")
        assert provider.config.api_key is not None
        assert provider.config.api_key.get_secret_value() == KEY
    finally:
        await copy.aclose()


async def test_export_with_secrets_is_private_to_its_owner(tmp_path: Path) -> None:
    src = write_config(tmp_path)
    orch = await Orchestrator.from_config(src)
    try:
        await orch.create_provider(
            type="openai", name="gpt", tenant="acme", api_key=KEY, base_url="https://api.example.com/v1"
        )
    finally:
        await orch.aclose()
    out = tmp_path / "full.json"
    result = await invoke("data", "export", str(out), "--config", str(src), "--include-secrets")
    assert result.exit_code == 0, result.output
    assert KEY in out.read_text()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert "holds secrets in clear" in result.output


async def test_a_malformed_secret_option_is_refused_without_echoing_the_value(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    out.write_text(json.dumps({"format": "podium-export", "version": 1, "providers": []}))
    result = await invoke(
        "data", "import", str(out), "--config", str(write_config(tmp_path)), "--secret", f"gpt={KEY}"
    )
    assert result.exit_code == 1
    assert "TENANT/PROVIDER:NAME=VALUE" in result.output and KEY not in result.output
