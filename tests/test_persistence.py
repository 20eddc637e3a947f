"""An orchestrator started from settings, as a user runs it: config.yaml, the encrypted config
directory, the request log, history, the audit trail, export/import. SQLite and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from podium import ConfigError, Conflict, NotFound, Orchestrator, ProviderInfo, RequestError
from podium.data_transfer import MissingSecrets
from podium.events import ConfigEvent
from podium.storage import Database, RequestLog
from podium.storage.audit import list_events, verify
from podium.testing import SimulatedOpenAI
from tests.services import REDIS_URL, require_redis
from tests.storage import database_url

KEY = "sk-persist-0123456789abcdefSECRET"
KEY2 = "sk-rotated-9876543210zyxwvuNEWKEY"
HOOK = "https://hooks.example.com/services/T000/B000/SECRETPATHxyz"


@pytest.fixture
async def upstream() -> AsyncIterator[SimulatedOpenAI]:
    async with SimulatedOpenAI("oa") as up:
        yield up


@pytest.fixture
async def other_upstream() -> AsyncIterator[SimulatedOpenAI]:
    async with SimulatedOpenAI("other") as up:
        yield up


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with database_url(request.param, tmp_path) as url:
        yield url


async def create_gpt(orch: Orchestrator, upstream: SimulatedOpenAI, **settings: Any) -> ProviderInfo:
    """Tenant acme's OpenAI provider "gpt" on ``upstream``, keyed with ``KEY``."""
    return await orch.create_provider(
        type="openai", name="gpt", tenant="acme", api_key=KEY, base_url=upstream.base_url, **settings
    )


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def overrides(data_dir: Path, db_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "framework": {"data_dir": str(data_dir)},
        "storage": {"database_url": db_url, "flush_interval": 0.05},
        "config_store": {"encryption_key": "k" * 32, "watch_interval": 0.1},
        **extra,
    }


async def start(data_dir: Path, db_url: str, **extra: Any) -> Orchestrator:
    return await Orchestrator.from_config(None, **overrides(data_dir, db_url, **extra))


async def test_config_yaml_builds_providers_and_env_keys_fill_in(
    tmp_path: Path, upstream: SimulatedOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
framework:
  dataDir: {tmp_path / "data"}
providers:
  - type: openai
    name: gpt
    tenant: my-app
    baseUrl: {upstream.base_url}
    defaultModel: gpt-4o-mini
"""
    )
    orch = await Orchestrator.from_config(config)
    try:
        r = await orch.chat("hello", tenant="my-app")
        assert r.content == "[oa] you said: hello"
        assert upstream.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
        assert orch.get_provider("gpt", "my-app").api_key == "sk-...CRET"
    finally:
        await orch.aclose()


async def test_a_bad_provider_entry_fails_at_start_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
framework: {{dataDir: {tmp_path}}}
providers:
  - {{type: openai, name: gpt, apiKey: {KEY}, temprature: 0.3}}
"""
    )
    with pytest.raises(ConfigError) as info:
        await Orchestrator.from_config(config)
    assert "'gpt'" in info.value.message and "temprature" in info.value.message
    assert KEY not in info.value.message


