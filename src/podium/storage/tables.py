"""podium's tables (SQLAlchemy Core), the single source the migrations and the queries share.

Timestamps are stored in UTC and always read back as timezone-aware ``datetime`` objects, on SQLite
(which has no time zones) as on PostgreSQL. JSON columns use the plain ``JSON`` type on both, which
keeps the text as written: the audit chain hashes what it stores, so the stored form must not be
re-normalised by the database (PostgreSQL's ``JSONB`` would).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware (UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; naive values are taken to be UTC already."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        # SQLite stores text without an offset; PostgreSQL keeps the instant either way.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        """On SQLite, one C-level conversion to the text SQLAlchemy's ``DATETIME`` would write.

        Elsewhere (and for any other dialect) the usual ``process_bind_param`` then the dialect's own
        processor. On SQLite those two are three Python calls and a ``%``-format per timestamp, and
        the request log stores two per served request; ``isoformat`` writes the same text
        (``YYYY-MM-DD HH:MM:SS.ffffff``; tests/storage/test_tables.py compares them).
        """
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_utc_text

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to SQLite's naive values and normalise others to UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is UTC:  # nearly every value (datetime.now(UTC)): drop the "+00:00" isoformat adds
        return value.isoformat(" ", "microseconds")[:26]
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)  # naive values are taken to be UTC already
    return value.isoformat(" ", "microseconds")


# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

request_log = Table(
    "request_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", String(128), nullable=False),
    Column("tenant", String(255), nullable=False),
    Column("user_id", String(255)),
    Column("provider", String(255)),
    Column("model", String(255)),
    Column("task_type", String(64)),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("total_tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("status", String(32), nullable=False),
    Column("error_class", String(128)),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    # Denormalised UTC day of started_at: per-day aggregates group on it the same way on every database.
    Column("day", Date, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("request_body", JSON),
    Column("response_body", JSON),
    Index(None, "tenant", "started_at"),
    Index(None, "tenant", "day"),
    Index(None, "request_id"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(255), nullable=False),
    Column("user_id", String(255), nullable=False),
    Column("title", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("metadata", JSON, nullable=False),
    Index(None, "tenant", "user_id", "updated_at"),
)

conversation_messages = Table(
    "conversation_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "conversation_id",
        String(64),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", String(32), nullable=False),
    Column("content", Text),
    Column("extra", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "conversation_id", "id"),
)

performance_samples = Table(
    "performance_samples",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("tenant", String(255), nullable=False),
    Column("provider", String(255), nullable=False),
    Column("model", String(255), nullable=False),
    Column("task_type", String(64)),
    Column("latency_ms", Float, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("quality", Float),
    Column("cost", Float, nullable=False, default=0.0),
    Column("total_tokens", Integer, nullable=False, default=0),
    Index(None, "provider", "model", "recorded_at"),
    Index(None, "tenant", "recorded_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    # SHA-256 of the whole key, hex; the key itself is never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("tenant", String(255), nullable=False),
    Column("role", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("revoked_at", UtcDateTime),
    Column("last_used_at", UtcDateTime),
    Index(None, "tenant"),
)

audit_events = Table(
    "audit_events",
    metadata,
    # Assigned by the writer from the chain head, inside the transaction that appends the event.
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", UtcDateTime, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(128), nullable=False),
    Column("tenant", String(255)),
    Column("target", String(512)),
    Column("details", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "tenant", "ts"),
    Index(None, "action", "ts"),
)

audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    # One row (id 1): the last appended event. Locking it serialises appends across processes, and
    # comparing it with the log's tail detects deleted trailing events.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first audit event."""
