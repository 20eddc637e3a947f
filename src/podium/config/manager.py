"""``ConfigManager``: the seed's ``configManager`` (templates, validators, hooks) over the encrypted store.

::

    manager = ConfigManager.open(Path("config"), encryption_key=os.environ.get("AI_ENCRYPTION_KEY"))
    manager.register_hook("config.updated", lambda event: print("Provider updated:", event.provider))
    manager.register_validator("my-provider", check_custom_field)
    manager.register_template("my-template", {"baseUrl": "{{API_URL}}", "apiKey": "{{API_KEY}}"})
    await manager.load()
    await manager.watch(interval=2.0)  # file edits (and other replicas' writes) fire the hooks too
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from podium.config.crypto import Cipher
from podium.config.store import ConfigStore, ProviderRecord, Records
from podium.config.templates import TemplateRegistry
from podium.config.validators import Validator, ValidatorRegistry
from podium.config.watcher import ConfigWatcher, RedisConfigSync
from podium.errors import ConfigError
from podium.events import ConfigEvent, EventBus, Handler

CONFIG_EVENTS = ("config.created", "config.removed", "config.updated")


class ConfigManager:
    """Persists provider configurations and runs templates, validators and hooks over them.

    Args:
        store: The encrypted configuration directory.
        bus: Where configuration events are published; a new bus by default.
        templates: Template registry; built-ins plus the store's ``templates.json`` by default.
        validators: Validator registry; the built-in rules by default.
        sync: Redis channel shared with other replicas, if any.
    """

    def __init__(
        self,
        store: ConfigStore,
        bus: EventBus | None = None,
        templates: TemplateRegistry | None = None,
        validators: ValidatorRegistry | None = None,
        *,
        sync: RedisConfigSync | None = None,
    ) -> None:
        self.store = store
        self.bus = bus or EventBus()
        self.templates = templates or TemplateRegistry(store)
        self.validators = validators or ValidatorRegistry()
        self.sync = sync
        self._watcher: ConfigWatcher | None = None

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        encryption_key: str | SecretStr | None = None,
        key_file: Path | None = None,
        redis_url: str | None = None,
        bus: EventBus | None = None,
    ) -> ConfigManager:
        """Open a configuration directory (``AI_CONFIG_DIR``) with its key (``AI_ENCRYPTION_KEY``).

        Args:
            directory: The configuration directory; created if needed.
            encryption_key: ``AI_ENCRYPTION_KEY``; without it a key is generated once into ``key_file``.
            key_file: Where the generated key lives; ``<directory>/encryption.key`` by default.
            redis_url: ``REDIS_URL``: announce writes to, and hear them from, other replicas.
            bus: Event bus to publish on (the orchestrator's, so later features share it).
        """
        cipher = Cipher.from_settings(encryption_key, key_file or directory / "encryption.key")
        sync = RedisConfigSync(redis_url) if redis_url else None
        return cls(ConfigStore(directory, cipher), bus, sync=sync)

    # ----------------------------------------------------------------- the seed's API

    def register_template(self, name: str, template: Mapping[str, Any]) -> None:
        """Add or replace a template (saved in ``templates.json``).

        Raises:
            ConfigError: the name is a built-in's or the template is invalid.
        """
        self.templates.register(name, template)

    def register_validator(self, type_: str, validator: Validator) -> Callable[[], None]:
        """Validate every configuration of provider type ``type_`` with ``validator`` as well.

        ``validator`` (sync or async) takes the configuration and returns
        ``{"valid": bool, "errors": [str]}``. Returns a callable that removes it.
        """
        return self.validators.register(type_, validator)

    def register_hook(self, event_name: str, hook: Handler) -> Callable[[], None]:
        """Call ``hook`` (sync or async) with each event named ``event_name``.

        ``event_name`` is ``config.created``, ``config.updated`` or ``config.removed``.

        Events say ``tenant``, ``provider``, ``source`` (``api``, ``file``, ``replica``) and the
        ``before``/``after`` configuration with secrets masked. A failing hook is logged and never
        undoes the change. Returns a callable that removes the hook.

        Raises:
            ConfigError: ``event_name`` is not a configuration event; the message lists the valid ones.
        """
        if event_name not in CONFIG_EVENTS:
            raise ConfigError(
                f"unknown configuration event {event_name!r}; valid: {', '.join(CONFIG_EVENTS)}"
            )
        return self.bus.subscribe(event_name, hook)

    def render_template(self, template: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The provider settings of a template filled from ``variables``.

        Raises:
            NotFound: no such template.
            RequestError: variables are missing (all of them listed).
        """
        return self.templates.render(template, variables)

    async def validate(self, type_: str, config: Mapping[str, Any]) -> list[str]:
        """Every problem of ``config`` (built-in rules and registered validators); empty when valid."""
        return await self.validators.validate(type_, config)

    async def check(self, type_: str, config: Mapping[str, Any]) -> None:
        """Raise ``RequestError`` listing every problem of ``config``."""
        await self.validators.check(type_, config)

    async def provider_from_template(
        self, template: str, name: str, tenant: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The ``create_provider`` arguments for a provider made from a template, validated.

        Raises:
            NotFound: no such template.
            RequestError: variables are missing, or the rendered configuration is invalid (every
                problem listed).
        """
        settings = self.render_template(template, variables)
        config = {**settings, "name": name, "tenant": tenant}
        await self.validators.check(
            str(settings["type"]), config, what=f"provider {name!r} from template {template!r}"
        )
        return config

    # ----------------------------------------------------------------- persistence

    async def load(self) -> Records:
        """Read the stored providers, ``{tenant: {name: record}}``.

        Raises:
            ConfigError: a file is malformed or the key is wrong; no file is changed.
        """
        return await asyncio.to_thread(self.store.load_all)

    async def save(self, record: ProviderRecord) -> list[ConfigEvent]:
        """Store a provider (secrets encrypted), then publish the events and announce the write."""
        events = await asyncio.to_thread(self.store.put, record)
        await self._publish(events)
        if self.sync is not None and any(e.source == "api" for e in events):
            await self.sync.publish(record.tenant, record.name, "put")
        return events

    async def remove(self, tenant: str, name: str) -> list[ConfigEvent]:
        """Delete a stored provider, then publish the events and announce the write."""
        events = await asyncio.to_thread(self.store.delete, tenant, name)
        await self._publish(events)
        if self.sync is not None and any(e.source == "api" for e in events):
            await self.sync.publish(tenant, name, "delete")
        return events

    async def watch(self, interval: float = 2.0) -> ConfigWatcher:
        """Start publishing changes made to the files (and by other replicas) as events.

        Call ``load`` first: changes are relative to what was loaded.
        """
        if self._watcher is None:
            self._watcher = ConfigWatcher(self.store, interval, self._publish, sync=self.sync)
            await self._watcher.start()
        return self._watcher

    async def aclose(self) -> None:
        """Stop watching and close the Redis connections."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.aclose()
        elif self.sync is not None:
            await self.sync.aclose()

    async def _publish(self, events: list[ConfigEvent]) -> None:
        for event in events:
            await self.bus.publish(event)


__all__ = ["CONFIG_EVENTS", "ConfigManager"]
