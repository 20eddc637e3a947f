"""The OpenAI API as podium serves it: bodies decoded into canonical types, answers encoded from them.

Bodies decode in one msgspec pass into structs whose fields are canonical types (podium's ``Message``
*is* the OpenAI message shape). Parameters podium has no canonical field for are passed to the provider
verbatim (``extra``), so OpenAI-compatible upstreams still receive them.
"""

from __future__ import annotations

import base64
import time
from array import array
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from podium._present import present
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionResponse,
    EmbedResponse,
    Message,
    ResponseFormat,
    Tool,
    ToolChoice,
    Usage,
)

Temperature = Annotated[float, Meta(ge=0, le=2)]
TopP = Annotated[float, Meta(ge=0, le=1)]
MaxTokens = Annotated[int, Meta(ge=1)]


class StreamOptions(msgspec.Struct, omit_defaults=True):
    """``stream_options``: ask for the final usage chunk."""

    include_usage: bool = False


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class ChatCompletionBody(_Strict):
    """``POST /v1/chat/completions`` body."""

    messages: Annotated[list[Message], Meta(min_length=1)]
    model: str | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Meta(ge=1, le=1)] | None = None
    # Passed through to the provider as they are.
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None
    store: bool | None = None
    verbosity: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    modalities: list[str] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None


class CompletionBody(_Strict):
    """``POST /v1/completions`` body (one prompt per request)."""

    prompt: str | Annotated[list[str], Meta(min_length=1, max_length=1)]
    model: str | None = None
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    stream: Literal[False] = False
    n: Annotated[int, Meta(ge=1, le=1)] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: int | None = None
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = None


class EmbeddingBody(_Strict):
    """``POST /v1/embeddings`` body (texts only; token arrays are refused)."""

    input: str | Annotated[list[str], Meta(min_length=1)]
    model: str | None = None
    dimensions: Annotated[int, Meta(ge=1)] | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


_CHAT_PASSTHROUGH = (
    "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort",
    "service_tier", "store", "verbosity", "prompt_cache_key", "safety_identifier", "modalities",
    "prediction", "web_search_options",
)  # fmt: skip
_COMPLETION_PASSTHROUGH = (
    "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "echo", "suffix", "best_of",
)  # fmt: skip


_PASSED: dict[tuple[str, ...], Callable[[object], dict[str, Any]]] = {
    names: present(names) for names in (_CHAT_PASSTHROUGH, _COMPLETION_PASSTHROUGH)
}


def passthrough(body: msgspec.Struct, names: tuple[str, ...]) -> dict[str, Any] | None:
    """The set pass-through parameters of a body, as the provider should receive them."""
    pick = _PASSED.get(names) or present(names)
    return pick(body) or None


