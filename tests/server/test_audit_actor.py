"""The audit trail names who acted: the authenticated caller of each served change and request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podium._actor import current_actor
from podium.auth import ApiKeyAuthenticator
from podium.auth.principal import Principal
from podium.orchestrator import Orchestrator
from podium.server import create_app
from podium.storage import ApiKeys
from podium.storage.audit import list_events
from podium.testing import SimulatedOpenAI, http_scope
from tests.server.live import authenticator, serve, token
from tests.server.test_governance_api import call
from tests.test_persistence import overrides

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def test_served_changes_and_requests_are_audited_as_their_callers_key(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    async with SimulatedOpenAI("oa") as up:
        provider = {
            "type": "openai",
            "base_url": up.base_url,
            "api_key": "sk-up",
            "default_model": "gpt-4o-mini",
        }
        orch = await Orchestrator.from_config(None, **overrides(tmp_path, url))
        try:
            await orch.create_provider(name="lib", tenant="acme", **provider)
            await orch.chat("from the library", tenant="acme")
            assert orch.database is not None
            keys = ApiKeyAuthenticator(ApiKeys(orch.database), refresh_interval=3600)
            ops = await keys.create("acme", "tenant_admin", "ops")
            caller = {"authorization": f"Bearer {ops.plaintext}"}
            async with serve(create_app(orch, authenticator=keys)) as base:
                made = await call("POST", f"{base}/api/ai/providers", {"name": "api", **provider}, caller)
                assert made.status == 201, made.body
                answer = await call("POST", f"{base}/v1/chat/completions", CHAT, caller)
                assert answer.status == 200, answer.body
                # A stream's event is written when it ends, after the request's first task step.
                streamed = await call("POST", f"{base}/v1/chat/completions", {**CHAT, "stream": True}, caller)
                assert streamed.status == 200, streamed.body
            assert orch.writer is not None and await orch.writer.flush(timeout=10)
            events = await list_events(orch.database, tenant="acme")
        finally:
            await orch.aclose()
    key_actor = f"key:{ops.key.id}"
    created = {e.target: e.actor for e in events if e.action == "config.created"}
    assert created == {"provider:lib": "library", "provider:api": key_actor}
    served = sorted(e.actor for e in events if e.action == "request.completed")
    assert served == sorted(["library", key_actor, key_actor])
    # The served requests' metadata names the key whole: a key's id is no secret.
    key_ids = [
        e.details["metadata"].get("api_key_id")
        for e in events
        if e.action == "request.completed" and e.actor == key_actor
    ]
    assert key_ids == [ops.key.id, ops.key.id]


async def test_a_request_served_in_the_callers_task_leaves_its_actor_as_it_was() -> None:
    # An in-process transport runs the app in the caller's task: the caller it authenticated must
    # not become the actor of what that task does next.
    app = create_app(Orchestrator(), authenticator=authenticator())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    auth = f"Bearer {token('admin', 'acme')}".encode()
    scope = http_scope("GET", "/api/ai/providers", [(b"host", b"t"), (b"authorization", auth)])
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert current_actor.get() == "library"


def test_each_way_of_authenticating_names_its_actor() -> None:
    by_key = Principal(subject="k1", tenant="acme", role="user", method="api_key", key_id="k1")
    by_jwt = Principal(subject="alice", tenant="acme", role="user", method="jwt")
    nobody = Principal(subject="anonymous", tenant="default", role="admin", method="none")
    assert (by_key.actor, by_jwt.actor, nobody.actor) == ("key:k1", "jwt:alice", "anonymous")
