"""Custom HTTP APIs: a URL + token, a request format, a response format, and endpoint overrides.

``request_format`` and ``response_format`` name a built-in wire format (``openai``, ``anthropic``,
``google``, ``ollama``) or a code-level adapter registered with
``orchestrator.adapter.create_custom_adapter(name, request_transform=..., response_transform=...)``.
A code-level adapter starts from the OpenAI shape: ``request_transform`` turns the OpenAI-shaped request
body into the API's body, ``response_transform`` turns the API's JSON answer into an OpenAI-shaped
Chat Completions answer, and the optional ``stream_transform`` does the same for each streamed event
(returning None skips the event). Without a ``stream_transform``, streamed requests are sent as plain
requests and the one answer is delivered as a stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from typing_extensions import override

from podium.errors import ConfigError, ProviderError, RequestError
from podium.providers.base import HttpProvider, ProviderConfig, StreamParser, WireFormat
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
)

BUILTIN_FORMATS = ("openai", "anthropic", "google", "ollama")
_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})

Transform = Callable[[dict[str, Any]], dict[str, Any]]
StreamTransform = Callable[[dict[str, Any]], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class CustomAdapter:
    """A code-level format: transforms between the OpenAI shape and some API's shape."""

    name: str
    request_transform: Transform | None = None
    response_transform: Transform | None = None
    stream_transform: StreamTransform | None = None


class CustomAdapters:
    """The orchestrator's registry of code-level adapters (``orchestrator.adapter``)."""

    def __init__(self) -> None:
        self._adapters: dict[str, CustomAdapter] = {}

    def create_custom_adapter(
        self,
        name: str,
        *,
        request_transform: Transform | None = None,
        response_transform: Transform | None = None,
        stream_transform: StreamTransform | None = None,
    ) -> CustomAdapter:
        """Register a format usable as ``request_format`` / ``response_format`` of custom providers.

        Args:
            name: The format's name (must not shadow a built-in format).
            request_transform: OpenAI-shaped request body -> the API's request body.
            response_transform: The API's JSON answer -> an OpenAI-shaped Chat Completions answer.
            stream_transform: One streamed event's JSON -> an OpenAI-shaped chunk (None: skip it).
        """
        if name in BUILTIN_FORMATS:
            raise ConfigError(f"{name!r} is a built-in format; choose another adapter name")
        adapter = CustomAdapter(name, request_transform, response_transform, stream_transform)
        self._adapters[name] = adapter
        return adapter

    def get(self, name: str) -> CustomAdapter | None:
        """The adapter registered under ``name``, if any."""
        return self._adapters.get(name)

    def names(self) -> list[str]:
        """Registered adapter names."""
        return sorted(self._adapters)


class Endpoints(BaseModel):
    """Path overrides, relative to ``base_url`` (the seed's ``endpoints`` object)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    chat_completion: str | None = None
    completion: str | None = None
    embedding: str | None = None
    models: str | None = None


class CustomOptions(BaseModel):
    """Settings of a ``custom`` provider."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    request_format: str = "openai"
    response_format: str | None = Field(default=None, description="Defaults to request_format.")
    endpoints: Endpoints = Field(default_factory=Endpoints)
    auth_header: str | None = Field(default=None, description="None: the request format's own auth header.")
    auth_scheme: str | None = Field(
        default=None, description="None: Bearer for Authorization, else the raw key."
    )
    embedding_model: str | None = None


class _TransformParser(StreamParser):
    """Applies a stream transform to each event, then parses it as an OpenAI chunk."""

    def __init__(self, inner: StreamParser, transform: StreamTransform) -> None:
        super().__init__()
        self.inner = inner
        self.transform = transform

    @override
    def feed(self, event: str, data: str) -> list[ChatChunk]:
        if data.strip() == "[DONE]":
            chunks = self.inner.feed(event, data)
        else:
            mapped = self.transform(msgspec.json.decode(data))
            chunks = [] if mapped is None else self.inner.feed(event, msgspec.json.encode(mapped).decode())
        self.usage, self.done = self.inner.usage, self.inner.done
        self.response_id, self.model = self.inner.response_id, self.inner.model
        return chunks


