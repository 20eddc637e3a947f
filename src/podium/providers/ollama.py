"""Ollama's native API: chat, generate, embed (or legacy embeddings), tags and show under ``/api``.

Ollama differs from the OpenAI shape in ways callers would notice if they leaked through:

- it streams by default, so every request states ``stream`` explicitly;
- streams are NDJSON (one JSON object a line, no ``[DONE]``); the last line has ``done: true``,
  ``done_reason``, the token counts and durations in nanoseconds; a failure after the 200 header
  arrives as an ``{"error": "..."}`` line;
- sampling parameters live in ``options`` (``max_tokens`` is ``num_predict``);
- images are bare base64 strings in the message's ``images`` list (Ollama fetches no URLs);
- tool-call arguments are JSON objects (not JSON text) and carry no id; tool results name the tool in
  ``tool_name``;
- errors are ``{"error": "message"}`` with an HTTP status.

Ollama's OpenAI-compatible ``/v1`` is served by the ``openai`` adapter, not this one.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from podium.backend import CallContext
from podium.errors import ConfigError, MalformedResponse, ProviderError, RequestError
from podium.providers._http import error_for_status
from podium.providers.base import (
    HttpProvider,
    ProviderConfig,
    StreamParser,
    StreamTarget,
    WireFormat,
    new_id,
)
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
    FunctionDef,
    Message,
    NamedToolChoice,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)

EmbedEndpoint = Literal["embed", "embeddings"]

_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class _Function(msgspec.Struct):
    name: str
    arguments: dict[str, Any] | str | None = None


class _ToolCall(msgspec.Struct):
    function: _Function
    id: str | None = None  # newer servers may send one; older ones never do


class _Message(msgspec.Struct):
    content: str = ""
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Answer(msgspec.Struct):
    """A whole ``/api/chat`` or ``/api/generate`` answer, or one NDJSON line of a stream."""

    model: str = ""
    message: _Message | None = None
    response: str | None = None  # /api/generate
    thinking: str | None = None  # /api/generate with "think"
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None


class _EmbedAnswer(msgspec.Struct):
    embeddings: list[list[float]]
    model: str = ""
    prompt_eval_count: int = 0


class _LegacyEmbedAnswer(msgspec.Struct):
    embedding: list[float]


class _TagModel(msgspec.Struct):
    name: str = ""
    model: str = ""


class _Tags(msgspec.Struct):
    models: list[_TagModel] | None = None


class _Details(msgspec.Struct):
    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class _Show(msgspec.Struct):
    license: str = ""
    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    system: str = ""
    details: _Details = msgspec.field(default_factory=_Details)
    model_info: dict[str, Any] = msgspec.field(default_factory=dict)
    capabilities: list[str] = msgspec.field(default_factory=list)
    modified_at: str = ""


class _ErrorBody(msgspec.Struct):
    error: str


class OllamaWire(WireFormat):
    """Encodes canonical requests for Ollama's native API and decodes its answers.

    Usable on its own (the ``custom`` provider builds one).

    Args:
        name: Provider name used in error messages.
        keep_alive: How long Ollama keeps the model loaded after a request (``"5m"``, ``"1h"``, ``"0"``;
            a plain number means seconds).
        options: Model options sent with every request (``num_ctx``, ``top_k``, ...); request parameters
            override them.
        embed_endpoint: ``"embed"`` (``/api/embed``, batched) or ``"embeddings"`` (legacy
            ``/api/embeddings``, one text per request).
    """

    framing = "ndjson"
    has_embeddings = True
    has_completions = True

    def __init__(
        self,
        *,
        name: str = "ollama",
        keep_alive: str | None = None,
        options: Mapping[str, Any] | None = None,
        embed_endpoint: EmbedEndpoint = "embed",
    ) -> None:
        self.name = name
        self.keep_alive = _keep_alive(keep_alive)
        self.options = dict(options or {})
        self.embed_endpoint: EmbedEndpoint = embed_endpoint

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """A bearer token only when one is configured (Ollama cloud, authenticating proxies)."""
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def chat_path(self, model: str, stream: bool) -> tuple[str, dict[str, str] | None]:
        """``/api/chat`` for streamed and whole answers alike."""
        return "/api/chat", None

    def chat_body(self, request: ChatRequest, model: str, stream: bool) -> dict[str, Any]:
        """The ``/api/chat`` body; ``stream`` is always explicit since Ollama streams by default."""
        body: dict[str, Any] = {"model": model, "messages": _messages(request.messages), "stream": stream}
        fmt = _format(request)
        if fmt is not None:
            body["format"] = fmt
        tools = _tools(request)
        if tools:
            body["tools"] = tools
        return self._complete_body(body, request)

    def parse_chat(self, body: bytes) -> ChatResponse:
        """Decode a whole ``/api/chat`` answer."""
        answer = msgspec.json.decode(body, type=_Answer)
        if answer.error is not None:
            raise self.answer_error(answer.error)
        if answer.message is None:
            raise MalformedResponse(f"{self.name}: chat answer has no message", provider=self.name)
        calls = _tool_calls(answer.message.tool_calls)
        text = answer.message.content
        return ChatResponse(
            id=new_id(),
            content=text if text or not calls else None,
            tool_calls=calls,
            finish_reason=_finish(answer.done_reason, bool(calls)),
            usage=_usage(answer),
            model=answer.model,
            reasoning=answer.message.thinking or None,
        )

    def stream_parser(self) -> OllamaStreamParser:
        """A parser for one NDJSON stream of ``/api/chat`` or ``/api/generate``."""
        return OllamaStreamParser(self)

    def parse_error(self, body: bytes) -> tuple[str, str | None, str | None]:
        """``{"error": "message"}``; any other body (a proxy's HTML, a plain-text 404) as text."""
        try:
            return msgspec.json.decode(body, type=_ErrorBody).error, None, None
        except _DECODE_ERRORS:
            return body.decode("utf-8", "replace").strip()[:500], None, None

    def answer_error(self, message: str) -> ProviderError:
        """Map an error reported inside a 200 answer (a failure after the headers were sent).

        Ollama does this when the model runner fails mid-generation (crash, out of memory): a server
        failure, so it maps like an HTTP 500 (retryable, another provider may answer).
        """
        return error_for_status(self.name, 500, {}, message)

    def completion_path(self, model: str) -> str:
        """``/api/generate``."""
        return "/api/generate"

    def completion_body(self, request: CompletionRequest, model: str, stream: bool = False) -> dict[str, Any]:
        """The ``/api/generate`` body (``prompt`` in, ``response`` out)."""
        return self._complete_body({"model": model, "prompt": request.prompt, "stream": stream}, request)

    def parse_completion(self, body: bytes) -> CompletionResponse:
        """Decode a whole ``/api/generate`` answer."""
        answer = msgspec.json.decode(body, type=_Answer)
        if answer.error is not None:
            raise self.answer_error(answer.error)
        if answer.response is None:
            raise MalformedResponse(f"{self.name}: generate answer has no response", provider=self.name)
        return CompletionResponse(
            id=new_id("cmpl"),
            text=answer.response,
            finish_reason=_finish(answer.done_reason, False),
            usage=_usage(answer),
            model=answer.model,
        )

    def embed_path(self, model: str, count: int) -> str:
        """``/api/embed`` or the legacy ``/api/embeddings``."""
        return f"/api/{self.embed_endpoint}"

    def embed_body(self, request: EmbedRequest, model: str) -> dict[str, Any]:
        """``{"model", "input": [...]}``, or ``{"model", "prompt"}`` for the legacy endpoint (one text)."""
        body: dict[str, Any] = {"model": model}
        if self.embed_endpoint == "embeddings":
            if len(request.input) != 1:
                raise RequestError(
                    f"{self.name}: the legacy /api/embeddings endpoint embeds one text per request; "
                    f"got {len(request.input)}",
                    param="input",
                )
            body["prompt"] = request.input[0]
        else:
            body["input"] = list(request.input)
            if request.dimensions is not None:
                body["dimensions"] = request.dimensions
        return self._complete_body(body, request)

    def parse_embed(self, body: bytes) -> EmbedResponse:
        """Decode ``{"embeddings": [[...]], "prompt_eval_count"}`` or legacy ``{"embedding": [...]}``."""
        if self.embed_endpoint == "embeddings":
            return EmbedResponse(embeddings=[msgspec.json.decode(body, type=_LegacyEmbedAnswer).embedding])
        answer = msgspec.json.decode(body, type=_EmbedAnswer)
        tokens = answer.prompt_eval_count
        return EmbedResponse(
            embeddings=answer.embeddings,
            model=answer.model,
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )

    def models_path(self) -> str | None:
        """``/api/tags`` (the locally available models)."""
        return "/api/tags"

    def parse_models(self, body: bytes) -> list[str]:
        """``models[].name``."""
        tags = msgspec.json.decode(body, type=_Tags)
        return [m.name or m.model for m in tags.models or [] if m.name or m.model]

    def show_body(self, model: str) -> dict[str, Any]:
        """The ``/api/show`` body; older servers read ``name``, newer ones ``model``, so both are sent."""
        return {"model": model, "name": model}

    def parse_show(self, body: bytes, model: str) -> dict[str, Any]:
        """Decode ``/api/show`` into plain data with typed details.

        ``parameters`` becomes a dict (numbers and booleans decoded, ``stop`` always a list) and
        ``context_length`` is read from ``model_info`` (None when the server does not say).
        """
        show = msgspec.json.decode(body, type=_Show)
        info: dict[str, Any] = msgspec.to_builtins(show)
        info["model"] = model
        info["parameters"] = _parse_parameters(show.parameters)
        info["context_length"] = _context_length(show.model_info)
        return info

    def _complete_body(
        self, body: dict[str, Any], request: ChatRequest | CompletionRequest | EmbedRequest
    ) -> dict[str, Any]:
        # Configured options are defaults; what the request asks for wins, and ``extra`` goes in last.
        options = dict(self.options)
        if not isinstance(request, EmbedRequest):
            sampling = {
                "temperature": request.temperature,
                "top_p": request.top_p,
                "num_predict": request.max_tokens,
                "stop": request.stop,
                "seed": request.seed,
            }
            options.update((k, v) for k, v in sampling.items() if v is not None)
        if options:
            body["options"] = options
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        _merge_extra(body, request.extra)
        return body


class OllamaStreamParser(StreamParser):
    """Turns Ollama's NDJSON lines (``/api/chat`` or ``/api/generate``) into canonical chunks.

    Ollama sends no response id, so one is made up per stream; tool calls arrive whole, each as one delta.
    """

    def __init__(self, wire: OllamaWire) -> None:
        super().__init__()
        self.wire = wire
        self.response_id = new_id()
        self.tool_count = 0

    def feed(self, event: str, data: str) -> list[ChatChunk]:
        """Parse one NDJSON line."""
        line = msgspec.json.decode(data, type=_Answer)
        if line.error is not None:
            raise self.wire.answer_error(line.error)
        self.model = line.model or self.model
        msg = line.message
        text = (msg.content if msg is not None else "") or (line.response or "")
        thinking = (msg.thinking if msg is not None else None) or line.thinking or None
        deltas: list[ToolCallDelta] | None = None
        if msg is not None and msg.tool_calls:
            deltas = [
                ToolCallDelta(
                    index=self.tool_count + i, id=c.id, name=c.function.name, arguments=c.function.arguments
                )
                for i, c in enumerate(_tool_calls(msg.tool_calls))
            ]
            self.tool_count += len(deltas)
        if line.done:
            self.done = True
            self.usage = _usage(line)
            finish = _finish(line.done_reason, self.tool_count > 0)
            return [ChatChunk(delta=text, reasoning=thinking, tool_calls=deltas, finish_reason=finish)]
        if text or thinking or deltas:
            return [ChatChunk(delta=text, reasoning=thinking, tool_calls=deltas)]
        return []


class OllamaOptions(BaseModel):
    """Settings of an ``ollama`` provider.

    ``keep_alive``, ``options`` and ``embed_endpoint`` mean what they mean for ``OllamaWire``;
    ``embedding_model`` embeds requests that name no model.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    keep_alive: str | None = None
    embedding_model: str | None = None
    embed_endpoint: EmbedEndpoint = "embed"
    options: dict[str, Any] = Field(default_factory=dict)


class OllamaProvider(HttpProvider):
    """A local (or cloud) Ollama server through its native API.

    No API key is needed locally; when one is configured it is sent as a bearer token.
    """

    kind = "ollama"
    Options = OllamaOptions
    default_base_url = "http://localhost:11434"
    wire: OllamaWire

    def __init__(self, config: ProviderConfig, options: BaseModel | None = None) -> None:
        super().__init__(config, options)
        # Ollama's docs give the base URL as ".../api"; the paths here carry "/api" themselves.
        if self.http.base_url.endswith("/api"):
            self.http.base_url = self.http.base_url[: -len("/api")]

    def make_wire(self) -> OllamaWire:
        """Build the wire format from this provider's options."""
        opts = self.options
        if not isinstance(opts, OllamaOptions):
            raise ConfigError(f"provider {self.config.name!r}: options must be OllamaOptions")
        return OllamaWire(
            name=self.config.name,
            keep_alive=opts.keep_alive,
            options=opts.options,
            embed_endpoint=opts.embed_endpoint,
        )

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed texts: one ``/api/embed`` request, or one legacy ``/api/embeddings`` request per text."""
        if self.wire.embed_endpoint == "embed" or len(request.input) <= 1:
            return await super().embed(request, ctx)
        t0 = time.perf_counter()
        # Sequential on purpose: Ollama queues one model's requests anyway, and parallel ones would only
        # hold more connections and memory on a local machine.
        parts: list[EmbedResponse] = []
        for text in request.input:  # a loop, not a comprehension: zero-argument super() needs this frame
            parts.append(await super().embed(msgspec.structs.replace(request, input=[text]), ctx))
        tokens = sum(p.usage.prompt_tokens for p in parts)
        return EmbedResponse(
            embeddings=[p.embeddings[0] for p in parts],
            model=parts[0].model,
            provider=self.name,
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
            latency_ms=(time.perf_counter() - t0) * 1000,
        )

    def stream_complete(self, request: CompletionRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Stream a legacy text completion from ``/api/generate``, in batches as ``stream`` does.

        The chunks' ``delta`` is the new text; the last chunk carries usage, as in chat streams.

        Raises:
            ProviderError: the upstream failed, refused, or ended the stream early (on iteration).
        """

        def target() -> StreamTarget:
            model = self.resolve_model(request.model)
            body = self.wire.completion_body(request, model, stream=True)
            return self.wire.completion_path(model), body, None, model

        # A server that ignores "stream" answers one JSON object, which is a one-line NDJSON body too.
        return self._stream_at(target, ctx, lines_only=True)

    async def show_model(self, model: str) -> dict[str, Any]:
        """Describe a model (``POST /api/show``).

        Returns:
            ``model``, ``details`` (``family``, ``parameter_size``, ``quantization_level``, ...),
            ``parameters`` (a dict), ``context_length`` (int or None), ``capabilities``, ``model_info``,
            ``template``, ``system``, ``license``, ``modelfile`` and ``modified_at``.

        Raises:
            ProviderNotFound: the server does not have the model.
            ProviderError: any other upstream failure.
        """
        body = await self._post("/api/show", self.wire.show_body(model), CallContext())
        try:
            return self.wire.parse_show(body, model)
        except _DECODE_ERRORS as exc:
            raise self._malformed(exc) from exc


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}  # tool_call_id -> function name, to label tool results
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        text, images = _content(m, i)
        item: dict[str, Any] = {"role": "system" if m.role == "developer" else m.role, "content": text}
        if images:
            item["images"] = images
        if m.tool_calls:
            item["tool_calls"] = [
                {"function": {"name": tc.function.name, "arguments": _arguments_object(tc, i)}}
                for tc in m.tool_calls
            ]
            tool_names.update((tc.id, tc.function.name) for tc in m.tool_calls)
        if m.role == "tool":
            name = tool_names.get(m.tool_call_id or "") or m.name
            if name:
                item["tool_name"] = name
        out.append(item)
    return out