async def test_runtime_providers_persist_encrypted_and_survive_a_restart(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    orch = await start(tmp_path, db_url)
    try:
        await create_gpt(orch, upstream, default_model="gpt-4o-mini", headers={"x-team": "blue"})
        await orch.update_provider("gpt", "acme", api_key=KEY2, priority=3)
        assert (await orch.chat("one", tenant="acme")).content == "[oa] you said: one"
        exported = await orch.export_data(include_secrets=False)
    finally:
        await orch.aclose()

    again = await start(tmp_path, db_url)
    try:
        info = again.get_provider("gpt", "acme")
        assert (info.priority, info.headers, info.api_key) == (3, {"x-team": "blue"}, "sk-...WKEY")
        assert (await again.chat("two", tenant="acme")).content == "[oa] you said: two"
        assert upstream.requests[-1].headers["Authorization"] == f"Bearer {KEY2}"
    finally:
        await again.aclose()

    # No secret in clear anywhere podium wrote: config files, the database file, logs, the export.
    written = b"".join(p.read_bytes() for p in files_under(tmp_path))
    assert written, "podium wrote nothing?"
    for secret in (KEY, KEY2):
        assert secret.encode() not in written
        assert secret not in caplog.text
        assert secret not in json.dumps(exported)
    assert any(p.name == "tenant-acme.json" for p in files_under(tmp_path))


async def test_wrong_key_is_a_clear_error_and_destroys_nothing(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI
) -> None:
    orch = await start(tmp_path, db_url)
    try:
        await create_gpt(orch, upstream)
    finally:
        await orch.aclose()
    files = {p: p.read_bytes() for p in (tmp_path / "config").iterdir()}
    with pytest.raises(ConfigError, match=r"(?i)key"):
        await Orchestrator.from_config(
            None, **overrides(tmp_path, db_url, config_store={"encryption_key": "w" * 32})
        )
    assert {p: p.read_bytes() for p in (tmp_path / "config").iterdir()} == files
    again = await start(tmp_path, db_url)
    try:
        assert again.get_provider("gpt", "acme").api_key == "sk-...CRET"
    finally:
        await again.aclose()


async def test_editing_a_tenant_file_fires_config_updated_and_takes_effect(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI, other_upstream: SimulatedOpenAI
) -> None:
    orch = await start(tmp_path, db_url)
    try:
        await create_gpt(orch, upstream, default_model="gpt-4o-mini")
        seen: list[ConfigEvent] = []
        updated = asyncio.Event()

        def hook(event: ConfigEvent) -> None:
            seen.append(event)
            updated.set()

        orch.config_manager.register_hook("config.updated", hook)
        path = tmp_path / "config" / "tenant-acme.json"
        doc = json.loads(path.read_text())
        assert KEY not in path.read_text()
        entry = doc["providers"]["gpt"]
        entry["settings"]["base_url"] = other_upstream.base_url
        path.write_text(json.dumps(doc))
        await asyncio.wait_for(updated.wait(), timeout=5)  # the watch interval is 0.1 s
        assert (seen[0].tenant, seen[0].provider, seen[0].source) == ("acme", "gpt", "file")
        r = await orch.chat("after the edit", tenant="acme")
        assert r.content == "[other] you said: after the edit"
        # The edit kept the encrypted key: the new upstream got the same credentials.
        assert other_upstream.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
    finally:
        await orch.aclose()


async def test_requests_are_logged_and_audited_off_the_request_path(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI
) -> None:
    orch = await start(tmp_path, db_url)
    try:
        await create_gpt(
            orch,
            upstream,
            default_model="gpt-4o-mini",
            models=["gpt-4o-mini", "text-embedding-3-small"],
        )
        await orch.chat("hello", tenant="acme", user="u1")
        async for _ in orch.stream("streamed", tenant="acme"):
            pass
        agen = orch.stream("cut off", tenant="acme").__aiter__()
        await agen.__anext__()
        await agen.aclose()  # the caller walks away mid-stream
        await orch.embed("vector", tenant="acme", model="text-embedding-3-small")
        with pytest.raises(RequestError):
            await orch.chat("x", tenant="acme", model="no-such-model")
        assert orch.writer is not None and await orch.writer.flush(timeout=10)
        db = orch.database
        assert db is not None
        rows = await RequestLog(db).query(tenant="acme")
        by_status = sorted((r.task_type, r.status) for r in rows)
        assert by_status == [
            ("chat", "aborted"),
            ("chat", "error"),
            ("chat", "ok"),
            ("chat", "ok"),
            ("embedding", "ok"),
        ]
        ok_chat = next(r for r in rows if r.status == "ok" and r.user_id == "u1")
        assert (ok_chat.provider, ok_chat.model) == ("gpt", "gpt-4o-mini")
        assert ok_chat.prompt_tokens > 0 and ok_chat.completion_tokens > 0
        failed = next(r for r in rows if r.status == "error")
        assert failed.error_class == "ModelNotFound"
        events = await list_events(db, tenant="acme")
        actions = [e.action for e in events]
        assert actions.count("config.created") == 1
        assert actions.count("request.completed") + actions.count("request.failed") == 5
        assert all(e.actor == "library" for e in events)
        assert (await verify(db)).ok
    finally:
        await orch.aclose()


async def test_record_requests_off_leaves_no_request_record_but_keeps_the_rest(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI
) -> None:
    storage = {"database_url": db_url, "flush_interval": 0.05, "record_requests": False}
    orch = await start(tmp_path, db_url, storage=storage)
    try:
        await create_gpt(orch, upstream, default_model="gpt-4o-mini")
        await orch.chat("hello", tenant="acme", user="alice", conversation_id="c1")
        async for _ in orch.stream("streamed", tenant="acme"):
            pass
        assert orch.writer is not None and await orch.writer.flush(timeout=10)
        db = orch.database
        assert db is not None
        assert await RequestLog(db).query(tenant="acme") == []
        events = await list_events(db, tenant="acme")
        # The configuration change is audited still; the requests are not.
        assert [e.action for e in events] == ["config.created"]
        assert (await verify(db)).ok
        # History is its own switch: alice's conversation is kept.
        conversation = await orch.get_conversation("c1", "alice", "acme")
        assert [m.role for m in conversation.messages] == ["user", "assistant"]
        # Day analytics cannot read an empty log: they come from the ledger, which counted both.
        analytics = await orch.get_analytics("7d", tenant="acme")
        assert (analytics.source, analytics.total_requests) == ("ledger", 2)
    finally:
        await orch.aclose()


async def test_record_requests_and_history_off_write_nothing_per_request(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI
) -> None:
    storage = {
        "database_url": db_url,
        "flush_interval": 0.05,
        "record_requests": False,
        "store_history": False,
    }
    orch = await start(tmp_path, db_url, storage=storage)
    try:
        await create_gpt(orch, upstream, default_model="gpt-4o-mini")
        assert orch.writer is not None and await orch.writer.flush(timeout=10)
        written = orch.writer.stats().written  # the provider's creation, audited
        for i in range(5):
            await orch.chat(f"n{i}", tenant="acme", user="alice", conversation_id="c1")
        assert await orch.writer.flush(timeout=10)
        assert orch.writer.stats().written == written
        assert await orch.get_history("alice", "acme") == []
    finally:
        await orch.aclose()


async def test_a_database_slower_than_the_requests_slows_them_instead_of_losing_records(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI
) -> None:
    # A slow disk: each INSERT into the request log takes 30 ms (in the driver's thread). 20 callers
    # keep sending; each request makes 2 records (the log row, the audit event) for a queue of 100.
    storage = {"database_url": db_url, "queue_size": 100, "batch_size": 20, "flush_interval": 0.05}
    orch = await start(tmp_path, db_url, storage=storage)
    try:
        await create_gpt(orch, upstream, default_model="gpt-4o-mini")
        assert orch.database is not None and orch.writer is not None

        def slow_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.startswith("INSERT INTO request_log"):
                time.sleep(0.03)

        event.listen(orch.database.engine.sync_engine, "before_cursor_execute", slow_insert)

        async def caller(c: int) -> None:
            for i in range(15):
                await orch.chat(f"c{c} n{i}", tenant="acme")

        await asyncio.gather(*(caller(c) for c in range(20)))
        assert await orch.writer.flush(timeout=60)
        assert orch.writer.stats().dropped == 0
        assert len(await RequestLog(orch.database).query(tenant="acme", limit=1000)) == 300
        events = await list_events(orch.database, tenant="acme", limit=1000)
        assert sum(e.action == "request.completed" for e in events) == 300
        assert (await verify(orch.database)).ok
    finally:
        await orch.aclose()


async def test_history_is_kept_per_user_and_deletable(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI
) -> None:
    orch = await start(tmp_path, db_url)
    try:
        await create_gpt(orch, upstream, default_model="gpt-4o-mini")
        await orch.chat("first", tenant="acme", user="alice", conversation_id="c1")
        await orch.chat(
            [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "[oa] you said: first"},
                {"role": "user", "content": "second"},
            ],
            tenant="acme",
            user="alice",
            conversation_id="c1",
        )
        await orch.chat("bob's", tenant="acme", user="bob")
        convs = await orch.get_history("alice", "acme")
        assert [c.id for c in convs] == ["c1"]
        full = await orch.get_conversation("c1", "alice", "acme")
        assert [(m.role, m.content) for m in full.messages] == [
            ("user", "first"),
            ("assistant", "[oa] you said: first"),
            ("user", "second"),
            ("assistant", "[oa] you said: second"),
        ]
        with pytest.raises(NotFound):
            await orch.get_conversation("c1", "bob", "acme")  # another user's is not found
        with pytest.raises(NotFound):
            await orch.get_conversation("c1", "alice", "other-tenant")
        assert await orch.delete_history("alice", "acme") == 1
        assert await orch.get_history("alice", "acme") == []
        assert len(await orch.get_history("bob", "acme")) == 1
    finally:
        await orch.aclose()


