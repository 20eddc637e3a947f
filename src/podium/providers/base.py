"""Provider configuration, the ``Provider`` base class, and the wire-format seam of HTTP providers.

An HTTP provider is a transport (``HttpClient``: pooled connections, timeouts, error mapping) plus a
``WireFormat`` (how one API family encodes requests and decodes answers, streams included). Keeping the
two apart is what lets the ``custom`` provider mix a request format with a response format, and lets
every adapter share one streaming and error path.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.alias_generators import to_camel

from podium import _ids
from podium.backend import CallContext
from podium.errors import MalformedResponse, PodiumError, ProviderError, RequestError
from podium.providers._http import (
    HttpClient,
    RawResponse,
    SSEDecoder,
    error_for_status,
    line_batches,
    ndjson_batches,
)
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
    Message,
    ToolCallDelta,
    Usage,
)


class ProviderConfig(BaseModel):
    """Settings every provider has. Type-specific settings live in the adapter's ``Options``.

    Keys are snake_case in Python; the seeds' camelCase spellings (``baseUrl``, ``apiKey``,
    ``defaultModel``, ``customHeaders``) are accepted too.
    """

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True, validate_default=True
    )

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    type: str
    tenant: str = Field(default="default", min_length=1, max_length=128)
    base_url: str | None = None
    api_key: SecretStr | None = None
    default_model: str | None = None
    models: tuple[str, ...] = ()
    priority: int = Field(default=100, description="Lower numbers are tried first.")
    weight: float = Field(default=1.0, gt=0, description="Share of traffic among equal priorities.")
    timeout: float = Field(
        default=60.0, gt=0, description="Seconds for a whole request; idle gap for streams."
    )
    connect_timeout: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    headers: dict[str, str] = Field(default_factory=dict, alias="customHeaders")
    enabled: bool = True
    prices: dict[str, float] | None = Field(
        default=None,
        description="USD per million tokens for every model: input, output, cached_input (overrides "
        "genai-prices; needed for custom and local models).",
    )
    model_prices: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Prices of single models, as ``prices`` (win over it)."
    )

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return v.rstrip("/") if v else v

    def serves(self, model: str) -> bool:
        """Whether this provider declares the model (as its default or in ``models``)."""
        return model == self.default_model or model in self.models


class NoOptions(BaseModel):
    """Options of a provider type that has none."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)


class CheckResult(msgspec.Struct, kw_only=True):
    """Outcome of a connectivity check."""

    success: bool
    latency_ms: float
    error: str | None = None
    error_type: str | None = None
    models: list[str] = msgspec.field(default_factory=list)


class Provider(ABC):
    """One configured upstream: a ``Backend`` plus model listing and a connectivity check.

    Subclasses declare ``kind`` (the ``type`` users write in configuration) and ``Options``.
    """

    kind: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, config: ProviderConfig, options: BaseModel | None = None) -> None:
        self.config = config
        self.options = options if options is not None else self.Options()

    @property
    def name(self) -> str:
        """The provider's name (unique within its tenant)."""
        return self.config.name

    def resolve_model(self, model: str | None) -> str:
        """Return the model to call: the requested one or the provider's default."""
        chosen = model or self.config.default_model
        if not chosen:
            raise RequestError(
                f"provider {self.name!r} has no default_model; pass model=... or configure default_model",
                param="model",
            )
        return chosen

    @abstractmethod
    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer a chat request."""

    @abstractmethod
    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Stream a chat answer as batches of chunks (see ``Backend.stream``); the last carries usage."""

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Answer a text completion; by default through the chat API with the prompt as user message."""
        chat = await self.chat(
            ChatRequest(
                messages=[Message(role="user", content=request.prompt)],
                model=request.model,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                top_p=request.top_p,
                stop=request.stop,
                seed=request.seed,
                user=request.user,
                extra=request.extra,
            ),
            ctx,
        )
        return CompletionResponse(
            id=chat.id,
            text=chat.content or "",
            finish_reason=chat.finish_reason,
            usage=chat.usage,
            provider=chat.provider,
            model=chat.model,
            latency_ms=chat.latency_ms,
            raw_id=chat.raw_id,
        )

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed texts (providers without an embeddings API refuse)."""
        raise RequestError(f"provider {self.name!r} ({self.kind}) has no embeddings API", code="unsupported")

    async def list_models(self) -> list[str]:
        """Return the models the provider offers (its configured ones when it has no listing API)."""
        return list(dict.fromkeys([*(m for m in [self.config.default_model] if m), *self.config.models]))

    async def check(self) -> CheckResult:
        """Probe the provider cheaply: list models, or a one-token chat when listing is unavailable."""
        t0 = time.perf_counter()
        try:
            models = await self._probe()
        except PodiumError as exc:
            return CheckResult(
                success=False,
                latency_ms=(time.perf_counter() - t0) * 1000,
                error=exc.message,
                error_type=type(exc).__name__,
            )
        return CheckResult(success=True, latency_ms=(time.perf_counter() - t0) * 1000, models=models)

    async def _probe(self) -> list[str]:
        await self.chat(
            ChatRequest(messages=[Message(role="user", content="ping")], max_tokens=1), CallContext()
        )
        return await self.list_models()

    async def aclose(self) -> None:  # noqa: B027 - optional hook; in-process providers hold nothing
        """Release connections."""


