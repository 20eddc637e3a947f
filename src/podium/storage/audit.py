"""The tamper-evident audit trail: a hash chain over every audit event.

Each event's hash is ``sha256(prev_hash + canonical JSON of its fields)``, where ``prev_hash`` is the
previous event's hash (64 zeros for the first). Changing, deleting or inserting any event therefore
breaks the chain from that point on, and :func:`verify` names the first broken link.

Sequence numbers and hashes are assigned when a batch is written, inside its transaction, after locking
the one-row chain head (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). Several
writer processes sharing one database thus append to one valid chain.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Row, select, update

from podium.errors import ConfigError
from podium.storage import jsontext
from podium.storage.aio import AsyncConnection
from podium.storage.bulk import BulkInsert
from podium.storage.db import Database
from podium.storage.records import AuditRecord, RequestRecord
from podium.storage.tables import GENESIS_HASH, audit_chain_head, audit_events

_SECRET_WORDS = (
    "apikey",
    "authorization",
    "password",
    "passwd",
    "secret",
    "privatekey",
    "accesskey",
    "encryptionkey",
    "signingkey",
    "credential",
    "cookie",
)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@/\s]+(?P<tail>@)", re.IGNORECASE)
_VERIFY_PAGE = 1000
_EVENT_INSERT = BulkInsert(
    audit_events, ("seq", "ts", "actor", "action", "tenant", "target", "details", "prev_hash", "hash")
)


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An audit event as stored: an :class:`AuditRecord` plus its place in the chain."""

    seq: int
    ts: datetime
    actor: str
    action: str
    tenant: str | None
    target: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of :func:`verify`.

    Attributes:
        ok: The whole chain is intact.
        checked: Events whose link was checked and found valid.
        first_broken_seq: The sequence number of the first event that fails verification (None if ok).
        reason: What is wrong there (None if ok).
    """

    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


class ChainHeadMissing(ConfigError):
    """The chain head row is missing: the database was not migrated, or the row was deleted."""


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that hashing uses: sorted keys, no spaces, no NaN.

    Raises:
        TypeError: ``value`` holds something JSON cannot represent.
        ValueError: ``value`` holds NaN or infinity.
    """
    return jsontext.canonical(value)


def event_hash(prev_hash: str, fields: Mapping[Any, Any], details_json: str | None = None) -> str:
    """Hash one event's fields chained to ``prev_hash``.

    The hashed text is the canonical JSON of the fields ``seq``, ``ts``, ``actor``, ``action``,
    ``tenant``, ``target`` and ``details``.

    Args:
        prev_hash: The previous event's hash.
        fields: The event's fields.
        details_json: ``canonical_json(fields["details"])`` when the caller has it already (the writer
            does): the text is then assembled around it instead of encoding the details again.
    """
    if details_json is None:
        details_json = canonical_json(fields["details"])
    ts = fields["ts"].astimezone(UTC).isoformat(timespec="microseconds")
    # Strings (nearly every field of every event) are quoted here directly; _scalar takes the rest.
    s = _QUOTE
    action, actor, seq, target, tenant = (
        fields["action"], fields["actor"], fields["seq"], fields["target"], fields["tenant"]
    )  # fmt: skip
    # The object canonical_json would write, keys in sorted order, with the details spliced in.
    text = (
        f'{{"action":{s(action) if type(action) is str else _scalar(action)},'
        f'"actor":{s(actor) if type(actor) is str else _scalar(actor)},'
        f'"details":{details_json},"seq":{seq if type(seq) is int else _scalar(seq)},'
        f'"target":{s(target) if type(target) is str else _scalar(target)},'
        f'"tenant":{s(tenant) if type(tenant) is str else _scalar(tenant)},"ts":{s(ts)}}}'
    )
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


_QUOTE = jsontext.quote  # a str's JSON literal, as canonical_json writes it


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return jsontext.string(value)
    return str(value) if type(value) is int else canonical_json(value)


def prepare(record: AuditRecord) -> PreparedRow:
    """Turn a record into a row without its chain fields, with ``details`` encoded as canonical JSON.

    The canonical text is what is hashed and what is stored, so the value read back later hashes the
    same (tuples become lists, keys become strings); :func:`append` decodes it again only for the rows
    it returns.

    Raises:
        TypeError: ``details`` is not JSON-serialisable.
        ValueError: ``details`` holds NaN or infinity.
    """
    ts = record.ts if record.ts.tzinfo is not None else record.ts.replace(tzinfo=UTC)
    text = canonical_json(record.details)
    row = PreparedRow(
        ts=ts.astimezone(UTC),
        actor=record.actor,
        action=record.action,
        tenant=record.tenant,
        target=record.target,
        details=record.details,
    )
    row.details_json = text
    return row


