from __future__ import annotations

import asyncio
import itertools
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import text

from podium.storage import AuditRecord, Database, RecordWriter, RequestRecord, audit, mask_secrets, verify
from podium.storage.tables import GENESIS_HASH

T0 = datetime(2025, 5, 1, 9, 30, 0, 250000, tzinfo=UTC)


def _event(n: int, **kw: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "actor": "alice",
        "action": "config.updated",
        "tenant": "acme",
        "target": f"provider:p{n}",
        "details": {"n": n, "price": 0.1 * n, "nested": {"b": [1, 2, (3, 4)], "a": None}, "ünï": "çødé"},
        "ts": T0 + timedelta(seconds=n),
    }
    fields.update(kw)
    return AuditRecord(**fields)


async def _sql(db: Database, statement: str, **params: Any) -> None:
    async with db.transaction() as conn:
        await conn.execute(text(statement), params)


async def _set_details(db: Database, seq: int, details: dict[str, Any]) -> None:
    cast = ":d" if db.is_sqlite else "CAST(:d AS JSON)"
    await _sql(db, f"UPDATE audit_events SET details = {cast} WHERE seq = :s", d=json.dumps(details), s=seq)


async def test_an_intact_chain_verifies(db: Database) -> None:
    assert await verify(db) == audit.VerifyResult(ok=True, checked=0)
    stored = await audit.write(db, [_event(n) for n in range(1, 6)])
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
    assert stored[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(stored))
    assert stored[2].details["nested"] == {"a": None, "b": [1, 2, [3, 4]]}  # stored as it reads back
    await audit.write(db, [_event(6)])
    assert await verify(db) == audit.VerifyResult(ok=True, checked=6)


async def test_changed_details_are_reported_at_that_event(db: Database) -> None:
    await audit.write(db, [_event(n) for n in range(1, 6)])
    await _set_details(db, 3, {"n": 3, "price": 0.0})
    result = await verify(db)
    assert (result.ok, result.first_broken_seq, result.checked) == (False, 3, 2)
    assert result.reason is not None and "changed" in result.reason


async def test_changed_other_fields_are_reported(db: Database) -> None:
    await audit.write(db, [_event(n) for n in range(1, 4)])
    await _sql(db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    assert (await verify(db)).first_broken_seq == 2


async def test_a_rehashed_event_breaks_the_next_link(db: Database) -> None:
    stored = await audit.write(db, [_event(n) for n in range(1, 5)])
    forged = {**stored[1].details, "price": 0}
    new_hash = audit.event_hash(stored[1].prev_hash, {**audit.prepare(_event(2, details=forged)), "seq": 2})
    await _set_details(db, 2, forged)
    await _sql(db, "UPDATE audit_events SET hash = :h WHERE seq = 2", h=new_hash)
    result = await verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert result.reason is not None and "prev_hash" in result.reason


async def test_deleted_events_are_reported(db: Database) -> None:
    await audit.write(db, [_event(n) for n in range(1, 7)])
    await _sql(db, "DELETE FROM audit_events WHERE seq = 3")
    result = await verify(db)
    assert (result.first_broken_seq, result.checked) == (3, 2)
    assert result.reason is not None and "missing" in result.reason

    await _sql(db, "DELETE FROM audit_events WHERE seq >= 3")
    result = await verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert result.reason is not None and "deleted from the end" in result.reason


async def test_events_appended_outside_the_chain_are_reported(db: Database) -> None:
    stored = await audit.write(db, [_event(n) for n in range(1, 3)])
    forged = {**audit.prepare(_event(3)), "seq": 3, "prev_hash": stored[-1].hash}
    forged["hash"] = audit.event_hash(stored[-1].hash, forged)
    async with db.transaction() as conn:
        await conn.execute(audit.audit_events.insert(), [forged])
    result = await verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 3)


async def test_writer_chains_audit_records_with_other_records_in_its_batches(db: Database) -> None:
    async with RecordWriter(db, batch_size=4, flush_interval=0.01) as writer:
        for n in range(1, 21):
            writer.submit(_event(n))
            writer.submit(RequestRecord(tenant="acme", request_id=f"r{n}"))
    assert await verify(db) == audit.VerifyResult(ok=True, checked=20)
    events = await audit.list_events(db, limit=100)
    assert [e.target for e in events] == [f"provider:p{n}" for n in range(20, 0, -1)]


async def test_writer_rejects_an_audit_record_that_is_not_json_and_keeps_the_chain(db: Database) -> None:
    async with RecordWriter(db, flush_interval=0.01) as writer:
        writer.submit(_event(1))
        writer.submit(_event(2, details={"ratio": float("inf")}))
        writer.submit(_event(3, details={"when": datetime.now(UTC)}))  # not JSON either
        writer.submit(_event(4))
        assert await writer.flush(timeout=60)
        stats = writer.stats()
    assert (stats.written, stats.rejected) == (2, 2)
    assert await verify(db) == audit.VerifyResult(ok=True, checked=2)
    assert [e.target for e in await audit.list_events(db)] == ["provider:p4", "provider:p1"]


