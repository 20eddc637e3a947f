"""The event bus: typed events, sync and async handlers, failures isolated."""

from __future__ import annotations

import logging

import pytest

from podium.errors import ConfigError
from podium.events import (
    ConfigCreated,
    ConfigEvent,
    ConfigRemoved,
    ConfigUpdated,
    Event,
    EventBus,
    event_names,
)


def _updated() -> ConfigUpdated:
    return ConfigUpdated(tenant="acme", provider="gpt", before={"type": "openai"}, after={"type": "openai"})


def test_events_are_typed_and_named() -> None:
    event = _updated()
    assert event.name == "config.updated"
    assert ConfigCreated.name == "config.created"
    assert ConfigRemoved.name == "config.removed"
    assert event.source == "api"
    assert event.at > 0
    assert {"config.created", "config.removed", "config.updated"} <= set(event_names())


async def test_sync_and_async_handlers_run_in_order() -> None:
    bus = EventBus()
    seen: list[str] = []

    def sync_handler(event: ConfigUpdated) -> None:
        seen.append(f"sync:{event.provider}")

    async def async_handler(event: ConfigEvent) -> None:
        seen.append(f"async:{event.provider}")

    bus.subscribe("config.updated", sync_handler)
    bus.subscribe(ConfigUpdated, async_handler)
    bus.subscribe("config.*", lambda e: seen.append("pattern"))
    bus.subscribe("*", lambda e: seen.append("all"))
    bus.subscribe("config.removed", lambda e: seen.append("wrong"))
    await bus.publish(_updated())
    assert seen == ["sync:gpt", "async:gpt", "pattern", "all"]


async def test_unsubscribe() -> None:
    bus = EventBus()
    seen: list[Event] = []
    unsubscribe = bus.subscribe("config.updated", seen.append)
    unsubscribe()
    unsubscribe()
    await bus.publish(_updated())
    assert seen == []


async def test_failing_handler_is_logged_counted_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[Event] = []

    async def broken(event: Event) -> None:
        raise RuntimeError("hook bug")

    bus.subscribe("config.updated", broken)
    bus.subscribe("config.updated", seen.append)
    with caplog.at_level(logging.ERROR):
        await bus.publish(_updated())
    assert len(seen) == 1
    assert bus.failures["config.updated"] == 1
    assert "hook bug" in caplog.text
    assert "broken" in caplog.text


def test_unknown_names_list_the_valid_ones() -> None:
    bus = EventBus()
    with pytest.raises(ConfigError, match=r"unknown event 'config\.udpated'; valid: \*, .*config\.updated"):
        bus.subscribe("config.udpated", print)
    with pytest.raises(ConfigError, match=r"unknown event 'nothing\.\*'"):
        bus.subscribe("nothing.*", print)
