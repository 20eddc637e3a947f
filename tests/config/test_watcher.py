"""Change detection: edits to the files are picked up without a restart; podium's own writes are not."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest

from podium.config.crypto import Cipher
from podium.config.store import ConfigStore
from podium.config.watcher import ConfigWatcher
from podium.events import ConfigCreated, ConfigEvent, ConfigRemoved, ConfigUpdated
from tests.config import OTHER_SECRET, SECRET, directory_bytes, record

WAIT = 10.0  # generous: only ever reached when the behaviour is broken


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def store(tmp_path: Path, key: bytes) -> ConfigStore:
    store = ConfigStore(tmp_path / "config", Cipher(key))
    store.put(record("gpt"))
    store.put(record("other"))
    store.load_all()
    return store


class Collector:
    """Records batches and lets a test wait until one matching a condition arrived."""

    def __init__(self) -> None:
        self.events: list[ConfigEvent] = []
        self._arrived = asyncio.Event()

    def __call__(self, events: list[ConfigEvent]) -> None:
        self.events += events
        self._arrived.set()

    async def wait_for(self, count: int) -> list[ConfigEvent]:
        while len(self.events) < count:
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), WAIT)
        return self.events


def _edit(path: Path, change: dict[str, object]) -> None:
    """Edit a tenant file by hand, as a user with an editor would."""
    doc = json.loads(path.read_text())
    doc["providers"]["gpt"]["settings"].update(change)
    path.write_text(json.dumps(doc, indent=2))


async def test_external_edit_fires_updated_with_source_file(store: ConfigStore) -> None:
    seen = Collector()
    async with ConfigWatcher(store, 0.05, seen):
        _edit(store.tenant_file("acme"), {"default_model": "gpt-4o"})
        (event,) = await seen.wait_for(1)
    assert isinstance(event, ConfigUpdated)
    assert (event.tenant, event.provider, event.source) == ("acme", "gpt", "file")
    assert event.before is not None and event.after is not None
    assert event.before["settings"]["default_model"] == "gpt-4o-mini"
    assert event.after["settings"]["default_model"] == "gpt-4o"
    assert event.after["secrets"] == {"api_key": "sk-...cdef"}
    stored = store.get("acme", "gpt")
    assert stored is not None and stored.settings["default_model"] == "gpt-4o"


async def test_own_writes_are_not_reported(store: ConfigStore) -> None:
    seen = Collector()
    watcher = ConfigWatcher(store, 3600, seen)
    store.put(record("gpt", secret=OTHER_SECRET))
    store.put(record("new"))
    store.delete("acme", "other")
    assert await watcher.check() == []
    _edit(store.tenant_file("acme"), {"priority": 5})
    events = await watcher.check()
    assert [(type(e), e.provider) for e in events] == [(ConfigUpdated, "gpt")]
    assert seen.events == events


async def test_write_by_another_process_is_reported(store: ConfigStore, key: bytes) -> None:
    other = ConfigStore(store.directory, Cipher(key))
    other.load_all()
    seen = Collector()
    async with ConfigWatcher(store, 0.05, seen):
        other.put(record("gpt", secret=OTHER_SECRET))
        (event,) = await seen.wait_for(1)
    assert isinstance(event, ConfigUpdated)
    assert event.after is not None and event.after["secrets"] == {"api_key": "sk-...3210"}
    stored = store.get("acme", "gpt")
    assert stored is not None and stored.secrets == {"api_key": OTHER_SECRET}


async def test_malformed_file_is_skipped_then_picked_up_once_fixed(
    store: ConfigStore, caplog: pytest.LogCaptureFixture
) -> None:
    path = store.tenant_file("acme")
    good = path.read_text()
    watcher = ConfigWatcher(store, 3600, Collector())
    path.write_text(good[: len(good) // 2])
    with caplog.at_level(logging.ERROR):
        assert await watcher.check() == []
        assert await watcher.check() == []
    assert caplog.text.count("ignoring the change to") == 1
    assert store.get("acme", "gpt") is not None
    assert path.read_text() == good[: len(good) // 2]
    doc = json.loads(good)
    doc["providers"]["gpt"]["settings"]["default_model"] = "gpt-4o"
    path.write_text(json.dumps(doc))
    events = await watcher.check()
    assert [(type(e), e.provider) for e in events] == [(ConfigUpdated, "gpt")]


async def test_file_with_the_wrong_key_is_skipped_and_kept(store: ConfigStore, tmp_path: Path) -> None:
    foreign = ConfigStore(tmp_path / "foreign", Cipher(os.urandom(32)))
    foreign.put(record("gpt", secret=OTHER_SECRET))
    store.tenant_file("acme").write_bytes(foreign.tenant_file("acme").read_bytes())
    before = directory_bytes(store.directory)
    assert await ConfigWatcher(store, 3600, Collector()).check() == []
    assert directory_bytes(store.directory) == before
    stored = store.get("acme", "gpt")
    assert stored is not None and stored.secrets == {"api_key": SECRET}


async def test_new_tenant_file_written_by_hand_is_created_and_sealed(store: ConfigStore) -> None:
    doc = {"providers": {"local": {"type": "ollama", "secrets": {"token": SECRET}}}}
    path = store.directory / "tenant-newco.json"
    path.write_text(json.dumps(doc))
    (event,) = await ConfigWatcher(store, 3600, Collector()).check()
    assert isinstance(event, ConfigCreated)
    assert (event.tenant, event.provider) == ("newco", "local")
    assert event.after == {"type": "ollama", "settings": {}, "secrets": {"token": "sk-...cdef"}}
    assert SECRET.encode() not in path.read_bytes()


async def test_removed_file_counts_after_two_polls(store: ConfigStore) -> None:
    watcher = ConfigWatcher(store, 3600, Collector())
    store.tenant_file("acme").unlink()
    assert await watcher.check() == []  # editors that delete then recreate get one poll of grace
    events = await watcher.check()
    assert sorted((type(e), e.provider) for e in events) == [(ConfigRemoved, "gpt"), (ConfigRemoved, "other")]


async def test_failing_callback_does_not_stop_the_watcher(store: ConfigStore) -> None:
    calls: list[list[ConfigEvent]] = []
    first, second = asyncio.Event(), asyncio.Event()

    def flaky(events: list[ConfigEvent]) -> None:
        calls.append(events)
        if len(calls) == 1:
            first.set()
            raise RuntimeError("hook bug")
        second.set()

    async with ConfigWatcher(store, 0.05, flaky):
        _edit(store.tenant_file("acme"), {"priority": 1})
        await asyncio.wait_for(first.wait(), WAIT)
        _edit(store.tenant_file("acme"), {"priority": 2})
        await asyncio.wait_for(second.wait(), WAIT)
    assert len(calls) == 2


async def test_async_callback(store: ConfigStore) -> None:
    done = asyncio.Event()
    got: list[ConfigEvent] = []

    async def handler(events: list[ConfigEvent]) -> None:
        await asyncio.sleep(0)
        got.extend(events)
        done.set()

    async with ConfigWatcher(store, 0.05, handler):
        store.tenant_file("acme").write_text(json.dumps({"providers": {}}))
        await asyncio.wait_for(done.wait(), WAIT)
    assert sorted(e.provider for e in got) == ["gpt", "other"]