class PreparedRow(dict[str, Any]):
    """A row from :func:`prepare`; it also carries its details' canonical JSON.

    :func:`append` hashes and stores that text as it is, rather than encoding the details twice more.
    A copy (``{**row}``) is a plain row, which works as well.
    """

    details_json: str | None = None


async def append(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], *, returning: bool = True
) -> list[dict[str, Any]]:
    """Append prepared rows (see :func:`prepare`) to the chain inside the caller's transaction.

    Open the transaction with ``Database.transaction(write=True)`` so SQLite takes its write lock first.

    Args:
        conn: The connection of the caller's transaction.
        rows: Prepared rows, oldest first.
        returning: Return the rows as stored; the record writer, which needs nothing back, passes
            False and skips decoding each event's details again.

    Returns:
        The rows as stored, with ``seq``, ``prev_hash`` and ``hash`` (empty when not ``returning``).

    Raises:
        ChainHeadMissing: the database has no chain head (run the migrations).
    """
    if not rows:
        return []
    head = (
        await conn.execute(select(audit_chain_head).where(audit_chain_head.c.id == 1).with_for_update())
    ).first()
    if head is None:
        raise ChainHeadMissing(
            "the audit chain head is missing: run podium's migrations (podium.storage.migrate) on this "
            "database"
        )
    seq, prev = int(head.seq), str(head.hash)
    stored: list[dict[str, Any]] = []
    values: list[tuple[Any, ...]] = []
    for row in rows:
        seq += 1
        chained = {**row, "seq": seq, "prev_hash": prev}
        text = getattr(row, "details_json", None)
        chained["hash"] = prev = event_hash(prev, chained, text)
        details = chained["details"] if text is None else jsontext.Encoded(text)
        values.append(
            (seq, chained["ts"], chained["actor"], chained["action"], chained.get("tenant"),
             chained.get("target"), details, chained["prev_hash"], chained["hash"])
        )  # fmt: skip
        if returning:
            if text is not None:
                chained["details"] = json.loads(text)  # the value as it will be read back
            stored.append(chained)
    await _EVENT_INSERT.run(conn, values)
    await conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1).values(seq=seq, hash=prev))
    return stored


async def write(db: Database, records: Iterable[AuditRecord]) -> list[AuditEvent]:
    """Append records to the chain now, in one transaction.

    For callers off the request path (the CLI); the request path submits records to the
    ``RecordWriter`` instead.

    Raises:
        TypeError: a record's ``details`` is not JSON-serialisable.
        ValueError: a record's ``details`` holds NaN or infinity.
    """
    rows = [prepare(r) for r in records]
    async with db.transaction(write=True) as conn:
        stored = await append(conn, rows)
    return [AuditEvent(**row) for row in stored]


async def verify(db: Database) -> VerifyResult:
    """Check every link of the chain, oldest first, and report the first broken one."""
    expected_seq, prev, checked = 1, GENESIS_HASH, 0
    async with db.engine.connect() as conn:
        while True:
            page = (
                await conn.execute(
                    select(audit_events)
                    .where(audit_events.c.seq >= expected_seq)
                    .order_by(audit_events.c.seq)
                    .limit(_VERIFY_PAGE)
                )
            ).all()
            for row in page:
                problem = _check(row, expected_seq, prev)
                if problem is not None:
                    return VerifyResult(
                        ok=False, checked=checked, first_broken_seq=expected_seq, reason=problem
                    )
                prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
            if len(page) < _VERIFY_PAGE:
                break
        head = (await conn.execute(select(audit_chain_head).where(audit_chain_head.c.id == 1))).first()
    if head is None:
        return VerifyResult(
            ok=False, checked=checked, first_broken_seq=expected_seq, reason="the chain head row is missing"
        )
    if head.seq > checked:
        return VerifyResult(
            ok=False,
            checked=checked,
            first_broken_seq=expected_seq,
            reason=f"events {expected_seq} to {head.seq} were deleted from the end of the log",
        )
    if head.seq != checked or head.hash != prev:
        return VerifyResult(
            ok=False,
            checked=checked,
            first_broken_seq=head.seq + 1 if head.seq < checked else head.seq,
            reason="the log does not end where the chain head says: events were added or rewritten "
            "outside the chain",
        )
    return VerifyResult(ok=True, checked=checked)


def _check(row: Row[Any], expected_seq: int, prev: str) -> str | None:
    if row.seq != expected_seq:
        return f"event {expected_seq} is missing (the next stored event is {row.seq})"
    if row.prev_hash != prev:
        return "its prev_hash is not the previous event's hash (an event before it was removed or replaced)"
    try:
        actual = event_hash(prev, row._mapping)
    except (TypeError, ValueError):
        return "its details are not valid JSON any more"
    if actual != row.hash:
        return "its contents do not match its hash (the event was changed after it was written)"
    return None


