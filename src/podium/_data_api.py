"""The Orchestrator's history and export/import methods (started orchestrators keep history)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from podium import data_transfer
from podium._durable import Durable
from podium.errors import ConfigError
from podium.storage.conversations import Conversation, Conversations

if TYPE_CHECKING:
    from podium.orchestrator import Orchestrator


class DataApi:
    """Mixed into ``Orchestrator``: conversation history, export and import."""

    _durable: Durable | None

    def _need_durable(self) -> Durable:
        if self._durable is None:
            raise ConfigError(
                "this orchestrator keeps everything in memory; build it with "
                "Orchestrator.from_config(...) (or Orchestrator(settings=...) and await start())"
            )
        return self._durable

    def _conversations(self) -> Conversations:
        return Conversations(self._need_durable().database)

    async def get_history(
        self, user_id: str, tenant: str = "default", *, limit: int = 50
    ) -> list[Conversation]:
        """A user's conversations, newest first, without their messages.

        Records still waiting in the writer's queue are written first, so a request just answered
        is included.
        """
        durable = self._need_durable()
        await durable.writer.flush()
        return await self._conversations().list_for_user(tenant=tenant, user_id=user_id, limit=limit)

    async def get_conversation(
        self, conversation_id: str, user_id: str, tenant: str = "default"
    ) -> Conversation:
        """One of a user's conversations with its messages, oldest first.

        Raises:
            NotFound: no such conversation for this user and tenant (another's is never shown).
        """
        await self._need_durable().writer.flush()
        return await self._conversations().get(conversation_id, tenant=tenant, user_id=user_id)

    async def delete_history(
        self, user_id: str, tenant: str = "default", *, conversation_id: str | None = None
    ) -> int:
        """Delete one conversation of a user, or all of them; returns how many were deleted.

        Raises:
            NotFound: the named conversation does not exist for this user and tenant.
        """
        await self._need_durable().writer.flush()
        conversations = self._conversations()
        if conversation_id is not None:
            await conversations.delete(conversation_id, tenant=tenant, user_id=user_id)
            return 1
        return await conversations.delete_for_user(tenant=tenant, user_id=user_id)

    # ------------------------------------------------------------ export / import

    async def export_data(
        self, *, include_secrets: bool = False, include_history: bool = True
    ) -> dict[str, Any]:
        """Providers, templates, tenants and conversation history as one JSON-ready document.

        Args:
            include_secrets: Put API keys and other secrets in the document in clear. Without them it
                holds no secret at all, and importing asks for them.
            include_history: Include every conversation with its messages.
        """
        return await data_transfer.export_data(
            cast("Orchestrator", self), include_secrets=include_secrets, include_history=include_history
        )

    async def import_data(
        self, data: Mapping[str, Any], *, secrets: Mapping[str, Mapping[str, str]] | None = None
    ) -> dict[str, int]:
        """Recreate an export in this instance; all or nothing.

        Args:
            data: A document from ``export_data``.
            secrets: The secrets an export without them needs: ``{"tenant/provider": {"api_key": ...}}``.

        Raises:
            MissingSecrets: secrets are needed (the error lists them); nothing is imported.
            Conflict: something in the document already exists; nothing is imported.
        """
        return await data_transfer.import_data(cast("Orchestrator", self), data, secrets=secrets)
