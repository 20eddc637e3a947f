"""Turning friendly keyword arguments into canonical requests, validated at the edge."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic.alias_generators import to_snake

from podium.errors import RequestError
from podium.types import (
    ChatRequest,
    MessageLike,
    ResponseFormat,
    Tool,
    ToolChoice,
    convert,
    to_messages,
)

_CHAT_PARAMS = frozenset(
    {
        "model",
        "temperature",
        "top_p",
        "max_tokens",
        "stop",
        "seed",
        "user",
        "metadata",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    }
)


def build_chat_request(
    messages: str | Iterable[MessageLike],
    *,
    model: str | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    stop: str | list[str] | None = None,
    seed: int | None = None,
    user: str | None = None,
    metadata: Mapping[str, str] | None = None,
    tools: Iterable[Tool | Mapping[str, Any]] | None = None,
    tool_choice: ToolChoice | str | Mapping[str, Any] | None = None,
    parallel_tool_calls: bool | None = None,
    response_format: ResponseFormat | Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ChatRequest:
    """Validate friendly arguments into a canonical ``ChatRequest``.

    Raises:
        RequestError: an argument is invalid; the message names it.
    """
    if max_tokens is not None and max_tokens < 1:
        raise RequestError("max_tokens must be at least 1", param="max_tokens")
    if temperature is not None and not 0 <= temperature <= 2:
        raise RequestError("temperature must be between 0 and 2", param="temperature")
    if top_p is not None and not 0 <= top_p <= 1:
        raise RequestError("top_p must be between 0 and 1", param="top_p")
    return ChatRequest(
        messages=to_messages(messages),
        model=model,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=[stop] if isinstance(stop, str) else (list(stop) if stop is not None else None),
        seed=seed,
        user=user,
        metadata=dict(metadata) if metadata is not None else None,
        tools=convert(list(tools), list[Tool], "tools") if tools is not None else None,
        tool_choice=convert(tool_choice, ToolChoice, "tool_choice") if tool_choice is not None else None,
        parallel_tool_calls=parallel_tool_calls,
        response_format=convert(response_format, ResponseFormat, "response_format")
        if response_format is not None
        else None,
        extra=dict(extra) if extra else None,
    )


def chat_request_from(messages: str | Iterable[MessageLike], params: dict[str, Any]) -> ChatRequest:
    """A ``ChatRequest`` from ``chat()``'s keyword arguments; unknown ones go to ``extra`` (camelCase ok)."""
    params = {(to_snake(k) if to_snake(k) in _CHAT_PARAMS else k): v for k, v in params.items()}
    known = {k: params.pop(k) for k in list(params) if k in _CHAT_PARAMS}
    extra = params.pop("extra", None) or {}
    return build_chat_request(messages, **known, extra={**extra, **params})