class ComposedWire(WireFormat):
    """Request side of one format, response side of another, with endpoint and auth overrides."""

    def __init__(
        self,
        request_wire: WireFormat,
        response_wire: WireFormat,
        options: CustomOptions,
        adapter: CustomAdapter | None,
    ) -> None:
        self.req = request_wire
        self.resp = response_wire
        self.opts = options
        self.adapter = adapter
        self.framing = response_wire.framing
        self.has_embeddings = request_wire.has_embeddings and response_wire.has_embeddings
        self.has_completions = request_wire.has_completions and response_wire.has_completions

    @override
    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        headers = self.req.auth_headers(api_key)
        name = self.opts.auth_header
        if name is None:
            return headers
        # Keep the format's other headers (e.g. anthropic-version), replace only how the key is sent.
        headers = {k: v for k, v in headers.items() if k.lower() not in _AUTH_HEADERS}
        if api_key:
            scheme = self.opts.auth_scheme
            if scheme is None and name.lower() == "authorization":
                scheme = "Bearer"
            headers[name] = f"{scheme} {api_key}" if scheme else api_key
        return headers

    def _streams_natively(self) -> bool:
        a = self.adapter
        return a is None or a.response_transform is None or a.stream_transform is not None

    @override
    def chat_path(self, model: str, stream: bool) -> tuple[str, dict[str, str] | None]:
        path, params = self.req.chat_path(model, stream and self._streams_natively())
        return (self.opts.endpoints.chat_completion or path), params

    @override
    def chat_body(self, request: ChatRequest, model: str, stream: bool) -> dict[str, Any]:
        body = self.req.chat_body(request, model, stream and self._streams_natively())
        if self.adapter is not None and self.adapter.request_transform is not None:
            body = self.adapter.request_transform(body)
        return body

    def _std(self, body: bytes) -> bytes:
        if self.adapter is None or self.adapter.response_transform is None:
            return body
        return msgspec.json.encode(self.adapter.response_transform(msgspec.json.decode(body)))

    @override
    def parse_chat(self, body: bytes) -> ChatResponse:
        return self.resp.parse_chat(self._std(body))

    @override
    def stream_parser(self) -> StreamParser:
        inner = self.resp.stream_parser()
        if self.adapter is not None and self.adapter.stream_transform is not None:
            return _TransformParser(inner, self.adapter.stream_transform)
        return inner

    @override
    def parse_error(self, body: bytes) -> tuple[str, str | None, str | None]:
        return self.resp.parse_error(body)

    @override
    def to_error(self, provider: str, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return self.resp.to_error(provider, status, headers, body)

    @override
    def completion_path(self, model: str) -> str:
        return self.opts.endpoints.completion or self.req.completion_path(model)

    @override
    def completion_body(self, request: CompletionRequest, model: str) -> dict[str, Any]:
        return self.req.completion_body(request, model)

    @override
    def parse_completion(self, body: bytes) -> CompletionResponse:
        return self.resp.parse_completion(body)

    @override
    def embed_path(self, model: str, count: int) -> str:
        return self.opts.endpoints.embedding or self.req.embed_path(model, count)

    @override
    def embed_body(self, request: EmbedRequest, model: str) -> dict[str, Any]:
        return self.req.embed_body(request, model)

    @override
    def parse_embed(self, body: bytes) -> EmbedResponse:
        return self.resp.parse_embed(body)

    @override
    def models_path(self) -> str | None:
        return self.opts.endpoints.models or self.resp.models_path()

    @override
    def parse_models(self, body: bytes) -> list[str]:
        return self.resp.parse_models(body)


class CustomProvider(HttpProvider):
    """A provider for any HTTP API described by formats, endpoints and headers.

    Args:
        config: Common provider settings (``base_url`` is required).
        options: ``CustomOptions``.
        adapters: The orchestrator's code-level adapters (looked up by format name).
    """

    kind = "custom"
    Options = CustomOptions

    def __init__(
        self,
        config: ProviderConfig,
        options: BaseModel | None = None,
        *,
        adapters: CustomAdapters | None = None,
    ) -> None:
        self._adapters = adapters or CustomAdapters()
        super().__init__(config, options)

    def _builtin_wire(self, fmt: str) -> WireFormat:
        from podium.providers.registry import PROVIDERS

        cls = PROVIDERS.get(fmt)
        assert issubclass(cls, HttpProvider)
        base = self.config.base_url or "http://unused.invalid"
        probe = cls(self.config.model_copy(update={"type": fmt, "base_url": base}), cls.Options())
        return probe.wire

    def _format(self, fmt: str) -> tuple[WireFormat, CustomAdapter | None]:
        if fmt in BUILTIN_FORMATS:
            return self._builtin_wire(fmt), None
        adapter = self._adapters.get(fmt)
        if adapter is None:
            valid = [*BUILTIN_FORMATS, *self._adapters.names()]
            raise RequestError(f"unknown format {fmt!r}; valid: {', '.join(valid)}", param="request_format")
        return self._builtin_wire("openai"), adapter

    def make_wire(self) -> WireFormat:
        """Compose the request format's encoder with the response format's decoder."""
        opts = self.options
        assert isinstance(opts, CustomOptions)
        if not self.config.base_url:
            raise RequestError(f"custom provider {self.config.name!r} needs a base_url", param="base_url")
        req_wire, req_adapter = self._format(opts.request_format)
        resp_fmt = opts.response_format or opts.request_format
        resp_wire, resp_adapter = (
            (req_wire, req_adapter) if resp_fmt == opts.request_format else self._format(resp_fmt)
        )
        adapter = req_adapter or resp_adapter
        if req_adapter is not None and resp_adapter is not None and req_adapter is not resp_adapter:
            # Two code-level adapters: the request side of one, the response side of the other.
            adapter = CustomAdapter(
                f"{req_adapter.name}+{resp_adapter.name}",
                req_adapter.request_transform,
                resp_adapter.response_transform,
                resp_adapter.stream_transform,
            )
        elif req_adapter is not None and resp_adapter is None:
            adapter = CustomAdapter(req_adapter.name, req_adapter.request_transform, None, None)
        elif resp_adapter is not None and req_adapter is None:
            adapter = CustomAdapter(
                resp_adapter.name, None, resp_adapter.response_transform, resp_adapter.stream_transform
            )
        return ComposedWire(req_wire, resp_wire, opts, adapter)

    def embed_model(self) -> str:
        """The embedding model used when the request names none."""
        opts = self.options
        model = (
            opts.embedding_model if isinstance(opts, CustomOptions) else None
        ) or self.config.default_model
        if not model:
            raise RequestError(
                f"provider {self.name!r} has no embedding model; pass model=...", param="model"
            )
        return model
