"""Conversation history: conversations and their messages, owned by one user of one tenant.

Every read and delete is scoped to the owner: another tenant's or user's conversation is reported as
not found, never shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import bindparam, delete, insert, select, update

from podium.errors import Conflict, NotFound
from podium.storage.aio import AsyncConnection
from podium.storage.db import Database
from podium.storage.records import ConversationMessageRecord, utcnow
from podium.storage.tables import conversation_messages, conversations


class StoredMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message of a conversation, as stored."""

    id: int
    role: str
    content: str | None
    extra: dict[str, Any]
    created_at: datetime

    def as_message(self) -> dict[str, Any]:
        """The message as a chat message mapping (``role``, ``content``, and any other fields)."""
        message = {"role": self.role, **self.extra}
        if self.content is not None or "content" not in message:
            message["content"] = self.content
        return message


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation; ``messages`` is filled by :meth:`Conversations.get` only, oldest first."""

    id: str
    tenant: str
    user_id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    messages: list[StoredMessage] = []


def message_record(
    conversation_id: str, tenant: str, user_id: str, message: Mapping[str, Any]
) -> ConversationMessageRecord:
    """Build the record of one chat message (``{"role": ..., "content": ..., ...}``).

    Text content goes to the ``content`` column; content parts and every other field (``name``,
    ``tool_calls``, ``tool_call_id``) are kept in ``extra`` and come back from
    :meth:`StoredMessage.as_message`.
    """
    extra = {k: v for k, v in message.items() if k != "role"}
    content = extra.get("content")
    if content is None or isinstance(content, str):
        extra.pop("content", None)
    else:
        content = None
    return ConversationMessageRecord(
        conversation_id=conversation_id,
        tenant=tenant,
        user_id=user_id,
        role=str(message["role"]),
        content=content,
        extra=extra,
    )


async def insert_messages(
    conn: AsyncConnection, records: Sequence[ConversationMessageRecord]
) -> list[ConversationMessageRecord]:
    """Append messages inside the caller's transaction, creating conversations that do not exist.

    Returns:
        The records refused because their conversation belongs to another tenant or user.
    """
    if not records:
        return []
    first: dict[str, ConversationMessageRecord] = {}
    for r in records:
        first.setdefault(r.conversation_id, r)
    # The dialect's own insert (ON CONFLICT DO NOTHING), imported here: a gateway on SQLite never loads
    # the PostgreSQL dialect, and one on PostgreSQL never loads SQLite's.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        ignore_existing: Any = pg_insert(conversations).on_conflict_do_nothing(index_elements=["id"])
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        ignore_existing = sqlite_insert(conversations).on_conflict_do_nothing(index_elements=["id"])
    await conn.execute(
        ignore_existing,
        [
            {
                "id": cid,
                "tenant": r.tenant,
                "user_id": r.user_id,
                "title": None,
                "created_at": r.created_at,
                "updated_at": r.created_at,
                "metadata": {},
            }
            for cid, r in first.items()
        ],
    )
    c = conversations.c
    owners = {
        row.id: (row.tenant, row.user_id)
        for row in await conn.execute(select(c.id, c.tenant, c.user_id).where(c.id.in_(list(first))))
    }
    accepted = [r for r in records if owners.get(r.conversation_id) == (r.tenant, r.user_id)]
    if accepted:
        await conn.execute(
            insert(conversation_messages),
            [
                {
                    "conversation_id": r.conversation_id,
                    "role": r.role,
                    "content": r.content,
                    "extra": r.extra,
                    "created_at": r.created_at,
                }
                for r in accepted
            ],
        )
        latest: dict[str, datetime] = {}
        for r in accepted:
            latest[r.conversation_id] = max(latest.get(r.conversation_id, r.created_at), r.created_at)
        await conn.execute(
            update(conversations)
            .where(c.id == bindparam("b_id"), c.updated_at < bindparam("b_ts"))
            .values(updated_at=bindparam("b_ts")),
            [{"b_id": cid, "b_ts": ts} for cid, ts in latest.items()],
        )
    return [r for r in records if owners.get(r.conversation_id) != (r.tenant, r.user_id)]


class Conversations:
    """Create, extend, read and delete conversations, always scoped to one tenant and user.

    Args:
        db: The database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        tenant: str,
        user_id: str,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        conversation_id: str | None = None,
    ) -> Conversation:
        """Start a conversation (with a new random id unless one is given)."""
        now = utcnow()
        conv = Conversation(
            id=conversation_id or uuid.uuid4().hex,
            tenant=tenant,
            user_id=user_id,
            title=title,
            created_at=now,
            updated_at=now,
            metadata=dict(metadata or {}),
        )
        async with self.db.transaction() as conn:
            await conn.execute(insert(conversations), [_conversation_row(conv)])
        return conv

    async def append(
        self, conversation_id: str, messages: Sequence[Mapping[str, Any]], *, tenant: str, user_id: str
    ) -> None:
        """Append chat messages (``{"role": ..., "content": ..., ...}``) to an existing conversation.

        Raises:
            NotFound: no such conversation for this tenant and user.
        """
        records = [message_record(conversation_id, tenant, user_id, m) for m in messages]
        async with self.db.transaction() as conn:
            await self._owned(conn, conversation_id, tenant, user_id)
            await insert_messages(conn, records)

    async def get(
        self, conversation_id: str, *, tenant: str, user_id: str, last: int | None = None
    ) -> Conversation:
        """A conversation with its messages, oldest first (only the ``last`` ones when given).

        Raises:
            NotFound: no such conversation for this tenant and user.
        """
        m = conversation_messages.c
        async with self.db.engine.connect() as conn:
            conv = await self._owned(conn, conversation_id, tenant, user_id)
            query = select(conversation_messages).where(m.conversation_id == conversation_id)
            query = query.order_by(m.id.desc()).limit(last) if last is not None else query.order_by(m.id)
            rows = (await conn.execute(query)).all()
        messages = [
            StoredMessage(id=r.id, role=r.role, content=r.content, extra=r.extra, created_at=r.created_at)
            for r in rows
        ]
        if last is not None:
            messages.reverse()
        return msgspec.structs.replace(conv, messages=messages)

    async def list_for_user(
        self, *, tenant: str, user_id: str, limit: int = 50, before: datetime | None = None
    ) -> list[Conversation]:
        """A user's conversations, most recently updated first, without their messages.

        Args:
            tenant: The tenant.
            user_id: The user.
            limit: At most this many.
            before: Only conversations last updated before this time (paging).
        """
        c = conversations.c
        query = select(conversations).where(c.tenant == tenant, c.user_id == user_id)
        if before is not None:
            query = query.where(c.updated_at < before)
        query = query.order_by(c.updated_at.desc(), c.id).limit(limit)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Conversation(**row) for row in rows]

    async def delete(self, conversation_id: str, *, tenant: str, user_id: str) -> None:
        """Delete a conversation and all its messages.

        Raises:
            NotFound: no such conversation for this tenant and user.
        """
        c = conversations.c
        async with self.db.transaction() as conn:
            result = await conn.execute(
                delete(conversations).where(c.id == conversation_id, c.tenant == tenant, c.user_id == user_id)
            )
        if result.rowcount == 0:
            raise _not_found(conversation_id)

    async def delete_for_user(self, *, tenant: str, user_id: str) -> int:
        """Delete every conversation of a user (and their messages); returns how many were deleted."""
        c = conversations.c
        async with self.db.transaction() as conn:
            result = await conn.execute(delete(conversations).where(c.tenant == tenant, c.user_id == user_id))
        return int(result.rowcount)

    async def dump(self, *, tenant: str | None = None) -> list[Conversation]:
        """Every conversation (of one tenant, or of all) with its messages, for export."""
        c, m = conversations.c, conversation_messages.c
        query = select(conversations).order_by(c.created_at, c.id)
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        async with self.db.engine.connect() as conn:
            convs = [Conversation(**row) for row in (await conn.execute(query)).mappings().all()]
            by_id: dict[str, list[StoredMessage]] = {conv.id: [] for conv in convs}
            rows = await conn.execute(select(conversation_messages).order_by(m.conversation_id, m.id))
            for r in rows:
                if r.conversation_id in by_id:
                    by_id[r.conversation_id].append(
                        StoredMessage(
                            id=r.id, role=r.role, content=r.content, extra=r.extra, created_at=r.created_at
                        )
                    )
        return [msgspec.structs.replace(conv, messages=by_id[conv.id]) for conv in convs]

    async def restore(self, items: Sequence[Conversation]) -> int:
        """Insert exported conversations as they were (ids, titles, times, messages in order).

        Returns:
            How many conversations were inserted.

        Raises:
            Conflict: a conversation with one of these ids already exists; nothing is inserted.
        """
        if not items:
            return 0
        c = conversations.c
        async with self.db.transaction() as conn:
            ids = [conv.id for conv in items]
            existing = (await conn.execute(select(c.id).where(c.id.in_(ids)))).scalars().all()
            if existing:
                raise Conflict(
                    f"{len(existing)} conversations already exist (e.g. {existing[0]!r}); "
                    "import into a fresh instance or delete them first"
                )
            await conn.execute(insert(conversations), [_conversation_row(conv) for conv in items])
            rows = [
                {
                    "conversation_id": conv.id,
                    "role": msg.role,
                    "content": msg.content,
                    "extra": msg.extra,
                    "created_at": msg.created_at,
                }
                for conv in items
                for msg in conv.messages
            ]
            if rows:
                await conn.execute(insert(conversation_messages), rows)
        return len(items)

    @staticmethod
    async def _owned(conn: AsyncConnection, conversation_id: str, tenant: str, user_id: str) -> Conversation:
        c = conversations.c
        row = (
            (
                await conn.execute(
                    select(conversations).where(
                        c.id == conversation_id, c.tenant == tenant, c.user_id == user_id
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise _not_found(conversation_id)
        return Conversation(**row)


def _conversation_row(conv: Conversation) -> dict[str, Any]:
    return {f: getattr(conv, f) for f in Conversation.__struct_fields__ if f != "messages"}


def _not_found(conversation_id: str) -> NotFound:
    return NotFound(
        f"conversation {conversation_id!r} not found for this user; list conversations to see theirs"
    )
