"""Anthropic Messages API adapter (``type: anthropic``).

``AnthropicWire`` converts canonical (OpenAI-shaped) requests to the Messages API and its answers back;
``AnthropicProvider`` drives it over HTTP against ``https://api.anthropic.com`` (or any gateway that speaks
the same API under another prefix). The wire format is usable on its own: the ``custom`` provider builds it
with its own messages path.

Conversions worth knowing:

- ``system``/``developer`` messages, wherever they stand, become the top-level ``system`` text.
- ``tool`` messages become ``tool_result`` blocks in a user turn; consecutive turns of one role (tool results
  followed by a user message, say) are merged, because Anthropic wants user and assistant to alternate.
- ``max_tokens`` is required upstream: ``default_max_tokens`` fills it in.
- ``seed`` has no Anthropic equivalent and is dropped; ``metadata`` is podium's own (Anthropic accepts only
  ``metadata.user_id``, which comes from ``user``).
- ``response_format``: ``json_schema`` uses Anthropic's structured outputs (``output_config.format``, as
  the recordings show) when ``structured_output="native"`` (the default; needs a model that supports it).
  ``json_object`` (which has no schema) and ``json_schema`` with ``structured_output="tool"`` (for older
  models) offer one tool named ``podium_json_answer`` whose ``input_schema`` is the schema and force the
  model to call it; the tool's input then comes back as the JSON text ``content`` with finish reason
  ``stop``, in chat and stream alike. Forcing a tool replaces the caller's ``tool_choice`` and does not
  combine with extended thinking, which is why it is not the default for schemas.
- ``extra`` is merged last; a dict value is merged one level deep into a dict the adapter built (so
  ``extra={"output_config": {"effort": "high"}}`` keeps a structured-output ``format``).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from podium.errors import MalformedResponse, ProviderError, RequestError
from podium.providers._http import error_for_status
from podium.providers.base import HttpProvider, StreamParser, WireFormat, new_id
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    FunctionCall,
    FunctionDef,
    ImagePart,
    Message,
    NamedToolChoice,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)

JSON_TOOL = "podium_json_answer"
"""Name of the tool that carries a JSON answer when ``response_format`` is served by a forced tool."""

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic's documented error types and the HTTP statuses they come with; a stream's ``event: error``
# carries only the type, so the status is derived from it to share one mapping with HTTP errors.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# Server-side tool calls (web search, code execution, MCP, ...) run at Anthropic; they are not the
# caller's tool calls and their input deltas must not surface as such.
_SERVER_TOOL_BLOCKS = ("server_tool_use", "mcp_tool_use")

# The count_tokens endpoint refuses generation parameters (max_tokens, temperature, ...).
_COUNT_TOKENS_KEYS = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "mcp_servers",
        "output_config",
        "speed",
    }
    | {"output_format", "cache_control", "context_management"}
)
_COUNTS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_JSON_TOOL_HELP = "Give the final answer by calling this tool: its input is the answer."


# --- upstream payloads -------------------------------------------------------------------------------


class _OutputDetails(msgspec.Struct):
    thinking_tokens: int | None = None


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: _OutputDetails | None = None


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    thinking: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class _ErrorDetail(msgspec.Struct):
    message: str = ""
    type: str | None = None


class _Message(msgspec.Struct):
    id: str | None = None
    type: str | None = None
    model: str | None = None
    content: list[_Block] | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: _Usage | None = None
    error: _ErrorDetail | None = None


class _Delta(msgspec.Struct):
    type: str | None = None
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class _Event(msgspec.Struct):
    type: str
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _ErrorDetail | None = None


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail | None = None


class _ModelInfo(msgspec.Struct):
    id: str


class _ModelsPage(msgspec.Struct):
    data: list[_ModelInfo]
    has_more: bool = False
    last_id: str | None = None


class _TokenCount(msgspec.Struct):
    input_tokens: int


_MESSAGE = msgspec.json.Decoder(_Message)
_EVENT = msgspec.json.Decoder(_Event)


# --- request encoding ---------------------------------------------------------------------------------


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, *params = header.split(";")
        if not sep or not media_type or "base64" not in params:
            raise RequestError(
                "image data URIs must look like data:<media type>;base64,<data>", param="messages"
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise RequestError("image URLs must be http(s) URLs or base64 data URIs", param="messages")


def _blocks(content: str | list[ContentPart] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        # Anthropic refuses empty text blocks, and an assistant turn with only tool calls has no text.
        return [{"type": "text", "text": content}] if content else []
    out: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:
                out.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            out.append(_image_block(part.image_url.url))
    return out


def _tool_use(call: ToolCall) -> dict[str, Any]:
    try:
        args = msgspec.json.decode(call.function.arguments or "{}")
    except msgspec.DecodeError as exc:
        raise RequestError(
            f"tool call {call.id!r} has arguments that are not valid JSON", param="messages"
        ) from exc
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise RequestError(f"tool call {call.id!r} arguments must be a JSON object", param="messages")
    return {"type": "tool_use", "id": call.id, "name": call.function.name, "input": args}


def _turn(message: Message) -> tuple[str, list[dict[str, Any]]] | None:
    if message.role == "tool":
        if not message.tool_call_id:
            raise RequestError("tool messages need the tool_call_id they answer", param="messages")
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if isinstance(message.content, list):
            result["content"] = _blocks(message.content)
        else:
            result["content"] = message.content or ""
        return "user", [result]
    blocks = _blocks(message.content)
    if message.role == "assistant":
        blocks += [_tool_use(call) for call in message.tool_calls or []]
        if not blocks:
            return None  # an empty assistant turn would be refused and carries nothing
    return message.role, blocks


def encode_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Convert canonical non-system messages to alternating Anthropic turns.

    A turn made of one plain-text message keeps its string content; merged or multi-part turns use
    content blocks.
    """
    turns: list[tuple[str, list[dict[str, Any]], list[Message]]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        turn = _turn(message)
        if turn is None:
            continue
        role, blocks = turn
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
            turns[-1][2].append(message)
        else:
            turns.append((role, blocks, [message]))
    out: list[dict[str, Any]] = []
    for role, blocks, sources in turns:
        only = sources[0]
        plain = (
            len(sources) == 1
            and isinstance(only.content, str)
            and only.role != "tool"
            and not only.tool_calls
        )
        out.append({"role": role, "content": only.content if plain else blocks})
    return out


def _tool_def(fn: FunctionDef) -> dict[str, Any]:
    out = {
        "name": fn.name,
        "description": fn.description,
        "input_schema": fn.parameters or {"type": "object", "properties": {}},
        "strict": fn.strict,
    }
    return {k: v for k, v in out.items() if v is not None}


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        out: dict[str, Any] = {"type": "tool", "name": choice.function.name}
    elif choice == "none":
        return {"type": "none"}  # takes no disable_parallel_tool_use
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "auto" or request.parallel_tool_calls is False:
        out = {"type": "auto"}
    else:
        return None
    if request.parallel_tool_calls is False:
        out["disable_parallel_tool_use"] = True
    return out


def _merge_extra(body: dict[str, Any], extra: dict[str, Any] | None) -> None:
    for key, value in (extra or {}).items():
        current = body.get(key)
        body[key] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value


def _usage(raw: _Usage | None) -> Usage:
    if raw is None:
        return Usage()
    cached = raw.cache_read_input_tokens or 0
    prompt = (raw.input_tokens or 0) + cached + (raw.cache_creation_input_tokens or 0)
    completion = raw.output_tokens or 0
    details = raw.output_tokens_details
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=cached,
        reasoning_tokens=(details.thinking_tokens or 0) if details else 0,
    )