async def test_export_import_round_trip_reproduces_the_instance(
    tmp_path: Path, db_url: str, upstream: SimulatedOpenAI
) -> None:
    src = await start(tmp_path / "a", db_url)
    try:
        await create_gpt(src, upstream, default_model="gpt-4o-mini", priority=2, headers={"x-team": "blue"})
        src.config_manager.register_template(
            "team-proxy", {"type": "openai", "baseUrl": "{{URL}}", "apiKey": "{{API_KEY}}"}
        )
        await src.create_provider_from_template(
            "team-proxy", "proxy", "beta", {"URL": upstream.base_url, "API_KEY": KEY2}
        )
        await src.chat("remember me", tenant="acme", user="alice", conversation_id="c9")
        src.set_rate_limit("acme", {"requestsPerMinute": 600, "tokensPerSecond": 2000}, "tenant")
        src.set_budget("acme", daily=5.0, monthly=100.0, alert_webhook=HOOK, enforce_hard_limit=True)
        full = await src.export_data(include_secrets=True)
        bare = await src.export_data(include_secrets=False)
        before = src.list_providers()
        history = await src.get_conversation("c9", "alice", "acme")
    finally:
        await src.aclose()
    assert KEY not in json.dumps(bare) and KEY2 not in json.dumps(bare) and HOOK not in json.dumps(bare)
    assert bare["tenants"] == ["acme", "beta"]

    # A fresh instance with its own files but, for PostgreSQL, the same server: use another database
    # file for SQLite; for PostgreSQL, a fresh database.
    async with database_url(
        "sqlite" if db_url.startswith("sqlite") else "postgresql", tmp_path / "b"
    ) as url2:
        dst = await start(tmp_path / "b", url2)
        try:
            with pytest.raises(MissingSecrets) as info:
                await dst.import_data(bare)
            assert info.value.missing == {
                "acme/gpt": ["api_key"],
                "beta/proxy": ["api_key"],
                "budget:acme": ["alert_webhook"],
            }
            assert dst.list_providers() == []  # nothing half-imported
            counts = await dst.import_data(
                bare,
                secrets={
                    "acme/gpt": {"api_key": KEY},
                    "beta/proxy": {"api_key": KEY2},
                    "budget:acme": {"alert_webhook": HOOK},
                },
            )
            assert counts == {"providers": 2, "templates": 1, "limits": 1, "budgets": 1, "conversations": 1}
            limits = (await dst.get_rate_limit_status("acme")).limits
            assert limits == {"requestsPerMinute": 600, "tokensPerSecond": 2000, "maxWait": 0}
            budget = await dst.get_budget_status("acme")
            assert budget.enforce_hard_limit
            assert {p.period: p.limit for p in budget.periods} == {"daily": 5.0, "monthly": 100.0}
            assert budget.alert_webhook == "https://hooks.example.com/.."
            assert dst.list_providers() == before
            assert dst.templates.get("team-proxy")["baseUrl"] == "{{URL}}"
            copy = await dst.get_conversation("c9", "alice", "acme")
            assert copy == history
            with pytest.raises(Conflict):
                await dst.import_data(full)
            r = await dst.chat("still works", tenant="beta", model="gpt-4o-mini")
            assert upstream.requests[-1].headers["Authorization"] == f"Bearer {KEY2}"
            assert r.content == "[oa] you said: still works"
        finally:
            await dst.aclose()


