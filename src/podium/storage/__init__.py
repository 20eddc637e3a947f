"""Storage: the database (SQLite by default, PostgreSQL), its migrations, and the background writer.

Typical use::

    db = Database(settings.storage.database_url)
    await migrate(db)
    writer = RecordWriter(db)
    writer.submit(RequestRecord(tenant="acme", request_id="r1", provider="gpt", model="gpt-4o"))
    ...
    await writer.aclose()   # writes what is queued
    await db.dispose()
"""

from podium.storage.api_keys import ApiKey, ApiKeys, NewApiKey
from podium.storage.audit import AuditEvent, VerifyResult, mask_secrets, verify
from podium.storage.conversations import Conversation, Conversations, StoredMessage
from podium.storage.db import Database, normalize_url
from podium.storage.migrate import current_revision, downgrade, migrate
from podium.storage.records import (
    AuditRecord,
    ConversationMessageRecord,
    KeyUsage,
    PerformanceSample,
    Record,
    RequestRecord,
)
from podium.storage.repositories import PerformanceSamples, PerformanceStats, RequestLog, UsageRow
from podium.storage.writer import RecordWriter, WriterStats

__all__ = [
    "ApiKey",
    "ApiKeys",
    "AuditEvent",
    "AuditRecord",
    "Conversation",
    "ConversationMessageRecord",
    "Conversations",
    "Database",
    "KeyUsage",
    "NewApiKey",
    "PerformanceSample",
    "PerformanceSamples",
    "PerformanceStats",
    "Record",
    "RecordWriter",
    "RequestLog",
    "RequestRecord",
    "StoredMessage",
    "UsageRow",
    "VerifyResult",
    "WriterStats",
    "current_revision",
    "downgrade",
    "mask_secrets",
    "migrate",
    "normalize_url",
    "verify",
]