class StreamParser(ABC):
    """Turns one upstream stream into canonical chunks; one instance per stream.

    Attributes:
        usage: Usage seen so far (providers report it at the end or grow it event by event).
        done: Whether the provider's end-of-stream signal arrived.
        response_id: The provider's id for the answer, once seen.
    """

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.done = False
        self.response_id: str | None = None
        self.model: str | None = None

    @abstractmethod
    def feed(self, event: str, data: str) -> list[ChatChunk]:
        """Parse one SSE event (``event`` name and ``data``) or one NDJSON line (``event`` empty)."""

    def feed_body(self, body: bytes, wire: WireFormat) -> list[ChatChunk]:
        """Parse a stream request answered with one plain JSON body (servers that ignore ``stream``)."""
        resp = wire.parse_chat(body)
        self.usage, self.done, self.response_id, self.model = resp.usage, True, resp.raw_id, resp.model
        return response_to_chunks(resp)


def response_to_chunks(resp: ChatResponse) -> list[ChatChunk]:
    """Express a complete answer as stream chunks (text, then tool calls, then the finish reason)."""
    chunks: list[ChatChunk] = []
    if resp.content or resp.reasoning:
        chunks.append(ChatChunk(delta=resp.content or "", reasoning=resp.reasoning))
    if resp.tool_calls:
        chunks.append(
            ChatChunk(
                tool_calls=[
                    ToolCallDelta(index=i, id=tc.id, name=tc.function.name, arguments=tc.function.arguments)
                    for i, tc in enumerate(resp.tool_calls)
                ]
            )
        )
    chunks.append(ChatChunk(finish_reason=resp.finish_reason))
    return chunks


class WireFormat(ABC):
    """How one API family encodes requests and decodes answers.

    Paths are relative to the provider's ``base_url``. ``parse_*`` methods may raise
    ``msgspec.ValidationError`` / ``msgspec.DecodeError``; the transport turns those into
    ``MalformedResponse``.
    """

    framing: Literal["sse", "ndjson"] = "sse"
    has_embeddings: bool = False
    has_completions: bool = False

    @abstractmethod
    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """Headers that authenticate a request."""

    @abstractmethod
    def chat_path(self, model: str, stream: bool) -> tuple[str, dict[str, str] | None]:
        """Path and query parameters of a chat request."""

    @abstractmethod
    def chat_body(self, request: ChatRequest, model: str, stream: bool) -> dict[str, Any]:
        """The JSON body of a chat request."""

    @abstractmethod
    def parse_chat(self, body: bytes) -> ChatResponse:
        """Decode a chat answer (``provider`` and ``latency_ms`` are filled in by the caller)."""

    @abstractmethod
    def stream_parser(self) -> StreamParser:
        """A fresh parser for one streamed answer."""

    @abstractmethod
    def parse_error(self, body: bytes) -> tuple[str, str | None, str | None]:
        """Return ``(message, code, kind)`` from an error body (best effort, never raises)."""

    def to_error(self, provider: str, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        """Map an error answer onto the error tree (override for API-specific signals in the body)."""
        message, code, kind = self.parse_error(body)
        return error_for_status(provider, status, headers, message, code=code, kind=kind)

    def completion_path(self, model: str) -> str:
        """Path of a legacy text-completion request (only where ``has_completions``)."""
        raise NotImplementedError

    def completion_body(self, request: CompletionRequest, model: str) -> dict[str, Any]:
        """Body of a legacy text-completion request."""
        raise NotImplementedError

    def parse_completion(self, body: bytes) -> CompletionResponse:
        """Decode a legacy text completion."""
        raise NotImplementedError

    def embed_path(self, model: str, count: int) -> str:
        """Path of an embeddings request (only where ``has_embeddings``)."""
        raise NotImplementedError

    def embed_body(self, request: EmbedRequest, model: str) -> dict[str, Any]:
        """Body of an embeddings request."""
        raise NotImplementedError

    def parse_embed(self, body: bytes) -> EmbedResponse:
        """Decode an embeddings answer."""
        raise NotImplementedError

    def models_path(self) -> str | None:
        """Path of the model listing, or None when the API has none."""
        return None

    def parse_models(self, body: bytes) -> list[str]:
        """Decode a model listing into model ids."""
        raise NotImplementedError


_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError)