def _content(m: Message, index: int) -> tuple[str, list[str]]:
    if m.content is None:
        return "", []
    if isinstance(m.content, str):
        return m.content, []
    texts: list[str] = []
    images: list[str] = []
    for part in m.content:
        if isinstance(part, TextPart):
            texts.append(part.text)
        else:
            images.append(_image_base64(part.image_url.url, index))
    return "\n".join(texts), images


def _image_base64(url: str, index: int) -> str:
    if url.startswith("data:"):
        head, sep, data = url.partition(",")
        if sep and data and head.lower().endswith(";base64"):
            return data
        raise RequestError(
            f"messages[{index}]: image data URIs must be base64-encoded (data:<media type>;base64,<data>)",
            param="messages",
        )
    raise RequestError(
        f"messages[{index}]: Ollama cannot fetch images by URL ({url[:80]}); "
        "send the image inline as a data:<media type>;base64,<data> URI",
        param="messages",
    )


def _arguments_object(tc: ToolCall, index: int) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(tc.function.arguments or "{}")
    except msgspec.DecodeError as exc:
        raise RequestError(
            f"messages[{index}]: arguments of tool call {tc.id!r} are not valid JSON", param="messages"
        ) from exc
    if not isinstance(value, dict):
        raise RequestError(
            f"messages[{index}]: arguments of tool call {tc.id!r} must be a JSON object", param="messages"
        )
    return value


