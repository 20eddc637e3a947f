"""Typed records that the request path hands to the :class:`~podium.storage.writer.RecordWriter`.

Each is a frozen ``msgspec.Struct``: cheap to build on the hot path, and safe to queue because it
cannot change after it was submitted. Timestamps default to now, in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeAlias

import msgspec


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One served request, as the request log keeps it.

    Attributes:
        tenant: The tenant the request was served for.
        request_id: The request's id (the one returned to the caller).
        provider: The provider that answered (or failed last); None when no provider was tried.
        model: The model used.
        task_type: The task type the router assigned (``chat``, ``code``, ``embedding``, ...).
        user_id: The end user, when the caller named one.
        prompt_tokens: Input tokens billed.
        completion_tokens: Output tokens billed.
        cost: Cost in US dollars.
        latency_ms: Time from receiving the request to the last byte of the answer.
        status: ``"ok"`` or ``"error"``.
        error_class: The podium error class name when the request failed (``ProviderTimeout``).
        started_at: When the request arrived.
        finished_at: When the answer was complete.
        metadata: Anything else worth keeping (routing decision, attempts, cache hit, ...).
        request_body: The request itself; only set when storing bodies is enabled.
        response_body: The answer itself; only set when storing bodies is enabled.
    """

    tenant: str
    request_id: str
    provider: str | None = None
    model: str | None = None
    task_type: str | None = None
    user_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    status: str = "ok"
    error_class: str | None = None
    started_at: datetime = msgspec.field(default_factory=utcnow)
    finished_at: datetime | None = None
    metadata: dict[str, Any] = {}
    request_body: dict[str, Any] | None = None
    response_body: dict[str, Any] | None = None

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One audit event before it joins the chain (the writer assigns its ``seq`` and hashes).

    Build them with the helpers in :mod:`podium.storage.audit` (``config_change``,
    ``request_event``, ``cost_event``), which mask secrets.

    Attributes:
        actor: Who did it: a user, an API key id, ``"system"``.
        action: What happened, dotted (``config.updated``, ``request.completed``, ``budget.alert``).
        tenant: The tenant concerned, if any.
        target: The object concerned (``provider:gpt``, ``key:3f2a...``).
        details: Everything else, JSON-serialisable, secrets already masked.
        ts: When it happened.
    """

    actor: str
    action: str
    tenant: str | None = None
    target: str | None = None
    details: dict[str, Any] = {}
    ts: datetime = msgspec.field(default_factory=utcnow)


class PerformanceSample(msgspec.Struct, frozen=True, kw_only=True):
    """One observation of a provider/model's performance, for learned routing.

    Attributes:
        tenant: The tenant whose request it was.
        provider: The provider's name.
        model: The model.
        latency_ms: Latency of the call.
        success: Whether the call succeeded.
        task_type: The task type of the request.
        quality: A quality score in [0, 1] when one was measured (feedback, evaluator).
        cost: Cost in US dollars.
        total_tokens: Tokens billed.
        recorded_at: When the call finished.
    """

    tenant: str
    provider: str
    model: str
    latency_ms: float
    success: bool
    task_type: str | None = None
    quality: float | None = None
    cost: float = 0.0
    total_tokens: int = 0
    recorded_at: datetime = msgspec.field(default_factory=utcnow)


class ConversationMessageRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One message appended to a conversation's history.

    The conversation is created for ``tenant`` and ``user_id`` when it does not exist yet; a record
    naming another owner's conversation is rejected, never appended to it.

    Attributes:
        conversation_id: The conversation.
        tenant: The tenant that owns the conversation.
        user_id: The user that owns the conversation.
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: The message text (None for an assistant turn that only calls tools).
        extra: The rest of the message (``name``, ``tool_calls``, ``tool_call_id``, content parts).
        created_at: When the message was sent or received.
    """

    conversation_id: str
    tenant: str
    user_id: str
    role: str
    content: str | None = None
    extra: dict[str, Any] = {}
    created_at: datetime = msgspec.field(default_factory=utcnow)


class KeyUsage(msgspec.Struct, frozen=True, kw_only=True):
    """An API key was used: moves its ``last_used_at`` forward without a write on the request path.

    Attributes:
        key_id: The key's id.
        at: When it was used.
    """

    key_id: str
    at: datetime = msgspec.field(default_factory=utcnow)


Record: TypeAlias = RequestRecord | AuditRecord | PerformanceSample | ConversationMessageRecord | KeyUsage
"""Anything the :class:`~podium.storage.writer.RecordWriter` accepts."""
