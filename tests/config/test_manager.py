"""ConfigManager: the seed's configManager API (templates, validators, hooks) over the encrypted store."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from podium.config.manager import ConfigManager
from podium.errors import ConfigError, RequestError
from podium.events import ConfigEvent, ConfigUpdated
from tests.config import SECRET, directory_bytes, record


@pytest.fixture
async def manager(tmp_path: Path) -> Any:
    manager = ConfigManager.open(tmp_path / "config", encryption_key="a long test passphrase, not a key")
    await manager.load()
    yield manager
    await manager.aclose()


async def test_hooks_sync_and_async_see_masked_changes(manager: ConfigManager) -> None:
    seen: list[tuple[str, str, str]] = []

    def on_created(event: ConfigEvent) -> None:
        seen.append((event.name, event.provider, event.source))

    async def on_updated(event: ConfigEvent) -> None:
        assert event.after is not None
        seen.append((event.name, event.provider, event.after["secrets"]["api_key"]))

    manager.register_hook("config.created", on_created)
    manager.register_hook("config.updated", on_updated)
    remove_hook = manager.register_hook(
        "config.removed", lambda e: seen.append((e.name, e.provider, e.tenant))
    )
    await manager.save(record())
    await manager.save(record(secret=SECRET + "2"))
    await manager.remove("acme", "gpt")
    remove_hook()
    await manager.save(record("again"))
    await manager.remove("acme", "again")
    assert seen == [
        ("config.created", "gpt", "api"),
        ("config.updated", "gpt", "sk-...def2"),
        ("config.removed", "gpt", "acme"),
        ("config.created", "again", "api"),
    ]


async def test_unknown_hook_name_lists_the_valid_ones(manager: ConfigManager) -> None:
    with pytest.raises(ConfigError, match=r"valid: config\.created, config\.removed, config\.updated"):
        manager.register_hook("config.changed", print)


async def test_failing_hook_does_not_undo_the_change(
    manager: ConfigManager, caplog: pytest.LogCaptureFixture
) -> None:
    after: list[str] = []

    async def broken(event: ConfigEvent) -> None:
        raise ValueError("hook bug")

    manager.register_hook("config.created", broken)
    manager.register_hook("config.created", lambda e: after.append(e.provider))
    with caplog.at_level(logging.ERROR):
        await manager.save(record())
    assert after == ["gpt"]
    assert manager.store.get("acme", "gpt") == record()
    assert manager.bus.failures["config.created"] == 1
    assert SECRET not in caplog.text


async def test_file_edits_fire_hooks(manager: ConfigManager) -> None:
    await manager.save(record())
    arrived = asyncio.Event()
    seen: list[ConfigEvent] = []

    def hook(event: ConfigEvent) -> None:
        seen.append(event)
        arrived.set()

    manager.register_hook("config.updated", hook)
    await manager.watch(interval=0.05)
    path = manager.store.tenant_file("acme")
    doc = json.loads(path.read_text())
    doc["providers"]["gpt"]["settings"]["priority"] = 3
    path.write_text(json.dumps(doc))
    await asyncio.wait_for(arrived.wait(), 10)
    assert isinstance(seen[0], ConfigUpdated)
    assert seen[0].source == "file"


async def test_provider_from_template_validates_the_result(manager: ConfigManager) -> None:
    made = await manager.provider_from_template(
        "custom",
        "my-custom",
        "my-app",
        {"CUSTOM_API_URL": "https://api.example.com", "CUSTOM_API_KEY": "your-key"},
    )
    assert made == {
        "type": "custom",
        "name": "my-custom",
        "tenant": "my-app",
        "baseUrl": "https://api.example.com",
        "apiKey": "your-key",
        "requestFormat": "openai",
        "responseFormat": "openai",
    }
    with pytest.raises(RequestError) as err:
        await manager.provider_from_template("custom", "bad name", "my-app", {"CUSTOM_API_URL": "ftp://x"})
    assert "name must be" in err.value.message
    assert "base_url must start with http://" in err.value.message


async def test_seed_registration_api(manager: ConfigManager) -> None:
    manager.register_template("my-template", {"baseUrl": "{{API_URL}}", "apiKey": "{{API_KEY}}"})
    assert manager.render_template("my-template", {"API_URL": "https://x.example", "API_KEY": "k"}) == {
        "baseUrl": "https://x.example",
        "apiKey": "k",
        "type": "custom",
    }

    async def needs_region(config: dict[str, Any]) -> dict[str, Any]:
        ok = config.get("region") in {"eu", "us"}
        return {"valid": ok, "errors": [] if ok else ["region must be eu or us"]}

    manager.register_validator("custom", needs_region)
    assert await manager.validate("custom", {"baseUrl": "https://x.example"}) == ["region must be eu or us"]
    with pytest.raises(RequestError, match="region must be eu or us"):
        await manager.check("custom", {"baseUrl": "https://x.example"})


async def test_nothing_in_clear_anywhere(manager: ConfigManager, caplog: pytest.LogCaptureFixture) -> None:
    events: list[ConfigEvent] = []
    manager.register_hook("config.created", events.append)
    with caplog.at_level(logging.DEBUG):
        await manager.save(record())
    for data in directory_bytes(manager.store.directory).values():
        assert SECRET.encode() not in data
    assert SECRET not in repr(events)
    assert SECRET not in caplog.text
