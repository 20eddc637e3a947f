from __future__ import annotations

import pytest
from sqlalchemy import text

from podium.errors import NotFound
from podium.storage import Conversations, Database

TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
}


async def _count_messages(db: Database, conversation_id: str) -> int:
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT count(*) FROM conversation_messages WHERE conversation_id = :c"),
            {"c": conversation_id},
        )
        return int(result.scalar_one())


async def test_create_append_and_get_returns_messages_in_order(db: Database) -> None:
    convs = Conversations(db)
    conv = await convs.create(tenant="acme", user_id="alice", title="Weather", metadata={"source": "api"})
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "content": "-3C, snow", "tool_call_id": "call_1"},
    ]
    await convs.append(conv.id, messages[:2], tenant="acme", user_id="alice")
    await convs.append(conv.id, messages[2:], tenant="acme", user_id="alice")

    got = await convs.get(conv.id, tenant="acme", user_id="alice")
    assert (got.title, got.metadata, got.tenant, got.user_id) == (
        "Weather",
        {"source": "api"},
        "acme",
        "alice",
    )
    assert [m.as_message() for m in got.messages] == messages
    assert got.updated_at >= got.created_at

    last_two = await convs.get(conv.id, tenant="acme", user_id="alice", last=2)
    assert [m.role for m in last_two.messages] == ["assistant", "tool"]


async def test_another_tenant_or_user_cannot_see_append_or_delete(db: Database) -> None:
    convs = Conversations(db)
    conv = await convs.create(tenant="acme", user_id="alice")
    await convs.append(conv.id, [{"role": "user", "content": "secret plans"}], tenant="acme", user_id="alice")

    for tenant, user in (("globex", "alice"), ("acme", "bob")):
        with pytest.raises(NotFound):
            await convs.get(conv.id, tenant=tenant, user_id=user)
        with pytest.raises(NotFound):
            await convs.append(conv.id, [{"role": "user", "content": "hi"}], tenant=tenant, user_id=user)
        with pytest.raises(NotFound):
            await convs.delete(conv.id, tenant=tenant, user_id=user)
        assert await convs.list_for_user(tenant=tenant, user_id=user) == []

    assert await _count_messages(db, conv.id) == 1
    assert len((await convs.get(conv.id, tenant="acme", user_id="alice")).messages) == 1


async def test_unknown_conversation_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="nope"):
        await Conversations(db).get("nope", tenant="acme", user_id="alice")


async def test_list_for_user_most_recent_first(db: Database) -> None:
    convs = Conversations(db)
    first = await convs.create(tenant="acme", user_id="alice", title="first")
    second = await convs.create(tenant="acme", user_id="alice", title="second")
    await convs.create(tenant="acme", user_id="bob", title="bob's")
    assert [c.title for c in await convs.list_for_user(tenant="acme", user_id="alice")] == ["second", "first"]

    # A new message moves a conversation to the top.
    await convs.append(first.id, [{"role": "user", "content": "again"}], tenant="acme", user_id="alice")
    listed = await convs.list_for_user(tenant="acme", user_id="alice")
    assert [c.id for c in listed] == [first.id, second.id]
    assert all(c.messages == [] for c in listed)
    assert [c.id for c in await convs.list_for_user(tenant="acme", user_id="alice", limit=1)] == [first.id]


async def test_delete_removes_the_conversation_and_its_messages(db: Database) -> None:
    convs = Conversations(db)
    keep = await convs.create(tenant="acme", user_id="alice")
    gone = await convs.create(tenant="acme", user_id="alice")
    for conv in (keep, gone):
        await convs.append(conv.id, [{"role": "user", "content": "x"}] * 3, tenant="acme", user_id="alice")

    await convs.delete(gone.id, tenant="acme", user_id="alice")

    with pytest.raises(NotFound):
        await convs.get(gone.id, tenant="acme", user_id="alice")
    assert await _count_messages(db, gone.id) == 0
    assert await _count_messages(db, keep.id) == 3


async def test_delete_for_user_removes_only_that_users_history(db: Database) -> None:
    convs = Conversations(db)
    for _ in range(3):
        conv = await convs.create(tenant="acme", user_id="alice")
        await convs.append(conv.id, [{"role": "user", "content": "x"}], tenant="acme", user_id="alice")
    bobs = await convs.create(tenant="acme", user_id="bob")
    other_tenant = await convs.create(tenant="globex", user_id="alice")

    assert await convs.delete_for_user(tenant="acme", user_id="alice") == 3
    assert await convs.list_for_user(tenant="acme", user_id="alice") == []
    assert [c.id for c in await convs.list_for_user(tenant="acme", user_id="bob")] == [bobs.id]
    assert [c.id for c in await convs.list_for_user(tenant="globex", user_id="alice")] == [other_tenant.id]
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM conversation_messages"))).scalar_one() == 0
