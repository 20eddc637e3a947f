"""OpenAI Chat Completions adapter, also for every OpenAI-compatible server.

One wire format serves api.openai.com and the many hosts that copy it (Azure, Groq, Mistral, OpenRouter,
DeepSeek, Together, vLLM, LM Studio, llama.cpp, Ollama's ``/v1``, ...). Their differences are absorbed
here rather than in separate adapters:

- paths and authentication are settings (Groq's ``/openai/v1`` prefix lives in ``base_url``; Azure wants
  an ``api-key`` header and an ``api-version`` query parameter);
- usage arrives in the ``include_usage`` chunk, in Groq's ``x_groq.usage`` or unasked on Mistral's last
  chunk; cached prompt tokens under four different names;
- reasoning text in ``reasoning_content`` (DeepSeek, Z.ai), ``reasoning`` (OpenRouter, Groq, Cerebras,
  Ollama) or Mistral's ``thinking`` content parts;
- errors inside an HTTP 200 stream (OpenRouter's ``{"error": ...}`` chunk, Groq's ``event: error``);
- tool calls without an ``id`` (one is generated), finish reasons outside OpenAI's four, base64
  embeddings (float32, or float64 from older vLLM builds).
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any
from urllib.parse import urlencode

import msgspec
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from podium._present import present
from podium.errors import ConfigError, MalformedResponse, ProviderError
from podium.providers._http import error_for_status
from podium.providers.base import HttpProvider, StreamParser, WireFormat, new_id
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    FunctionCall,
    ResponseFormat,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# --- Upstream payloads (unknown fields are ignored, so hosts' extras never break decoding) ---


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None  # JSON text per the spec; a few hosts send an object


class _ToolCall(msgspec.Struct):
    function: _Function = msgspec.field(default_factory=_Function)
    id: str | None = None
    index: int | None = None


class _Part(msgspec.Struct):
    """A content part: Mistral's Magistral models answer ``text`` and ``thinking`` parts."""

    type: str = "text"
    text: str | None = None
    thinking: list[_Part] | str | None = None


class _Message(msgspec.Struct):
    content: str | list[_Part] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCall] | None = None
    function_call: _Function | None = None  # the legacy functions API
    refusal: str | None = None


class _Choice(msgspec.Struct):
    message: _Message = msgspec.field(default_factory=_Message)
    finish_reason: str | None = None


class _Details(msgspec.Struct):
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: _Details | None = None
    completion_tokens_details: _Details | None = None
    cached_tokens: int | None = None  # Hugging Face router, Together
    num_cached_tokens: int | None = None  # Mistral
    prompt_cache_hit_tokens: int | None = None  # DeepSeek


class _ErrorMetadata(msgspec.Struct):
    raw: str | None = None  # OpenRouter: the upstream provider's own message