async def list_events(
    db: Database,
    *,
    tenant: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """The newest audit events first, optionally filtered; ``action`` may end with ``*`` (a prefix)."""
    query = select(audit_events).order_by(audit_events.c.seq.desc()).limit(limit)
    if tenant is not None:
        query = query.where(audit_events.c.tenant == tenant)
    if action is not None:
        cond = (
            audit_events.c.action.startswith(action[:-1], autoescape=True)
            if action.endswith("*")
            else audit_events.c.action == action
        )
        query = query.where(cond)
    if since is not None:
        query = query.where(audit_events.c.ts >= since)
    if until is not None:
        query = query.where(audit_events.c.ts < until)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [AuditEvent(**row._asdict()) for row in rows]


@functools.lru_cache(maxsize=4096)  # the same few metadata keys come with every request
def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``api_key``, ``apiKey``, ``Authorization``, ``x-auth-token``)."""
    norm = re.sub(r"[^a-z]", "", key.lower())
    if norm.endswith("keyid"):
        # A key's id (api_key_id, access_key_id) names the key without granting anything: the request
        # log and the audit trail must show it whole to tell which key acted.
        return False
    # "token" alone or as a suffix (access_token), but not token counts (max_tokens, total_tokens).
    return norm in ("key", "pw") or norm.endswith("token") or any(word in norm for word in _SECRET_WORDS)


def mask_value(value: Any) -> Any:
    """Mask a secret's value: enough to recognise a string key (``sk-...abcd``), never to use it."""
    if value is None:
        return None
    if isinstance(value, str):
        return f"{value[:3]}...{value[-4:]}" if len(value) >= 16 else "****"
    return "****"


def mask_secrets(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with secrets masked, recursively through nested mappings and lists.

    Values of secret-looking keys (see :func:`is_secret_key`) are masked, and passwords embedded in
    URLs (``postgresql://user:pw@host``) are replaced by ``****`` wherever they appear.
    """
    return {str(k): mask_value(v) if is_secret_key(str(k)) else _mask_any(v) for k, v in data.items()}


def _mask_any(value: Any) -> Any:
    if isinstance(value, Mapping):
        return mask_secrets(value)
    if isinstance(value, list | tuple):
        return [_mask_any(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<head>****\g<tail>", value)
    if hasattr(value, "get_secret_value"):  # pydantic SecretStr / SecretBytes, whatever its key
        return "****"
    return value


def config_change(
    *,
    actor: str,
    action: str,
    target: str,
    tenant: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditRecord:
    """An audit record of a configuration change, secrets masked.

    Args:
        actor: Who made the change.
        action: ``config.created``, ``config.updated``, ``config.removed``, ...
        target: What changed (``provider:gpt``).
        tenant: The tenant it belongs to.
        before: The configuration before (None when created).
        after: The configuration after (None when removed).
    """
    keys = set(before or {}) | set(after or {})
    # Compared before masking, so a changed secret is listed even when its masked forms look alike.
    changed = sorted(str(k) for k in keys if (before or {}).get(k) != (after or {}).get(k))
    details = {
        "before": None if before is None else mask_secrets(before),
        "after": None if after is None else mask_secrets(after),
        "changed": changed,
    }
    return AuditRecord(actor=actor, action=action, tenant=tenant, target=target, details=details)


def request_event(record: RequestRecord, *, actor: str, include_bodies: bool = False) -> AuditRecord:
    """An audit record of a served request: its metadata, and its bodies only when ``include_bodies``."""
    details: dict[str, Any] = {
        "request_id": record.request_id,
        "provider": record.provider,
        "model": record.model,
        "task_type": record.task_type,
        "user_id": record.user_id,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cost": record.cost,
        "latency_ms": record.latency_ms,
        "status": record.status,
        "error_class": record.error_class,
        "metadata": mask_secrets(record.metadata),
    }
    if include_bodies:
        details["request_body"] = record.request_body
        details["response_body"] = record.response_body
    action = "request.completed" if record.status == "ok" else "request.failed"
    return AuditRecord(
        actor=actor,
        action=action,
        tenant=record.tenant,
        target=f"request:{record.request_id}",
        details=details,
        ts=record.finished_at or record.started_at,
    )


def cost_event(
    action: str,
    *,
    tenant: str,
    details: Mapping[str, Any],
    target: str | None = None,
    actor: str = "system",
) -> AuditRecord:
    """An audit record of a cost or budget event (``budget.alert``, ``budget.exceeded``, ...)."""
    return AuditRecord(
        actor=actor, action=action, tenant=tenant, target=target, details=mask_secrets(details)
    )