async def test_list_events_filters(db: Database) -> None:
    await audit.write(
        db,
        [
            _event(1),
            _event(2, action="budget.alert", tenant="globex"),
            _event(3, action="budget.exceeded"),
        ],
    )
    assert [e.seq for e in await audit.list_events(db, tenant="acme")] == [3, 1]
    assert [e.seq for e in await audit.list_events(db, action="budget.*")] == [3, 2]
    assert [e.seq for e in await audit.list_events(db, action="budget.alert")] == [2]
    assert [e.seq for e in await audit.list_events(db, since=T0 + timedelta(seconds=2))] == [3, 2]
    assert [e.seq for e in await audit.list_events(db, until=T0 + timedelta(seconds=2))] == [1]


WRITER_SCRIPT = """
import asyncio, sys
from podium.storage import AuditRecord, Database, RecordWriter

async def main(url, name, count):
    db = Database(url)
    writer = RecordWriter(db, batch_size=5, flush_interval=0.001)
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        writer.submit(AuditRecord(actor=name, action="test.event", details={"i": i}))
        if i % 5 == 4:
            await asyncio.sleep(0.002)
    stats = await writer.aclose(timeout=60)
    await db.dispose()
    print(f"written {stats.written} rejected {stats.rejected} dropped {stats.dropped}", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_two_writer_processes_append_to_one_valid_chain(db: Database, db_url: str) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER_SCRIPT,
            db_url,
            name,
            "300",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in ("writer-a", "writer-b")
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate(b"go\n") for p in procs)), 120)
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == "written 300 rejected 0 dropped 0", err.decode()

    assert await verify(db) == audit.VerifyResult(ok=True, checked=600)
    events = await audit.list_events(db, limit=1000)
    for name in ("writer-a", "writer-b"):
        own = [e.details["i"] for e in reversed(events) if e.actor == name]
        assert own == list(range(300))


def test_mask_secrets_masks_secret_keys_at_any_depth_and_keeps_the_rest() -> None:
    data = {
        "name": "gpt",
        "api_key": "sk-proj-abcdefghijklmnopqrstuvwxyz123456",
        "apiKey": "short",
        "headers": {"Authorization": "Bearer abcdefghijklmnop1234", "X-Trace": "t1"},
        "providers": [{"token": "tok-aaaaaaaaaaaaaaaaaaaa9999", "password": None}, {"client_secret": 42}],
        "max_tokens": 512,
        "total_tokens": 1000,
        "access_token": "at",
        "database_url": "postgresql://app:hunter2@db:5432/podium",
        "config_store": {"encryption_key": "k" * 44, "key": "abc", "credentials": {"user": "u"}},
        "wrapped": SecretStr("sk-hidden"),
        "api_key_id": "40f1c2d3e4f5a6b7c8d99fc6",
    }
    masked = mask_secrets(data)
    assert masked == {
        "name": "gpt",
        "api_key": "sk-...3456",
        "apiKey": "****",
        "headers": {"Authorization": "Bea...1234", "X-Trace": "t1"},
        "providers": [{"token": "tok...9999", "password": None}, {"client_secret": "****"}],
        "max_tokens": 512,
        "total_tokens": 1000,
        "access_token": "****",
        "database_url": "postgresql://app:****@db:5432/podium",
        "config_store": {"encryption_key": "kkk...kkkk", "key": "****", "credentials": "****"},
        "wrapped": "****",
        "api_key_id": "40f1c2d3e4f5a6b7c8d99fc6",  # a key's id names it, it grants nothing
    }
    assert data["api_key"] == "sk-proj-abcdefghijklmnopqrstuvwxyz123456"  # the input is not changed


def test_config_change_masks_secrets_and_lists_changed_keys() -> None:
    before = {"base_url": "https://a", "api_key": "sk-old-0000000000000000abcd", "priority": 1}
    after = {"base_url": "https://a", "api_key": "sk-new-1111111111111111abcd", "priority": 2}
    record = audit.config_change(
        actor="admin",
        action="config.updated",
        target="provider:gpt",
        tenant="acme",
        before=before,
        after=after,
    )
    text_form = json.dumps(record.details)
    assert "0000000000000000" not in text_form and "1111111111111111" not in text_form
    assert record.details["changed"] == ["api_key", "priority"]
    assert record.details["before"]["priority"] == 1 and record.details["after"]["priority"] == 2
    created = audit.config_change(actor="admin", action="config.created", target="provider:gpt", after=after)
    assert created.details["before"] is None and created.details["changed"] == [
        "api_key",
        "base_url",
        "priority",
    ]


def test_request_event_keeps_bodies_only_when_enabled() -> None:
    record = RequestRecord(
        tenant="acme",
        request_id="r1",
        provider="gpt",
        model="m",
        status="error",
        error_class="ProviderTimeout",
        metadata={"authorization": "Bearer abcdefghijklmnopqrstu"},
        request_body={"messages": [{"role": "user", "content": "private"}]},
        response_body={"content": "x"},
    )
    plain = audit.request_event(record, actor="key:k1")
    assert plain.action == "request.failed" and plain.target == "request:r1"
    assert "request_body" not in plain.details and "private" not in json.dumps(plain.details)
    assert plain.details["error_class"] == "ProviderTimeout"
    assert plain.details["metadata"] == {"authorization": "Bea...rstu"}
    full = audit.request_event(record, actor="key:k1", include_bodies=True)
    assert full.details["request_body"] == record.request_body
    assert full.details["response_body"] == {"content": "x"}
    assert audit.cost_event("budget.alert", tenant="acme", details={"spent": 9.5}).action == "budget.alert"