class _Error(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    status_code: int | None = None  # Groq, in-stream
    metadata: _ErrorMetadata | None = None


class _ErrorBody(msgspec.Struct):
    error: _Error | str | None = None
    detail: str | list[Any] | dict[str, Any] | None = None  # FastAPI-style servers (Voyage, vLLM)
    message: str | None = None


class _ChatCompletion(msgspec.Struct):
    choices: list[_Choice] | None = None
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None
    error: _Error | str | None = None  # some gateways answer HTTP 200 with an error body


class _ChunkChoice(msgspec.Struct):
    delta: _Message = msgspec.field(default_factory=_Message)
    finish_reason: str | None = None
    index: int = 0


class _XGroq(msgspec.Struct):
    usage: _Usage | None = None


class _Chunk(msgspec.Struct):
    choices: list[_ChunkChoice] | None = None
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None
    x_groq: _XGroq | None = None
    error: _Error | str | None = None


class _TextChoice(msgspec.Struct):
    text: str | None = None
    finish_reason: str | None = None


class _TextCompletion(msgspec.Struct):
    choices: list[_TextChoice]
    id: str | None = None
    model: str | None = None
    usage: _Usage | None = None


class _Embedding(msgspec.Struct):
    embedding: list[float] | str
    index: int = 0


class _Embeddings(msgspec.Struct):
    data: list[_Embedding]
    model: str | None = None
    usage: _Usage | None = None


class _Model(msgspec.Struct):
    id: str


class _Models(msgspec.Struct):
    data: list[_Model]


# --- Options ---


class OpenAIOptions(BaseModel):
    """Settings of an OpenAI or OpenAI-compatible endpoint.

    Attributes:
        organization: Sent as ``OpenAI-Organization``.
        project: Sent as ``OpenAI-Project``.
        embedding_model: Embedding model used when a request names none.
        stream_usage: Ask for usage on streams (``stream_options.include_usage``); switch off for
            servers that reject the field.
        chat_path: Chat endpoint, relative to ``base_url``.
        completions_path: Legacy text-completion endpoint.
        embeddings_path: Embeddings endpoint.
        models_path: Model listing endpoint; None when the host has none.
        api_key_header: Header carrying the key: ``authorization`` sends ``Bearer <key>``, any other
            header (Azure's ``api-key``) the key itself.
        query_params: Added to every request, e.g. Azure's ``{"api-version": "2024-10-21"}``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    organization: str | None = None
    project: str | None = None
    embedding_model: str | None = None
    stream_usage: bool = True
    chat_path: str = "/chat/completions"
    completions_path: str = "/completions"
    embeddings_path: str = "/embeddings"
    models_path: str | None = "/models"
    api_key_header: str = Field(default="authorization", pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    query_params: dict[str, str] = Field(default_factory=dict)


# --- Conversions ---

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "function_call": "tool_calls",
    "eos": "stop",  # Together
    "max_tokens": "length",
    "model_length": "length",  # Mistral: the context window is full
}

_CHAT_FIELDS = ("temperature", "top_p", "max_tokens", "stop", "seed", "user", "metadata", "tools",
                "tool_choice", "parallel_tool_calls")  # fmt: skip
_SET_CHAT_FIELDS = present(_CHAT_FIELDS)
_COMPLETION_FIELDS = ("max_tokens", "temperature", "top_p", "stop", "seed", "user")
_SET_COMPLETION_FIELDS = present(_COMPLETION_FIELDS)
_LOW_29_BITS = (1 << 29) - 1


def _finish(raw: str | None, has_tools: bool) -> FinishReason:
    """Normalise a finish reason; an answer that calls tools without saying so finished for them."""
    reason = _FINISH.get(raw or "", "stop")
    return "tool_calls" if has_tools and reason == "stop" else reason


def _usage(u: _Usage | None) -> Usage:
    if u is None:
        return Usage()
    prompt, completion = u.prompt_tokens or 0, u.completion_tokens or 0
    details_cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else None
    cached = next(
        (v for v in (details_cached, u.cached_tokens, u.num_cached_tokens, u.prompt_cache_hit_tokens) if v), 0
    )
    reasoning = u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=u.total_tokens or prompt + completion,
        cached_tokens=cached,
        reasoning_tokens=reasoning or 0,
    )


def _text_and_reasoning(message: _Message) -> tuple[str | None, str | None]:
    """Return the text and the reasoning of a message or delta (content may be Mistral's parts)."""
    if not isinstance(message.content, list):
        text = message.content
        thinking = ""
    else:
        text = "".join(p.text or "" for p in message.content if p.type == "text")
        thinking = "".join(
            p.thinking if isinstance(p.thinking, str) else "".join(t.text or "" for t in p.thinking or [])
            for p in message.content
            if p.type == "thinking"
        )
    return text, message.reasoning_content or message.reasoning or thinking or None


def _arguments(value: str | dict[str, Any] | None) -> str:
    if isinstance(value, dict):
        return msgspec.json.encode(value).decode()
    return value or ""


def _vector(value: list[float] | str, provider: str) -> list[float]:
    """Decode a base64 embedding: little-endian float32, or float64 as older vLLM builds send it."""
    if isinstance(value, list):
        return value
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedResponse(f"{provider}: embedding is not valid base64", provider=provider) from exc
    if len(raw) >= 64 and len(raw) % 8 == 0 and raw.strip(b"\0"):
        # float32 values widened to float64 leave the low 29 mantissa bits of every word zero, which
        # real float32 pairs practically never do.
        words = struct.unpack(f"<{len(raw) // 8}Q", raw)
        if all(w & _LOW_29_BITS == 0 for w in words):
            return list(struct.unpack(f"<{len(raw) // 8}d", raw))
    if len(raw) % 4:
        raise MalformedResponse(f"{provider}: base64 embedding of {len(raw)} bytes", provider=provider)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


class OpenAIWire(WireFormat):
    """The OpenAI Chat Completions wire format, with paths and authentication taken from options.

    Reusable on its own: ``OpenAIWire(OpenAIOptions(chat_path="/v2/chat", api_key_header="x-key"))``.

    Args:
        options: Paths, authentication and streaming settings.
        provider: Provider name, used in error messages raised while parsing.
    """

    has_embeddings = True
    has_completions = True

    def __init__(self, options: OpenAIOptions | None = None, *, provider: str = "openai") -> None:
        self.options = options or OpenAIOptions()
        self.provider = provider

    # --- requests ---

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """Bearer authorization (or the raw key in a custom header) plus organization and project."""
        headers: dict[str, str] = {}
        if api_key:
            name = self.options.api_key_header
            headers[name] = f"Bearer {api_key}" if name.lower() == "authorization" else api_key
        if self.options.organization:
            headers["OpenAI-Organization"] = self.options.organization
        if self.options.project:
            headers["OpenAI-Project"] = self.options.project
        return headers

    def _with_query(self, path: str) -> str:
        # The transport passes query parameters only for chat; other endpoints carry them in the path.
        if not self.options.query_params:
            return path
        return f"{path}{'&' if '?' in path else '?'}{urlencode(self.options.query_params)}"

    def chat_path(self, model: str, stream: bool) -> tuple[str, dict[str, str] | None]:
        """The chat endpoint and the configured query parameters."""
        return self.options.chat_path, dict(self.options.query_params) or None

    def chat_body(self, request: ChatRequest, model: str, stream: bool) -> dict[str, Any]:
        """Canonical messages are already OpenAI-shaped: send them as they are, omitting unset fields."""
        body: dict[str, Any] = msgspec.to_builtins(
            {"model": model, "messages": request.messages, **_SET_CHAT_FIELDS(request)}
        )
        if request.response_format is not None:
            body["response_format"] = _response_format(request.response_format)
        if stream:
            body["stream"] = True
            if self.options.stream_usage:
                body["stream_options"] = {"include_usage": True}
        body.update(request.extra or {})
        return body

    def completion_path(self, model: str) -> str:
        """The legacy completions endpoint."""
        return self._with_query(self.options.completions_path)

    def completion_body(self, request: CompletionRequest, model: str) -> dict[str, Any]:
        """A legacy text-completion body."""
        body: dict[str, Any] = {"model": model, "prompt": request.prompt, **_SET_COMPLETION_FIELDS(request)}
        body.update(request.extra or {})
        return body

    def embed_path(self, model: str, count: int) -> str:
        """The embeddings endpoint."""
        return self._with_query(self.options.embeddings_path)

    def embed_body(self, request: EmbedRequest, model: str) -> dict[str, Any]:
        """Ask for float vectors explicitly (SDKs default to base64; both are decoded)."""
        body: dict[str, Any] = {"model": model, "input": list(request.input), "encoding_format": "float"}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        if request.user is not None:
            body["user"] = request.user
        body.update(request.extra or {})
        return body

    def models_path(self) -> str | None:
        """The model listing endpoint, if the host has one."""
        return self._with_query(self.options.models_path) if self.options.models_path else None

    # --- answers ---

    def parse_chat(self, body: bytes) -> ChatResponse:
        """Decode a chat completion (first choice)."""
        data = msgspec.json.decode(body, type=_ChatCompletion)
        if data.error is not None:
            raise self.embedded_error(data.error)
        if not data.choices:
            raise MalformedResponse(f"{self.provider}: chat answer has no choices", provider=self.provider)
        choice = data.choices[0]
        message = choice.message
        text, reasoning = _text_and_reasoning(message)
        raw_calls = list(message.tool_calls or [])
        if message.function_call is not None and message.function_call.name:  # Snowflake sends an empty one
            raw_calls.append(_ToolCall(function=message.function_call))
        calls = [
            ToolCall(
                tc.id or new_id("call"),
                FunctionCall(tc.function.name or "", _arguments(tc.function.arguments) or "{}"),
            )
            for tc in raw_calls
        ]
        return ChatResponse(
            id=data.id or new_id(),
            content=text,
            tool_calls=calls,
            finish_reason=_finish(choice.finish_reason, bool(calls)),
            usage=_usage(data.usage),
            model=data.model or "",
            raw_id=data.id or None,
            reasoning=reasoning,
            metadata={"refusal": message.refusal} if message.refusal else {},
        )

    def stream_parser(self) -> StreamParser:
        """A parser for one streamed chat answer."""
        return OpenAIStreamParser(self)

    def parse_error(self, body: bytes) -> tuple[str, str | None, str | None]:
        """Read ``{"error": {...}}``, ``{"error": "..."}``, ``{"detail": ...}`` or plain text."""
        try:
            data = msgspec.json.decode(body, type=_ErrorBody)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            return body.decode("utf-8", "replace").strip()[:1000], None, None
        if isinstance(data.error, _Error):
            return _error_parts(data.error)
        if isinstance(data.error, str):
            return data.error, None, None
        if data.detail is not None:
            detail = data.detail
            return (detail if isinstance(detail, str) else msgspec.json.encode(detail).decode()), None, None
        if data.message:
            return data.message, None, None
        return body.decode("utf-8", "replace").strip()[:1000], None, None

    def embedded_error(self, error: _Error | str) -> ProviderError:
        """Map an error that arrived inside an HTTP 200 answer or stream; its code gives the status."""
        if isinstance(error, str):
            return error_for_status(self.provider, 502, {}, error)
        message, code, kind = _error_parts(error)
        status = 502
        if error.status_code is not None:
            status = error.status_code
        elif code is not None and code.isdigit():
            status = int(code)
        if not 400 <= status < 600:
            status = 502
        return error_for_status(self.provider, status, {}, message, code=code, kind=kind)

    def parse_completion(self, body: bytes) -> CompletionResponse:
        """Decode a legacy text completion."""
        data = msgspec.json.decode(body, type=_TextCompletion)
        if not data.choices:
            raise MalformedResponse(f"{self.provider}: completion has no choices", provider=self.provider)
        choice = data.choices[0]
        return CompletionResponse(
            id=data.id or new_id("cmpl"),
            text=choice.text or "",
            finish_reason=_finish(choice.finish_reason, False),
            usage=_usage(data.usage),
            model=data.model or "",
            raw_id=data.id or None,
        )

    def parse_embed(self, body: bytes) -> EmbedResponse:
        """Decode embeddings (float lists or base64), in input order."""
        data = msgspec.json.decode(body, type=_Embeddings)
        items = sorted(data.data, key=lambda e: e.index)
        u = data.usage
        total = (u.total_tokens or u.prompt_tokens or 0) if u else 0
        return EmbedResponse(
            embeddings=[_vector(e.embedding, self.provider) for e in items],
            model=data.model or "",
            usage=Usage(prompt_tokens=(u.prompt_tokens if u else None) or total, total_tokens=total),
        )

    def parse_models(self, body: bytes) -> list[str]:
        """Decode ``{"data": [{"id": ...}]}``."""
        return [m.id for m in msgspec.json.decode(body, type=_Models).data]


def _error_parts(error: _Error) -> tuple[str, str | None, str | None]:
    message = error.message or ""
    if error.metadata is not None and error.metadata.raw:
        message = f"{message} ({error.metadata.raw})" if message else error.metadata.raw
    code = None if error.code is None else str(error.code)
    return message, code, error.type


def _response_format(fmt: ResponseFormat) -> dict[str, Any]:
    # ResponseFormat omits defaults, which would drop ``type: "text"``; OpenAI requires the type.
    out: dict[str, Any] = {"type": fmt.type}
    if fmt.json_schema is not None:
        out["json_schema"] = msgspec.to_builtins(fmt.json_schema)
    return out


class OpenAIStreamParser(StreamParser):
    """Turns a Chat Completions SSE stream into canonical chunks.

    The stream is complete at ``data: [DONE]``, or once both the finish reason and usage have arrived
    (servers that close without ``[DONE]`` have then sent everything); anything shorter is truncated.
    """

    def __init__(self, wire: OpenAIWire) -> None:
        super().__init__()
        self._wire = wire
        self._ids: dict[int, str] = {}  # tool call index -> its id
        self._remap: dict[int, int] = {}  # upstream index -> our index, where a host reused one
        self._last_index = 0
        self._finished = False

    def feed(self, event: str, data: str) -> list[ChatChunk]:
        """Parse one SSE event."""
        if event not in ("message", "error", ""):
            return []
        text = data.strip()
        if not text:
            return []
        if text == "[DONE]":
            self.done = True
            # Some hosts (Snowflake) never send a finish reason: the end of the stream is the finish.
            return [] if self._finished else [self._finish_chunk(None)]
        if event == "error":
            raise self._event_error(text)
        chunk = msgspec.json.decode(text, type=_Chunk)
        if chunk.error is not None:
            raise self._wire.embedded_error(chunk.error)
        self.response_id = self.response_id or chunk.id or None
        self.model = self.model or chunk.model or None
        usage = chunk.usage or (chunk.x_groq.usage if chunk.x_groq else None)
        if usage is not None:
            self.usage = _usage(usage)
        out: list[ChatChunk] = []
        for choice in chunk.choices or []:
            if choice.index == 0:
                out.extend(self._choice(choice))
        if self._finished and self.usage is not None:
            self.done = True
        return out

    def _choice(self, choice: _ChunkChoice) -> list[ChatChunk]:
        delta = choice.delta
        text, reasoning = _text_and_reasoning(delta)
        calls = [self._tool_delta(tc) for tc in delta.tool_calls or []]
        if delta.function_call is not None and (delta.function_call.name or delta.function_call.arguments):
            calls.append(self._tool_delta(_ToolCall(function=delta.function_call, index=0)))
        out: list[ChatChunk] = []
        if text or reasoning or calls:
            out.append(ChatChunk(delta=text or "", reasoning=reasoning, tool_calls=calls or None))
        if choice.finish_reason and not self._finished:
            out.append(self._finish_chunk(choice.finish_reason))
        return out

    def _tool_delta(self, tc: _ToolCall) -> ToolCallDelta:
        fresh = max(self._ids, default=-1) + 1
        upstream = tc.index
        if upstream is None:  # hosts that omit the index: a named fragment starts the next call
            upstream = fresh if (tc.function.name or tc.id) and self._ids else self._last_index
        self._last_index = upstream
        index = self._remap.get(upstream, upstream)
        if tc.id and index in self._ids and tc.id != self._ids[index]:
            # Gateways in front of Gemini give parallel calls one index; a new id means a new call.
            index = self._remap[upstream] = fresh
        args = _arguments(tc.function.arguments)
        if index in self._ids:
            # Repeated ids and names would be concatenated by consumers: only the first fragment names.
            return ToolCallDelta(index=index, arguments=args)
        self._ids[index] = tc.id or new_id("call")
        return ToolCallDelta(index=index, id=self._ids[index], name=tc.function.name, arguments=args)

    def _finish_chunk(self, raw: str | None) -> ChatChunk:
        self._finished = True
        return ChatChunk(finish_reason=_finish(raw, bool(self._ids)))

    def _event_error(self, text: str) -> ProviderError:
        try:
            body = msgspec.json.decode(text, type=_ErrorBody)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self._wire.embedded_error(text[:1000])
        return self._wire.embedded_error(body.error or body.message or text[:1000])


class OpenAIProvider(HttpProvider):
    """OpenAI and every OpenAI-compatible API (configure ``base_url`` and, if needed, ``Options``)."""

    kind = "openai"
    Options = OpenAIOptions
    default_base_url = "https://api.openai.com/v1"

    def make_wire(self) -> WireFormat:
        """Build the wire format from this provider's options."""
        if not isinstance(self.options, OpenAIOptions):
            raise ConfigError(f"provider {self.config.name!r}: options must be OpenAIProvider.Options")
        return OpenAIWire(self.options, provider=self.config.name)