def _passed(
    body: msgspec.Struct, names: tuple[str, ...], extra: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The set pass-through parameters of a body, then the body's unknown fields (``extra``)."""
    passed = passthrough(body, names)
    if extra:
        passed = {**(passed or {}), **extra}
    return passed


def completion_extra(body: CompletionBody, extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a legacy completion body passes to the provider beyond the canonical fields."""
    return _passed(body, _COMPLETION_PASSTHROUGH, extra)


def chat_request(body: ChatCompletionBody, model: str | None, extra: dict[str, Any] | None) -> ChatRequest:
    """Canonical request from a decoded body (``model`` already alias-resolved)."""
    passed = _passed(body, _CHAT_PASSTHROUGH, extra)
    stop = body.stop
    return ChatRequest(
        messages=body.messages,
        model=model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=[stop] if isinstance(stop, str) else stop,
        seed=body.seed,
        user=body.user,
        metadata=body.metadata,
        tools=body.tools,
        tool_choice=body.tool_choice,
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=body.response_format,
        extra=passed,
    )


def split_unknown(raw: dict[str, Any], known: frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate a body's known fields from vendor extensions (``extra_body`` in the SDKs)."""
    ours = {k: v for k, v in raw.items() if k in known}
    theirs = {k: v for k, v in raw.items() if k not in known}
    return ours, theirs


# --- answers -------------------------------------------------------------------------------------------


def usage_dict(usage: Usage) -> dict[str, Any]:
    """OpenAI's usage object, with the cached and reasoning token details."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def chat_completion(resp: ChatResponse, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": resp.content, "refusal": None}
    if resp.tool_calls:
        message["tool_calls"] = msgspec.to_builtins(resp.tool_calls)
    if resp.reasoning:
        message["reasoning_content"] = resp.reasoning
    return {
        "id": resp.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": resp.model or model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": resp.finish_reason or "stop", "logprobs": None}
        ],
        "usage": usage_dict(resp.usage),
    }


class ChunkEncoder:
    """Encodes one stream's canonical chunks as OpenAI SSE events (``data: {...}`` and a blank line)."""

    def __init__(self, rid: str, model: str, include_usage: bool) -> None:
        self.rid = rid
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage
        self.usage: Usage | None = None
        self._started = False
        self._encoder = msgspec.json.Encoder()
        self._head_model: str | None = None
        self._head = b""

    def _event(self, choices: list[dict[str, Any]], **more: Any) -> bytes:
        # The fields every event repeats are encoded once per stream (again only if the model changes).
        if self._head_model != self.model:
            fixed = {
                "id": self.rid,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
            }
            self._head = b"data: " + self._encoder.encode(fixed)[:-1] + b',"choices":'
            self._head_model = self.model
        tail = b"," + self._encoder.encode(more)[1:-1] if more else b""
        return self._head + self._encoder.encode(choices) + tail + b"}\n\n"

    def encode(self, chunk: ChatChunk) -> list[bytes]:
        """The events for one chunk (none for a usage-only chunk: usage goes last)."""
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        delta: dict[str, Any] = {}
        if chunk.delta:
            delta["content"] = chunk.delta
        if chunk.reasoning:
            delta["reasoning_content"] = chunk.reasoning
        if chunk.tool_calls:
            delta["tool_calls"] = [_tool_delta(t.index, t.id, t.name, t.arguments) for t in chunk.tool_calls]
        events = []
        if not self._started and (delta or chunk.finish_reason is not None):
            # Like OpenAI: the first event names the role and carries no text.
            self._started = True
            events.append(self._choice({"role": "assistant", "content": ""}, None))
        if delta:
            events.append(self._choice(delta, None))
        if chunk.finish_reason is not None:
            events.append(self._choice({}, chunk.finish_reason))
        return events

    def _choice(self, delta: dict[str, Any], finish: str | None) -> bytes:
        return self._event([{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}])

    def finish(self) -> bytes:
        """The closing events: the usage chunk when asked for, then ``[DONE]``."""
        tail = b""
        if self.include_usage:
            tail = self._event([], usage=usage_dict(self.usage or Usage()))
        return tail + b"data: [DONE]\n\n"

    def error(self, body: bytes) -> bytes:
        """An error after the stream started: OpenAI sends it as a data event (SDKs raise on it)."""
        return b"data: " + body + b"\n\n"


def _tool_delta(index: int, call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index}
    if call_id is not None:
        out["id"] = call_id
        out["type"] = "function"
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    out["function"] = function
    return out


def text_completion(resp: CompletionResponse, model: str) -> dict[str, Any]:
    """A ``text_completion`` object."""
    return {
        "id": resp.id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": resp.model or model,
        "choices": [
            {"index": 0, "text": resp.text, "finish_reason": resp.finish_reason or "stop", "logprobs": None}
        ],
        "usage": usage_dict(resp.usage),
    }


def embeddings(resp: EmbedResponse, model: str, encoding: str) -> dict[str, Any]:
    """An embeddings list; ``base64`` packs each vector as little-endian float32, as OpenAI does."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(array("f", vector).tobytes()).decode()
            if encoding == "base64"
            else vector,
        }
        for i, vector in enumerate(resp.embeddings)
    ]
    tokens = resp.usage.prompt_tokens or resp.usage.total_tokens
    return {
        "object": "list",
        "data": data,
        "model": resp.model or model,
        "usage": {"prompt_tokens": tokens, "total_tokens": resp.usage.total_tokens or tokens},
    }