async def test_sigterm_under_load_loses_no_record(tmp_path: Path, db_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.sigterm_load",
        str(tmp_path),
        db_url,
        stdout=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.stdout is not None
    answered = sent = 0

    async def read_until(count: int) -> None:
        nonlocal answered, sent
        assert proc.stdout is not None
        while answered < count:
            line = (await proc.stdout.readline()).strip()
            assert line, "the load process died"
            answered += line == b"DONE"
            sent += line == b"SENT"

    try:
        await asyncio.wait_for(read_until(200), timeout=60)
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    answered += rest.split().count(b"DONE")
    assert proc.returncode == -signal.SIGTERM
    out = rest.split()
    # Every request sent before the signal was either answered and recorded, or turned away at the
    # door (ShuttingDown) without being served; none is lost in between.
    served = sent - out.count(b"REFUSED") + out.count(b"SENT")
    assert served == answered
    db = Database(db_url)
    try:
        rows = await RequestLog(db).query(tenant="load", limit=100_000)
        assert len(rows) == served
        assert all(r.status == "ok" for r in rows)
        events = await list_events(db, tenant="load", action="request.*", limit=100_000)
        assert len(events) == answered
        assert (await verify(db)).ok
    finally:
        await db.dispose()


async def test_a_replica_sharing_redis_picks_up_changes_without_restart(
    tmp_path: Path, upstream: SimulatedOpenAI
) -> None:
    require_redis()
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    # File polling every 60 s: within this test only the Redis announcement can deliver the change.
    slow = {"config_store": {"encryption_key": "k" * 32, "watch_interval": 60}, "redis_url": REDIS_URL}
    a = await Orchestrator.from_config(None, **{**overrides(tmp_path, db_url), **slow})
    b = await Orchestrator.from_config(None, **{**overrides(tmp_path, db_url), **slow})
    try:
        heard = asyncio.Event()
        seen: list[ConfigEvent] = []

        def hook(event: ConfigEvent) -> None:
            seen.append(event)
            heard.set()

        b.config_manager.register_hook("config.created", hook)
        await create_gpt(a, upstream, default_model="gpt-4o-mini")
        await asyncio.wait_for(heard.wait(), timeout=10)
        assert [(e.provider, e.source) for e in seen] == [("gpt", "replica")]
        r = await b.chat("via the other replica", tenant="acme")
        assert r.content == "[oa] you said: via the other replica"
    finally:
        await a.aclose()
        await b.aclose()


async def test_limits_and_budgets_survive_restarts_and_reach_other_replicas(
    tmp_path: Path, upstream: SimulatedOpenAI
) -> None:
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = await start(tmp_path, db_url)
    b = await start(tmp_path, db_url)
    try:
        await create_gpt(a, upstream, default_model="gpt-4o-mini")
        a.set_rate_limit("acme", {"requestsPerMinute": 2}, "tenant")
        a.set_budget("acme", daily=1.0, alert_webhook=HOOK)
        # b polls the shared directory every 0.1 s.
        for _ in range(100):
            if b.governance.limiter.get("tenant", "acme") is not None:
                break
            await asyncio.sleep(0.05)
        assert b.governance.limiter.get("tenant", "acme") is not None
        assert (await b.get_budget_status("acme")).periods[0].limit == 1.0
        a.remove_rate_limit("acme", "tenant")
        for _ in range(100):
            if b.governance.limiter.get("tenant", "acme") is None:
                break
            await asyncio.sleep(0.05)
        assert b.governance.limiter.get("tenant", "acme") is None
    finally:
        await a.aclose()
        await b.aclose()
    assert HOOK.encode() not in (tmp_path / "config" / "governance.json").read_bytes()
    again = await start(tmp_path, db_url)
    try:
        assert again.governance.limiter.get("tenant", "acme") is None
        assert (await again.get_budget_status("acme")).alert_webhook == "https://hooks.example.com/.."
    finally:
        await again.aclose()


async def test_any_credential_header_is_stored_encrypted_and_masked(
    tmp_path: Path, upstream: SimulatedOpenAI
) -> None:
    db_url = f"sqlite:///{tmp_path / 'podium.db'}"
    orch = await start(tmp_path, db_url)
    try:
        info = await create_gpt(orch, upstream, headers={"X-Client-Secret": KEY2, "X-Team": "blue"})
        assert info.headers == {"X-Client-Secret": "****", "X-Team": "blue"}
    finally:
        await orch.aclose()
    assert KEY2.encode() not in (tmp_path / "config" / "tenant-acme.json").read_bytes()
    again = await start(tmp_path, db_url)
    try:
        assert again.provider("gpt", "acme").config.headers["X-Client-Secret"] == KEY2
    finally:
        await again.aclose()