def _tools(request: ChatRequest) -> list[dict[str, Any]] | None:
    # Ollama has no tool_choice: "none" withholds the tools, a named choice offers only that tool, and
    # "required" cannot be enforced (the model may still answer in text).
    if not request.tools or request.tool_choice == "none":
        return None
    tools = request.tools
    if isinstance(request.tool_choice, NamedToolChoice):
        wanted = request.tool_choice.function.name
        tools = [t for t in tools if t.function.name == wanted]
        if not tools:
            raise RequestError(
                f"tool_choice names {wanted!r}, which is not among the tools", param="tool_choice"
            )
    return [{"type": "function", "function": _function(t.function)} for t in tools]


def _function(f: FunctionDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name}
    if f.description is not None:
        out["description"] = f.description
    if f.parameters is not None:
        out["parameters"] = f.parameters
    return out


def _format(request: ChatRequest) -> str | dict[str, Any] | None:
    rf = request.response_format
    if rf is None or rf.type == "text":
        return None
    if rf.type == "json_schema" and rf.json_schema is not None and rf.json_schema.schema_:
        return rf.json_schema.schema_
    return "json"


def _merge_extra(body: dict[str, Any], extra: Mapping[str, Any] | None) -> None:
    # Extra parameters go in last; extra "options" add to the model options instead of replacing them.
    for key, value in (extra or {}).items():
        if key == "options" and isinstance(value, Mapping) and isinstance(body.get("options"), dict):
            body["options"] = {**body["options"], **value}
        else:
            body[key] = value