def _upstream_error(provider: str, detail: _ErrorDetail) -> ProviderError:
    status = _ERROR_STATUS.get(detail.type or "", 500)
    error = error_for_status(provider or "anthropic", status, {}, detail.message, kind=detail.type)
    error.provider = provider  # left empty, the transport fills in the configured provider's name
    return error


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value if value is not None else {}).decode()


# --- the wire format ----------------------------------------------------------------------------------


class AnthropicWire(WireFormat):
    """The Anthropic Messages API wire format.

    Args:
        provider: Provider name for errors raised while parsing answers (empty: the transport's name).
        version: The ``anthropic-version`` header.
        beta: Beta features, sent as the comma-joined ``anthropic-beta`` header (and ``?beta=true``, as
            Anthropic's SDKs do for beta calls).
        default_max_tokens: ``max_tokens`` sent when the request has none (Anthropic requires it).
        messages_path: Path of the Messages endpoint; ``/count_tokens`` is appended for token counts and
            the sibling ``models`` path (when it ends in ``/messages``) lists models.
        structured_output: How ``json_schema`` response formats are served: ``native``
            (``output_config.format``) or ``tool`` (a forced tool, for models without structured outputs).
    """

    def __init__(
        self,
        *,
        provider: str = "",
        version: str = "2023-06-01",
        beta: list[str] | tuple[str, ...] = (),
        default_max_tokens: int = 4096,
        messages_path: str = "/v1/messages",
        structured_output: Literal["native", "tool"] = "native",
    ) -> None:
        self.provider = provider
        self.version = version
        self.beta = list(beta)
        self.default_max_tokens = default_max_tokens
        self.messages_path = messages_path
        self.structured_output = structured_output

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """``x-api-key``, ``anthropic-version`` and, with betas, ``anthropic-beta``."""
        headers = {"anthropic-version": self.version}
        if api_key:
            headers["x-api-key"] = api_key
        if self.beta:
            headers["anthropic-beta"] = ",".join(self.beta)
        return headers

    def _params(self) -> dict[str, str] | None:
        return {"beta": "true"} if self.beta else None

    def chat_path(self, model: str, stream: bool) -> tuple[str, dict[str, str] | None]:
        """The Messages endpoint (streaming is a body flag)."""
        return self.messages_path, self._params()

    def count_tokens_path(self) -> tuple[str, dict[str, str] | None]:
        """Path and query of the token-counting endpoint."""
        return f"{self.messages_path.rstrip('/')}/count_tokens", self._params()

    def models_path(self) -> str | None:
        """``.../models`` beside ``.../messages`` (None when the messages path does not end that way)."""
        head, sep, tail = self.messages_path.rstrip("/").rpartition("/messages")
        return f"{head}/models" if sep and not tail else None

    def chat_body(self, request: ChatRequest, model: str, stream: bool) -> dict[str, Any]:
        """The Messages request body (see the module docstring for the conversions)."""
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens or self.default_max_tokens,
            "messages": encode_messages(request.messages),
        }
        optional = {
            "system": request.system_text() or None,
            "stream": True if stream else None,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "stop_sequences": list(request.stop) if request.stop else None,
            "metadata": {"user_id": request.user} if request.user else None,
        }
        body.update((k, v) for k, v in optional.items() if v is not None)
        tools = [_tool_def(t.function) for t in request.tools or []]
        choice = _tool_choice(request)
        fmt = request.response_format
        if fmt is not None and fmt.type != "text":
            schema = fmt.json_schema.schema_ if fmt.json_schema is not None else None
            if fmt.type == "json_schema" and schema and self.structured_output == "native":
                body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
            else:
                tools.append(
                    {
                        "name": JSON_TOOL,
                        "description": _JSON_TOOL_HELP,
                        "input_schema": schema or {"type": "object"},
                    }
                )
                choice = {"type": "tool", "name": JSON_TOOL}
        if tools:
            body["tools"] = tools
            if choice is not None:
                body["tool_choice"] = choice
        _merge_extra(body, request.extra)
        return body

    def count_tokens_body(self, request: ChatRequest, model: str) -> dict[str, Any]:
        """The count_tokens body: the chat body without generation-only parameters."""
        body = self.chat_body(request, model, False)
        return {k: v for k, v in body.items() if k in _COUNT_TOKENS_KEYS}

    def parse_count_tokens(self, body: bytes) -> int:
        """Decode a token count."""
        return msgspec.json.decode(body, type=_TokenCount).input_tokens

    def parse_chat(self, body: bytes) -> ChatResponse:
        """Decode a Messages answer."""
        msg = _MESSAGE.decode(body)
        if msg.error is not None:
            raise _upstream_error(self.provider, msg.error)
        if msg.content is None:
            raise MalformedResponse(f"{self.provider}: answer has no content blocks", provider=self.provider)
        texts: list[str] = []
        thinking: list[str] = []
        calls: list[ToolCall] = []
        server: list[dict[str, Any]] = []
        json_answer = False
        for block in msg.content:
            if block.type == "text" and block.text:
                texts.append(block.text)
            elif block.type == "thinking" and block.thinking:
                thinking.append(block.thinking)
            elif block.type == "tool_use" and block.name == JSON_TOOL:
                texts.append(_json_text(block.input))
                json_answer = True
            elif block.type == "tool_use":
                calls.append(
                    ToolCall(
                        id=block.id or new_id("toolu"),
                        function=FunctionCall(block.name or "", _json_text(block.input)),
                    )
                )
            elif block.type in _SERVER_TOOL_BLOCKS:
                server.append({"type": block.type, "id": block.id, "name": block.name, "input": block.input})
        finish = _FINISH.get(msg.stop_reason or "")
        if json_answer and finish == "tool_calls" and not calls:
            finish = "stop"
        metadata: dict[str, Any] = {}
        if msg.stop_reason:
            metadata["stop_reason"] = msg.stop_reason
        if msg.stop_sequence:
            metadata["stop_sequence"] = msg.stop_sequence
        if server:
            metadata["server_tool_calls"] = server
        return ChatResponse(
            id=msg.id or new_id("msg"),
            raw_id=msg.id,
            content="".join(texts),
            tool_calls=calls,
            finish_reason=finish,
            usage=_usage(msg.usage),
            model=msg.model or "",
            reasoning="".join(thinking) or None,
            metadata=metadata,
        )

    def stream_parser(self) -> StreamParser:
        """A fresh parser for one SSE stream."""
        return AnthropicStreamParser(self)

    def parse_error(self, body: bytes) -> tuple[str, str | None, str | None]:
        """``(message, code, kind)`` from ``{"type": "error", "error": {"type", "message"}}``."""
        try:
            detail = msgspec.json.decode(body, type=_ErrorBody).error
        except (msgspec.DecodeError, msgspec.ValidationError):
            detail = None
        if detail is None:
            return body.decode("utf-8", "replace")[:500].strip(), None, None
        return detail.message, detail.type, detail.type

    def parse_models_page(self, body: bytes) -> tuple[list[str], str | None]:
        """Model ids of one page and the cursor of the next page (None on the last)."""
        page = msgspec.json.decode(body, type=_ModelsPage)
        return [m.id for m in page.data], page.last_id if page.has_more else None

    def parse_models(self, body: bytes) -> list[str]:
        """Model ids of one ``/v1/models`` page."""
        return self.parse_models_page(body)[0]