StreamTarget = tuple[str, Any, Mapping[str, str] | None, str]
"""Where a stream request goes: path, body, query parameters, and the model it names."""


class HttpProvider(Provider):
    """A provider reached over HTTP through one ``WireFormat``.

    Subclasses set ``default_base_url`` and build ``self.wire`` in ``make_wire``.
    """

    default_base_url: ClassVar[str | None] = None

    def __init__(self, config: ProviderConfig, options: BaseModel | None = None) -> None:
        super().__init__(config, options)
        self.wire = self.make_wire()
        base_url = config.base_url or self.default_base_url
        if not base_url:
            raise RequestError(f"provider {config.name!r} ({config.type}) needs a base_url", param="base_url")
        key = config.api_key.get_secret_value() if config.api_key else None
        self.http = HttpClient(
            config.name,
            base_url,
            {**self.wire.auth_headers(key), **config.headers},
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            max_connections=config.max_connections,
        )

    @abstractmethod
    def make_wire(self) -> WireFormat:
        """Build this provider's wire format from ``self.config`` and ``self.options``."""

    def _fail(self, raw: RawResponse) -> ProviderError:
        return self.wire.to_error(self.name, raw.status, raw.headers, raw.body)

    def _malformed(self, exc: Exception) -> MalformedResponse:
        return MalformedResponse(
            f"{self.name}: answer is not in the expected format ({exc})", provider=self.name
        )

    async def _post(
        self, path: str, body: Any, ctx: CallContext, params: Mapping[str, str] | None = None
    ) -> bytes:
        raw = await self.http.request("POST", path, body=body, params=params, deadline_left=ctx.remaining())
        if raw.status >= 400:
            raise self._fail(raw)
        return raw.body

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer a chat request (see ``Provider.chat``)."""
        model = self.resolve_model(request.model)
        path, params = self.wire.chat_path(model, False)
        t0 = time.perf_counter()
        body = await self._post(path, self.wire.chat_body(request, model, False), ctx, params)
        try:
            resp = self.wire.parse_chat(body)
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            raise
        except _DECODE_ERRORS as exc:
            raise self._malformed(exc) from exc
        resp.latency_ms = (time.perf_counter() - t0) * 1000
        resp.provider = self.name
        resp.model = resp.model or model
        return resp

    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Stream a chat answer, a batch per network read; always ends with a chunk carrying usage."""

        def target() -> StreamTarget:
            model = self.resolve_model(request.model)
            path, params = self.wire.chat_path(model, True)
            return path, self.wire.chat_body(request, model, True), params, model

        return self._stream_at(target, ctx)

    async def _stream_at(
        self, target: Callable[[], StreamTarget], ctx: CallContext, *, lines_only: bool = False
    ) -> AsyncIterator[list[ChatChunk]]:
        """POST to ``target()``'s path and parse the streamed answer into batches (see ``stream``).

        ``target`` (path, body, query parameters, model) is called inside the stream, so that its
        errors (no model to call) are raised where every other stream error is: on iteration. The
        request goes out unwrapped: a generator layer over this one would cost a step per batch.
        ``lines_only`` reads a plain JSON answer as a one-line NDJSON body too, for answers the wire's
        ``parse_chat`` does not read (Ollama's ``/api/generate``).
        """
        path, body, params, model = target()
        resp = await self.http.open_stream(path, body=body, params=params, deadline_left=ctx.remaining())
        parser = self.wire.stream_parser()
        batch: list[ChatChunk] = []
        started = False
        try:
            if resp.status >= 400:
                raw = await self._read(resp)
                raise self._fail(RawResponse(resp.status, resp.headers, raw))
            ctype = resp.headers.get("content-type", "")
            if "json" in ctype and "ndjson" not in ctype and not lines_only:
                for chunk in parser.feed_body(await self._read(resp), self.wire):
                    batch.append(self._stamp(chunk, parser, model))
            elif self.wire.framing == "sse" and "ndjson" not in ctype:
                sse = SSEDecoder()
                async for lines in line_batches(resp, self.name):
                    for ev in sse.events(lines):
                        for chunk in parser.feed(ev.event, ev.data):
                            batch.append(self._stamp(chunk, parser, model))
                        if batch and not started:
                            # The first chunk leaves alone, before the rest of its read is decoded
                            # and parsed: the time to the first token is what a reader waits on.
                            started = True
                            yield batch
                            batch = []
                    # Once the provider said it finished, only the body's end is left to read (it
                    # comes with the same read as a rule): the last chunks wait for it, to leave in
                    # one batch with the usage chunk.
                    if batch and not parser.done:
                        yield batch
                        batch = []
                for ev in sse.end():
                    for chunk in parser.feed(ev.event, ev.data):
                        batch.append(self._stamp(chunk, parser, model))
            else:
                # Ollama's NDJSON ends at its "done" line; a body that is not its own framing ends
                # at the end of the body.
                own = self.wire.framing == "ndjson"
                async for lines in ndjson_batches(resp, self.name):
                    for line in lines:
                        for chunk in parser.feed("", line):
                            batch.append(self._stamp(chunk, parser, model))
                        if batch and not started:
                            started = True
                            yield batch
                            batch = []
                        if parser.done and own:
                            break
                    if parser.done and own:
                        break
                    if batch and not parser.done:
                        yield batch
                        batch = []
            if not parser.done:
                raise MalformedResponse(
                    f"{self.name}: stream ended before the provider finished", provider=self.name
                )
            batch.append(
                ChatChunk(
                    usage=parser.usage or Usage(),
                    id=parser.response_id or "",
                    provider=self.name,
                    model=parser.model or model,
                )
            )
            yield batch
        except ProviderError as exc:
            exc.provider = exc.provider or self.name
            if batch:  # what arrived before the failure still reaches the caller (and is charged)
                yield batch
            raise exc
        except _DECODE_ERRORS as exc:
            if batch:
                yield batch
            raise self._malformed(exc) from exc
        finally:
            resp.release()

    def _stamp(self, chunk: ChatChunk, parser: StreamParser, model: str) -> ChatChunk:
        chunk.id = parser.response_id or ""
        chunk.provider = self.name
        chunk.model = parser.model or model
        return chunk

    async def _read(self, resp: Any) -> bytes:
        from podium.providers._http import transport_error

        try:
            data: bytes = await resp.read()
        except Exception as exc:
            raise transport_error(self.name, exc) from exc
        return data

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Legacy text completion where the API has one, else through chat."""
        if not self.wire.has_completions:
            return await super().complete(request, ctx)
        model = self.resolve_model(request.model)
        t0 = time.perf_counter()
        body = await self._post(
            self.wire.completion_path(model), self.wire.completion_body(request, model), ctx
        )
        try:
            resp = self.wire.parse_completion(body)
        except _DECODE_ERRORS as exc:
            raise self._malformed(exc) from exc
        resp.latency_ms = (time.perf_counter() - t0) * 1000
        resp.provider = self.name
        resp.model = resp.model or model
        return resp

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed texts where the API has embeddings."""
        if not self.wire.has_embeddings:
            return await super().embed(request, ctx)
        if not request.input:
            raise RequestError("input must contain at least one text", param="input")
        model = request.model or self.embed_model()
        t0 = time.perf_counter()
        body = await self._post(
            self.wire.embed_path(model, len(request.input)), self.wire.embed_body(request, model), ctx
        )
        try:
            resp = self.wire.parse_embed(body)
        except _DECODE_ERRORS as exc:
            raise self._malformed(exc) from exc
        if len(resp.embeddings) != len(request.input):
            raise MalformedResponse(
                f"{self.name}: {len(resp.embeddings)} embeddings for {len(request.input)} inputs",
                provider=self.name,
            )
        resp.latency_ms = (time.perf_counter() - t0) * 1000
        resp.provider = self.name
        resp.model = resp.model or model
        return resp

    def embed_model(self) -> str:
        """The embedding model used when the request names none."""
        model = getattr(self.options, "embedding_model", None) or self.config.default_model
        if not model:
            raise RequestError(
                f"provider {self.name!r} has no embedding model; pass model=...", param="model"
            )
        return str(model)

    async def list_models(self) -> list[str]:
        """Ask the API for its models (configured models when it has no listing)."""
        path = self.wire.models_path()
        if path is None:
            return await super().list_models()
        raw = await self.http.request("GET", path)
        if raw.status >= 400:
            raise self._fail(raw)
        try:
            return self.wire.parse_models(raw.body)
        except _DECODE_ERRORS as exc:
            raise self._malformed(exc) from exc

    async def _probe(self) -> list[str]:
        if self.wire.models_path() is not None:
            return await self.list_models()
        return await super()._probe()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()


def new_id(prefix: str = "chatcmpl") -> str:
    """A fresh response id for providers that send none: ``prefix-`` and 24 hex characters."""
    # podium's id source (no kernel random read per id): part of the process prefix and the counter.
    return f"{prefix}-{_ids.new_id()[-24:]}"