def _keep_alive(value: str | None) -> str | int | float | None:
    # Ollama reads a JSON number as seconds but a string only as a Go duration ("5m"), so "300" must go
    # as a number.
    if value is None or not _NUMBER.match(value.strip()):
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


def _tool_calls(calls: list[_ToolCall] | None) -> list[ToolCall]:
    return [
        ToolCall(
            id=c.id or new_id("call"), function=FunctionCall(name=c.function.name, arguments=_json_text(c))
        )
        for c in calls or []
    ]


def _json_text(call: _ToolCall) -> str:
    args = call.function.arguments
    if isinstance(args, str):
        return args or "{}"
    return msgspec.json.encode(args or {}).decode()


def _finish(reason: str | None, has_tool_calls: bool) -> FinishReason:
    # Ollama says "stop" even when the answer is tool calls; "load"/"unload" answer model (un)loading.
    if reason == "length":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def _usage(answer: _Answer) -> Usage:
    prompt, completion = answer.prompt_eval_count, answer.eval_count
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _parse_parameters(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in text.splitlines():
        key, _, raw = line.strip().partition(" ")
        if not key:
            continue
        value = _scalar(raw.strip())
        if key == "stop":
            out.setdefault("stop", []).append(value)
        elif key in out:
            previous = out[key]
            out[key] = [*(previous if isinstance(previous, list) else [previous]), value]
        else:
            out[key] = value
    return out


def _scalar(raw: str) -> Any:
    try:
        return msgspec.json.decode(raw)  # quoted strings, numbers, true/false
    except msgspec.DecodeError:
        return raw


def _context_length(model_info: Mapping[str, Any]) -> int | None:
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if isinstance(arch, str) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