class _OpenBlock(msgspec.Struct):
    kind: Literal["text", "thinking", "tool", "json", "other"]
    tool_index: int = -1
    start_input: Any = None
    has_args: bool = False


class AnthropicStreamParser(StreamParser):
    """Turns Anthropic's SSE events into canonical chunks.

    Tool calls are indexed by their running number among the answer's tool calls (not by content block);
    the first fragment carries ``id`` and ``name``. Usage starts from ``message_start`` and is overwritten
    field by field by ``message_delta``, whose counts are cumulative.
    """

    def __init__(self, wire: AnthropicWire) -> None:
        super().__init__()
        self._wire = wire
        self._blocks: dict[int, _OpenBlock] = {}
        self._tools = 0
        self._json_answer = False
        self._raw_usage = _Usage()

    def _add_usage(self, raw: _Usage | None) -> None:
        if raw is None:
            return
        for field in _COUNTS:
            value = getattr(raw, field)
            if value is not None:
                setattr(self._raw_usage, field, value)
        if raw.output_tokens_details is not None:
            self._raw_usage.output_tokens_details = raw.output_tokens_details
        self.usage = _usage(self._raw_usage)

    def feed(self, event: str, data: str) -> list[ChatChunk]:
        """Parse one SSE event."""
        ev = _EVENT.decode(data)
        kind = ev.type
        if kind == "message_start" and ev.message is not None:
            self.response_id = ev.message.id
            self.model = ev.message.model
            self._add_usage(ev.message.usage)
        elif kind == "content_block_start" and ev.content_block is not None:
            return self._start(ev.index, ev.content_block)
        elif kind == "content_block_delta" and ev.delta is not None:
            return self._delta(ev.index, ev.delta)
        elif kind == "content_block_stop":
            return self._stop(ev.index)
        elif kind == "message_delta":
            self._add_usage(ev.usage)
            reason = ev.delta.stop_reason if ev.delta is not None else None
            if reason:
                finish = _FINISH.get(reason)
                if finish == "tool_calls" and self._json_answer and not self._tools:
                    finish = "stop"
                return [ChatChunk(finish_reason=finish)] if finish else []
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise _upstream_error(self._wire.provider, ev.error or _ErrorDetail(message="stream error"))
        return []

    def _start(self, index: int, block: _Block) -> list[ChatChunk]:
        if block.type == "tool_use" and block.name == JSON_TOOL:
            self._json_answer = True
            self._blocks[index] = _OpenBlock("json", start_input=block.input)
            return []
        if block.type == "tool_use":
            self._blocks[index] = _OpenBlock("tool", tool_index=self._tools, start_input=block.input)
            self._tools += 1
            delta = ToolCallDelta(
                index=self._tools - 1, id=block.id or new_id("toolu"), name=block.name or ""
            )
            return [ChatChunk(tool_calls=[delta])]
        if block.type == "text":
            self._blocks[index] = _OpenBlock("text")
            return [ChatChunk(delta=block.text)] if block.text else []
        if block.type == "thinking":
            self._blocks[index] = _OpenBlock("thinking")
            return [ChatChunk(reasoning=block.thinking)] if block.thinking else []
        self._blocks[index] = _OpenBlock("other")
        return []

    def _delta(self, index: int, delta: _Delta) -> list[ChatChunk]:
        block = self._blocks.get(index)
        if block is None:
            return []
        if delta.type == "text_delta" and delta.text and block.kind == "text":
            return [ChatChunk(delta=delta.text)]
        if delta.type == "thinking_delta" and delta.thinking and block.kind == "thinking":
            return [ChatChunk(reasoning=delta.thinking)]
        if delta.type == "input_json_delta" and delta.partial_json:
            block.has_args = True
            if block.kind == "tool":
                return [
                    ChatChunk(
                        tool_calls=[ToolCallDelta(index=block.tool_index, arguments=delta.partial_json)]
                    )
                ]
            if block.kind == "json":
                return [ChatChunk(delta=delta.partial_json)]
        return []

    def _stop(self, index: int) -> list[ChatChunk]:
        block = self._blocks.pop(index, None)
        if block is None or block.has_args or block.kind not in ("tool", "json"):
            return []
        # A call without input deltas (a tool with no parameters) still gets valid JSON arguments.
        args = _json_text(block.start_input)
        if block.kind == "json":
            return [ChatChunk(delta=args)]
        return [ChatChunk(tool_calls=[ToolCallDelta(index=block.tool_index, arguments=args)])]


