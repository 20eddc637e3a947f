"""Google Gemini: the Gemini API (``generativelanguage.googleapis.com``) and Vertex AI publisher models.

Both speak one body format (``contents`` of ``user``/``model`` turns made of parts). The Vertex AI base URL
ends in ``.../publishers/google``, so paths are the same (``/models/{model}:generateContent``); only
embeddings, token counting and model listing differ, and ``GoogleWire(vertex=True)`` handles those.
"""

from __future__ import annotations

import base64
import mimetypes
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from podium.backend import CallContext
from podium.errors import (
    MalformedResponse,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    RequestError,
)
from podium.providers._http import error_for_status
from podium.providers.base import HttpProvider, StreamParser, WireFormat, new_id
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    FunctionCall,
    ImagePart,
    Message,
    NamedToolChoice,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# Gemini 3 rejects replayed function calls without a thought signature. The canonical ToolCall cannot carry
# the real one, so we send the value Google documents for history it did not produce (base64 of
# "skip_thought_signature_validator"); older models ignore it.
_SKIP_SIGNATURE = base64.b64encode(b"skip_thought_signature_validator").decode()
_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MODEL_ARMOR"})
_FILTERED |= {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


# --- upstream payloads (unknown fields are ignored)


class _FunctionCall(msgspec.Struct):
    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    index: int = 0


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    cached_content_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    total_token_count: int | None = None


class _PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None
    block_reason_message: str | None = None


class _ErrorDetail(msgspec.Struct, rename="camel"):
    reason: str | None = None
    retry_delay: str | None = None


class _Error(msgspec.Struct):
    code: int | str | None = None
    message: str = ""
    status: str | None = None
    details: list[_ErrorDetail] = []


class _ErrorEnvelope(msgspec.Struct):
    error: _Error


class _GenerateResponse(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _UsageMetadata | None = None
    prompt_feedback: _PromptFeedback | None = None
    model_version: str | None = None
    response_id: str | None = None
    error: _Error | None = None


class _Values(msgspec.Struct):
    values: list[float]


class _EmbedResponse(msgspec.Struct, rename="camel"):
    embedding: _Values | None = None
    embeddings: list[_Values] | None = None
    usage_metadata: _UsageMetadata | None = None


class _Model(msgspec.Struct):
    name: str


class _ModelList(msgspec.Struct):
    models: list[_Model] = []


class _TokenCount(msgspec.Struct, rename="camel"):
    total_tokens: int


# --- helpers


def model_resource(model: str) -> str:
    """The resource path of a model: ``gemini-2.5-flash`` and ``models/gemini-2.5-flash`` give ``models/...``.

    Other resource names (``tunedModels/x``) are kept as they are.
    """
    name = model.removeprefix("models/")
    return name if "/" in name else f"models/{name}"


def _usage(u: _UsageMetadata | None) -> Usage:
    if u is None:
        return Usage()
    # Tool-use prompt tokens (code execution, search) are billed as input, and totalTokenCount includes them.
    prompt = u.prompt_token_count + u.tool_use_prompt_token_count
    completion = u.candidates_token_count + u.thoughts_token_count
    total = u.total_token_count if u.total_token_count is not None else prompt + completion
    return Usage(prompt, completion, total, u.cached_content_token_count, u.thoughts_token_count)


def _finish(reason: str | None, has_calls: bool) -> FinishReason | None:
    if reason is None:
        return None
    if reason in _FILTERED:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    # Gemini says STOP after function calls too.
    return "tool_calls" if has_calls else "stop"


def _first_candidate(resp: _GenerateResponse) -> _Candidate | None:
    return next((c for c in resp.candidates if c.index == 0), None)


def _split(cand: _Candidate) -> tuple[str, str, list[_FunctionCall]]:
    """Answer text, thought text and function calls of a candidate (server-side tool parts are skipped)."""
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[_FunctionCall] = []
    for part in cand.content.parts if cand.content else []:
        if part.function_call is not None:
            calls.append(part.function_call)
        elif part.text:
            (thoughts if part.thought else text).append(part.text)
    return "".join(text), "".join(thoughts), calls


def _call_id(call: _FunctionCall) -> str:
    return call.id or f"call_{uuid.uuid4().hex[:24]}"


def _args_json(call: _FunctionCall) -> str:
    return msgspec.json.encode(call.args or {}).decode()


def _image_part(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise RequestError("image data URI has no ',' before its data", param="messages")
        mime, _, params = header.partition(";")
        if "base64" in params.split(";"):
            data = payload
        else:
            data = base64.b64encode(urllib.parse.unquote_to_bytes(payload)).decode()
        return {"inlineData": {"mimeType": mime or "image/jpeg", "data": data}}
    guessed, _ = mimetypes.guess_type(urllib.parse.urlsplit(url).path)
    return {"fileData": {"fileUri": url, "mimeType": guessed or "image/jpeg"}}


def _user_parts(msg: Message) -> list[dict[str, Any]]:
    if msg.content is None:
        return []
    if isinstance(msg.content, str):
        return [{"text": msg.content}] if msg.content else []
    parts: list[dict[str, Any]] = []
    for p in msg.content:
        if isinstance(p, TextPart):
            if p.text:
                parts.append({"text": p.text})
        elif isinstance(p, ImagePart):
            parts.append(_image_part(p.image_url.url))
    return parts


def _call_parts(msg: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for i, tc in enumerate(msg.tool_calls or []):
        try:
            args = msgspec.json.decode(tc.function.arguments or "{}")
        except msgspec.DecodeError as exc:
            raise RequestError(
                f"tool call {tc.id!r} has arguments that are not JSON: {exc}", param="messages"
            ) from exc
        if not isinstance(args, dict):
            raise RequestError(f"tool call {tc.id!r} arguments must be a JSON object", param="messages")
        part: dict[str, Any] = {"functionCall": {"name": tc.function.name, "args": args, "id": tc.id}}
        if i == 0:  # Gemini puts the signature on the first call of a step
            part["thoughtSignature"] = _SKIP_SIGNATURE
        parts.append(part)
    return parts


def _result_part(msg: Message, names: Mapping[str, str]) -> dict[str, Any]:
    name = names.get(msg.tool_call_id or "") or msg.name
    if not name:
        raise RequestError(
            f"tool message answers unknown tool call {msg.tool_call_id!r}: Gemini needs the function name",
            param="messages",
        )
    text = msg.text()
    try:
        value: Any = msgspec.json.decode(text) if text else ""
    except msgspec.DecodeError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    out: dict[str, Any] = {"name": name, "response": response}
    if msg.tool_call_id:
        out["id"] = msg.tool_call_id
    return {"functionResponse": out}


def contents(messages: list[Message]) -> list[dict[str, Any]]:
    """Canonical messages (system ones excluded) as Gemini ``contents``, same-role turns merged."""
    names = {tc.id: tc.function.name for m in messages for tc in m.tool_calls or []}
    turns: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role in ("system", "developer"):
            continue
        if msg.role == "assistant":
            role, parts = "model", [{"text": msg.text()}] if msg.text() else []
            parts += _call_parts(msg)
        elif msg.role == "tool":
            role, parts = "user", [_result_part(msg, names)]
        else:
            role, parts = "user", _user_parts(msg)
        if not parts:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    return turns


def _merge(body: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """Merge ``extra`` into ``body``; objects merge one level deep so ``generationConfig`` keys add up."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value


def _duration(text: str | None) -> float | None:
    if not text or not text.endswith("s"):
        return None
    try:
        return max(0.0, float(text[:-1]))
    except ValueError:
        return None


def _decode_error(body: bytes) -> _Error | None:
    try:
        env = msgspec.json.decode(body, type=_ErrorEnvelope | list[_ErrorEnvelope])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if isinstance(env, list):
        return env[0].error if env else None
    return env.error


# --- the wire format


class GoogleWire(WireFormat):
    """The Gemini ``generateContent`` body format, usable on its own (the custom provider builds one).

    Args:
        auth: ``api_key`` sends ``x-goog-api-key``; ``bearer`` sends an OAuth access token (Vertex AI).
        safety_settings: ``safetySettings`` sent with every chat request.
        vertex: The base URL is a Vertex AI publisher (``.../publishers/google``): one text is embedded with
            ``:embedContent``, token counts take the request's fields at top level, and there is no listing.
        name: Provider name used in errors raised while parsing streams.
    """

    has_embeddings = True

    def __init__(
        self,
        *,
        auth: Literal["api_key", "bearer"] = "api_key",
        safety_settings: list[dict[str, Any]] | None = None,
        vertex: bool = False,
        name: str = "google",
    ) -> None:
        self.auth = auth
        self.safety_settings = safety_settings
        self.vertex = vertex
        self.name = name

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """``x-goog-api-key`` or ``Authorization: Bearer`` (nothing without a key)."""
        if not api_key:
            return {}
        if self.auth == "bearer":
            return {"Authorization": f"Bearer {api_key}"}
        return {"x-goog-api-key": api_key}

    def chat_path(self, model: str, stream: bool) -> tuple[str, dict[str, str] | None]:
        """``:generateContent``, or ``:streamGenerateContent?alt=sse`` (SSE instead of one JSON array)."""
        if stream:
            return f"/{model_resource(model)}:streamGenerateContent", {"alt": "sse"}
        return f"/{model_resource(model)}:generateContent", None

    def chat_body(self, request: ChatRequest, model: str, stream: bool) -> dict[str, Any]:
        """Translate a canonical chat request; ``request.extra`` is merged last."""
        body: dict[str, Any] = {"contents": contents(request.messages)}
        system = [
            {"text": m.text()} for m in request.messages if m.role in ("system", "developer") and m.text()
        ]
        if system:
            body["systemInstruction"] = {"parts": system}
        if request.tools:
            body["tools"] = [{"functionDeclarations": [self._declaration(t.function) for t in request.tools]}]
        if request.tool_choice is not None:
            choice = request.tool_choice
            if isinstance(choice, NamedToolChoice):
                config = {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}
            else:
                config = {"mode": _TOOL_MODES[choice]}
            body["toolConfig"] = {"functionCallingConfig": config}
        generation = self._generation_config(request)
        if generation:
            body["generationConfig"] = generation
        if self.safety_settings:
            body["safetySettings"] = list(self.safety_settings)
        if request.extra:
            _merge(body, request.extra)
        return body

    @staticmethod
    def _declaration(fn: Any) -> dict[str, Any]:
        decl: dict[str, Any] = {"name": fn.name}
        if fn.description:
            decl["description"] = fn.description
        if fn.parameters is not None:
            # parametersJsonSchema takes full JSON Schema; `parameters` only an OpenAPI subset.
            decl["parametersJsonSchema"] = fn.parameters
        return decl

    @staticmethod
    def _generation_config(request: ChatRequest) -> dict[str, Any]:
        gen: dict[str, Any] = {}
        for key, value in (
            ("temperature", request.temperature),
            ("topP", request.top_p),
            ("maxOutputTokens", request.max_tokens),
            ("stopSequences", request.stop),
            ("seed", request.seed),
        ):
            if value is not None:
                gen[key] = value
        fmt = request.response_format
        if fmt is not None and fmt.type != "text":
            gen["responseMimeType"] = "application/json"
            if fmt.type == "json_schema" and fmt.json_schema is not None:
                gen["responseJsonSchema"] = fmt.json_schema.schema_
        return gen

    def parse_chat(self, body: bytes) -> ChatResponse:
        """Decode a ``generateContent`` answer."""
        resp = msgspec.json.decode(body, type=_GenerateResponse)
        if resp.error is not None:
            raise self._error_of(resp.error)
        cand = _first_candidate(resp)
        text, thoughts, calls = _split(cand) if cand else ("", "", [])
        tool_calls = [ToolCall(id=_call_id(c), function=FunctionCall(c.name, _args_json(c))) for c in calls]
        metadata: dict[str, Any] = {}
        if cand is None:
            feedback = resp.prompt_feedback
            if feedback is None or not feedback.block_reason:
                raise MalformedResponse(f"{self.name}: answer has neither candidates nor a block reason")
            finish: FinishReason | None = "content_filter"
            metadata = {"block_reason": feedback.block_reason, "block_message": feedback.block_reason_message}
        else:
            finish = _finish(cand.finish_reason or "STOP", bool(calls))
        rid = resp.response_id
        return ChatResponse(
            id=rid or new_id(),
            content=text if text or not tool_calls else None,
            tool_calls=tool_calls,
            finish_reason=finish,
            usage=_usage(resp.usage_metadata),
            model=resp.model_version or "",
            raw_id=rid,
            reasoning=thoughts or None,
            metadata=metadata,
        )

    def stream_parser(self) -> StreamParser:
        """A parser for one ``alt=sse`` stream (or the JSON array sent without it)."""
        return GoogleStreamParser(self)

    def parse_error(self, body: bytes) -> tuple[str, str | None, str | None]:
        """``(message, ErrorInfo reason, status)`` from ``{"error": {...}}`` (or an array holding it)."""
        err = _decode_error(body)
        if err is None:
            return body[:500].decode("utf-8", "replace").strip(), None, None
        reason = next((d.reason for d in err.details if d.reason), None)
        return err.message, reason, err.status

    def to_error(self, provider: str, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        """Map an error answer: bad keys (HTTP 400 ``API_KEY_INVALID``) and ``RetryInfo`` delays included."""
        message, reason, kind = self.parse_error(body)
        if reason in ("API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED") or kind == "UNAUTHENTICATED":
            text = f"{provider}: {message} (check this provider's API key)"
            return ProviderAuthError(text, provider=provider, upstream_status=status)
        if kind == "DEADLINE_EXCEEDED":
            return ProviderTimeout(f"{provider}: {message}", provider=provider, upstream_status=status)
        exc = error_for_status(provider, status, headers, message, code=reason, kind=kind)
        if isinstance(exc, ProviderRateLimited) and exc.retry_after is None:
            err = _decode_error(body)
            delays = [_duration(d.retry_delay) for d in err.details] if err else []
            exc.retry_after = next((d for d in delays if d is not None), None)
        return exc

    def _error_of(self, err: _Error) -> ProviderError:
        status = err.code if isinstance(err.code, int) and err.code >= 400 else 502
        return self.to_error(self.name, status, {}, msgspec.json.encode({"error": err}))

    def embed_path(self, model: str, count: int) -> str:
        """``:batchEmbedContents`` (Google's SDK uses it for one text too); Vertex AI ``:embedContent``."""
        method = "embedContent" if self.vertex and count == 1 else "batchEmbedContents"
        return f"/{model_resource(model)}:{method}"

    def embed_body(self, request: EmbedRequest, model: str) -> dict[str, Any]:
        """One request per text, with ``outputDimensionality`` and ``extra`` (e.g. ``taskType``) in each."""

        def one(text: str, with_model: bool) -> dict[str, Any]:
            item: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
            if with_model:
                item["model"] = model_resource(model)
            if request.dimensions is not None:
                item["outputDimensionality"] = request.dimensions
            item.update(request.extra or {})
            return item

        if self.vertex and len(request.input) == 1:
            return one(request.input[0], False)
        return {"requests": [one(t, not self.vertex) for t in request.input]}

    def parse_embed(self, body: bytes) -> EmbedResponse:
        """``embedding.values`` or ``embeddings[].values``."""
        resp = msgspec.json.decode(body, type=_EmbedResponse)
        vectors = [resp.embedding] if resp.embedding is not None else resp.embeddings or []
        return EmbedResponse(embeddings=[v.values for v in vectors], usage=_usage(resp.usage_metadata))

    def models_path(self) -> str | None:
        """``/models`` on the Gemini API (one page of up to 1000, the most it allows: all of them today).

        Vertex AI lists publisher models elsewhere than under a project, so it has none here.
        """
        return None if self.vertex else "/models?pageSize=1000"

    def parse_models(self, body: bytes) -> list[str]:
        """Model ids without the ``models/`` prefix."""
        return [m.name.removeprefix("models/") for m in msgspec.json.decode(body, type=_ModelList).models]

    def count_tokens_body(self, request: ChatRequest, model: str) -> dict[str, Any]:
        """Body of ``:countTokens`` for a chat request (system prompt and tools counted when present)."""
        chat = self.chat_body(request, model, False)
        if self.vertex:
            keep = ("contents", "systemInstruction", "tools", "generationConfig")
            return {k: v for k, v in chat.items() if k in keep}
        if "systemInstruction" in chat or "tools" in chat:
            return {"generateContentRequest": {"model": model_resource(model), **chat}}
        return {"contents": chat["contents"]}


class GoogleStreamParser(StreamParser):
    """Turns Gemini stream events (whole ``GenerateContentResponse`` objects with new text) into chunks."""

    def __init__(self, wire: GoogleWire) -> None:
        super().__init__()
        self._wire = wire
        self._calls = 0

    def feed(self, event: str, data: str) -> list[ChatChunk]:
        """Parse one SSE event."""
        if not data.strip():
            return []
        return self._chunks(msgspec.json.decode(data, type=_GenerateResponse))

    def feed_body(self, body: bytes, wire: WireFormat) -> list[ChatChunk]:
        """Parse the JSON array Gemini sends without ``alt=sse`` (or one object, or an error)."""
        items = msgspec.json.decode(body, type=list[_GenerateResponse] | _GenerateResponse)
        chunks: list[ChatChunk] = []
        for item in items if isinstance(items, list) else [items]:
            chunks += self._chunks(item)
        return chunks

    def _chunks(self, resp: _GenerateResponse) -> list[ChatChunk]:
        if resp.error is not None:
            raise self._wire._error_of(resp.error)
        self.response_id = resp.response_id or self.response_id
        self.model = resp.model_version or self.model
        if resp.usage_metadata is not None:
            self.usage = _usage(resp.usage_metadata)  # cumulative: the latest is the whole answer's
        cand = _first_candidate(resp)
        if cand is None:
            if resp.prompt_feedback is not None and resp.prompt_feedback.block_reason:
                self.done = True
                return [ChatChunk(finish_reason="content_filter")]
            return []
        text, thoughts, calls = _split(cand)
        out: list[ChatChunk] = []
        if text or thoughts:
            out.append(ChatChunk(delta=text, reasoning=thoughts or None))
        if calls:
            deltas = [
                ToolCallDelta(index=self._calls + i, id=_call_id(c), name=c.name, arguments=_args_json(c))
                for i, c in enumerate(calls)
            ]
            self._calls += len(calls)
            out.append(ChatChunk(tool_calls=deltas))
        if cand.finish_reason:
            self.done = True
            out.append(ChatChunk(finish_reason=_finish(cand.finish_reason, self._calls > 0)))
        return out


# --- the provider


class GoogleOptions(BaseModel):
    """Options of the ``google`` provider type.

    Attributes:
        embedding_model: Model used by ``embed`` when the request names none.
        auth: ``api_key`` (Gemini API, Vertex AI express mode) or ``bearer`` (an OAuth access token for
            Vertex AI; put it in ``api_key``).
        safety_settings: Gemini ``safetySettings`` sent with every chat request.
        vertex: Treat the base URL as Vertex AI; None detects it (a path containing ``/publishers/``).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    embedding_model: str | None = "gemini-embedding-001"
    auth: Literal["api_key", "bearer"] = "api_key"
    safety_settings: list[dict[str, Any]] | None = None
    vertex: bool | None = None


class GoogleProvider(HttpProvider):
    """Gemini through the Gemini API, or Vertex AI with a base URL ending in ``/publishers/google``."""

    kind = "google"
    Options = GoogleOptions
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    wire: GoogleWire

    def make_wire(self) -> GoogleWire:
        """Build the wire format from the options (Vertex AI detected from the base URL)."""
        opts = self.options if isinstance(self.options, GoogleOptions) else GoogleOptions()
        base = self.config.base_url or self.default_base_url or ""
        vertex = "/publishers/" in urllib.parse.urlsplit(base).path if opts.vertex is None else opts.vertex
        return GoogleWire(auth=opts.auth, safety_settings=opts.safety_settings, vertex=vertex, name=self.name)

    async def count_tokens(self, request: ChatRequest, ctx: CallContext | None = None) -> int:
        """Count the prompt tokens of a chat request with ``:countTokens``."""
        model = self.resolve_model(request.model)
        path = f"/{model_resource(model)}:countTokens"
        body = await self._post(path, self.wire.count_tokens_body(request, model), ctx or CallContext())
        try:
            return msgspec.json.decode(body, type=_TokenCount).total_tokens
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise self._malformed(exc) from exc
