"""The orchestrator's durable side: database, background record writer, encrypted config store.

Opened once from ``Settings`` by ``Orchestrator.start``; a bare ``Orchestrator()`` has none of it and
keeps everything in memory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from podium._actor import current_actor
from podium.config.manager import ConfigManager
from podium.events import ConfigEvent, EventBus
from podium.settings import Settings
from podium.storage.audit import config_change
from podium.storage.db import Database
from podium.storage.migrate import migrate
from podium.storage.writer import RecordWriter

logger = logging.getLogger(__name__)


@dataclass
class Durable:
    """What an orchestrator started from settings owns beyond memory."""

    database: Database
    writer: RecordWriter
    config_manager: ConfigManager

    @classmethod
    async def open(cls, settings: Settings, bus: EventBus) -> Durable:
        """Open (and migrate) the database, start the writer, open the config directory.

        Raises:
            ConfigError: the database or the config directory cannot be used (wrong key, bad file);
                nothing is changed on disk.
        """
        storage = settings.storage
        database = Database(storage.database_url)
        try:
            await migrate(database)
            manager = ConfigManager.open(
                settings.config_store.directory,
                encryption_key=settings.config_store.encryption_key,
                redis_url=settings.redis_url,
                bus=bus,
            )
        except BaseException:
            await database.dispose()
            raise
        writer = RecordWriter(
            database,
            max_queue=storage.queue_size,
            batch_size=storage.batch_size,
            flush_interval=storage.flush_interval,
        )
        writer.start()
        durable = cls(database, writer, manager)
        bus.subscribe("config.*", durable._audit_config_change)
        return durable

    def _audit_config_change(self, event: ConfigEvent) -> None:
        # Changes made through podium are attributed to whoever is acting; edits of the files and
        # other replicas' writes to their source.
        actor = current_actor.get() if event.source == "api" else event.source
        self.writer.submit(
            config_change(
                actor=actor,
                action=type(event).name,
                target=f"provider:{event.provider}",
                tenant=event.tenant,
                before=event.before,
                after=event.after,
            )
        )

    async def aclose(self) -> None:
        """Stop watching, write what is queued, close the database."""
        try:
            await self.config_manager.aclose()
        finally:
            try:
                stats = await self.writer.aclose()
                if stats.queued:
                    logger.error("%d records could not be written before shutdown", stats.queued)
            finally:
                await self.database.dispose()