# --- the provider ---------------------------------------------------------------------------------------


class AnthropicOptions(BaseModel):
    """Options of ``type: anthropic`` providers."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    anthropic_version: str = "2023-06-01"
    beta: list[str] = Field(
        default_factory=list, description="anthropic-beta features, e.g. a dated beta name."
    )
    default_max_tokens: int = Field(default=4096, ge=1, description="max_tokens when a request sets none.")
    structured_output: Literal["native", "tool"] = Field(
        default="native", description="Serve json_schema response formats natively or through a forced tool."
    )


_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError)
_MAX_MODEL_PAGES = 20


class AnthropicProvider(HttpProvider):
    """Claude through the Anthropic Messages API (``x-api-key`` authentication)."""

    kind = "anthropic"
    Options = AnthropicOptions
    default_base_url = "https://api.anthropic.com"
    wire: AnthropicWire

    def make_wire(self) -> AnthropicWire:
        """Build the wire format from the provider's options."""
        opts = self.options if isinstance(self.options, AnthropicOptions) else AnthropicOptions()
        return AnthropicWire(
            provider=self.config.name,
            version=opts.anthropic_version,
            beta=opts.beta,
            default_max_tokens=opts.default_max_tokens,
            structured_output=opts.structured_output,
        )

    async def count_tokens(self, request: ChatRequest) -> int:
        """Count the input tokens a chat request would use (``POST /v1/messages/count_tokens``).

        Raises:
            ProviderError: the provider refused or failed (mapped like chat errors).
        """
        model = self.resolve_model(request.model)
        path, params = self.wire.count_tokens_path()
        raw = await self.http.request(
            "POST", path, body=self.wire.count_tokens_body(request, model), params=params
        )
        if raw.status >= 400:
            raise self._fail(raw)
        try:
            return self.wire.parse_count_tokens(raw.body)
        except _DECODE_ERRORS as exc:
            raise self._malformed(exc) from exc

    async def list_models(self) -> list[str]:
        """Every model of ``/v1/models``, following its pages."""
        path = self.wire.models_path()
        if path is None:
            return await super().list_models()
        ids: list[str] = []
        cursor: str | None = None
        for _ in range(_MAX_MODEL_PAGES):
            params = {"limit": "1000", **({"after_id": cursor} if cursor else {})}
            raw = await self.http.request("GET", path, params=params)
            if raw.status >= 400:
                raise self._fail(raw)
            try:
                page, cursor = self.wire.parse_models_page(raw.body)
            except _DECODE_ERRORS as exc:
                raise self._malformed(exc) from exc
            ids += page
            if cursor is None:
                break
        return ids
