"""The ``Orchestrator``: podium's Python API.

It owns each tenant's providers and one router per tenant, turns friendly keyword arguments into
canonical requests, and hands them down the request stack (``Router`` -> provider adapter).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import msgspec
from pydantic import SecretStr, ValidationError
from pydantic.alias_generators import to_snake

from podium.backend import CallContext
from podium.errors import Conflict, NotFound, RequestError
from podium.health.stats import Statistics, StatsRecorder
from podium.providers.base import CheckResult, Provider, ProviderConfig
from podium.providers.registry import LOCAL_SERVERS, PROVIDERS
from podium.routing.retry import RetryPolicy
from podium.routing.router import Router
from podium.routing.strategies import STRATEGIES, Strategy
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
    MessageLike,
    ResponseFormat,
    Tool,
    ToolChoice,
    convert,
    to_messages,
)

_CONFIG_FIELDS = frozenset(ProviderConfig.model_fields)
_KEY_ALIASES = {"custom_headers": "headers", "server": "server_type"}


class ProviderInfo(msgspec.Struct, kw_only=True):
    """A provider's settings as shown to callers: secrets masked, never in clear."""

    name: str
    type: str
    tenant: str
    base_url: str | None
    default_model: str | None
    models: list[str]
    priority: int
    weight: float
    enabled: bool
    timeout: float
    api_key: str | None
    headers: dict[str, str]
    options: dict[str, Any]


class ModelInfo(msgspec.Struct, kw_only=True):
    """A model one of the tenant's providers offers."""

    id: str
    provider: str
    type: str


def mask_secret(secret: str | None) -> str | None:
    """Show enough of a secret to recognise it, never enough to use it."""
    if not secret:
        return None
    return f"{secret[:3]}...{secret[-4:]}" if len(secret) >= 16 else "****"


def _normalise(settings: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        snake = to_snake(key)
        out[_KEY_ALIASES.get(snake, snake)] = value
    return out


def _describe(exc: ValidationError, what: str) -> str:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(settings)"
        errors.append(f"{loc}: {err['msg']}")
    return f"invalid {what}: " + "; ".join(errors)


class Orchestrator:
    """Async entry point: providers per tenant, and chat / stream / complete / embed over them.

    Args:
        retry: Retry rounds and backoff when every candidate provider failed.
        strategy: Name of the routing strategy (``"priority"``: priority tiers, weighted round-robin
            among equals).

    Example:
        >>> orch = Orchestrator()
        >>> await orch.create_provider(type="openai", name="gpt", tenant="my-app", api_key="sk-...")
        >>> r = await orch.chat([{"role": "user", "content": "Hello"}], tenant="my-app")
    """

    def __init__(self, *, retry: RetryPolicy | None = None, strategy: str = "priority") -> None:
        self.retry = retry or RetryPolicy()
        self._strategy_name = strategy
        STRATEGIES.get(strategy)  # fail at construction on an unknown name
        self._providers: dict[str, dict[str, Provider]] = {}
        self._routers: dict[str, Router] = {}
        self._lock = asyncio.Lock()
        self._retiring: dict[asyncio.Task[None], Provider] = {}
        self.stats = StatsRecorder()
        from podium.providers.custom import CustomAdapters

        self.adapter = CustomAdapters()

    # ----------------------------------------------------------------- providers

    def _build(self, type_: str, name: str, tenant: str, settings: Mapping[str, Any]) -> Provider:
        fields = _normalise(settings)
        kind = type_
        if kind == "local":
            server = str(fields.pop("server_type", "ollama")).lower()
            if server not in LOCAL_SERVERS:
                raise RequestError(
                    f"unknown serverType {server!r}; valid: {', '.join(sorted(LOCAL_SERVERS))}",
                    param="server_type",
                )
            kind, default_url = LOCAL_SERVERS[server]
            fields.setdefault("base_url", default_url)
        if kind not in PROVIDERS or kind == "mock":
            valid = [k for k in PROVIDERS if k != "mock"]
            raise RequestError(
                f"unknown provider type {type_!r}; valid: {', '.join([*valid, 'local'])}", param="type"
            )
        cls = PROVIDERS.get(kind)
        common = {k: v for k, v in fields.items() if k in _CONFIG_FIELDS}
        rest = {k: v for k, v in fields.items() if k not in _CONFIG_FIELDS}
        try:
            config = ProviderConfig(**{**common, "name": name, "tenant": tenant, "type": kind})
        except ValidationError as exc:
            raise RequestError(_describe(exc, f"settings for provider {name!r}")) from exc
        try:
            options = cls.Options(**rest)
        except ValidationError as exc:
            valid_keys = sorted(_CONFIG_FIELDS - {"name", "tenant", "type"} | set(cls.Options.model_fields))
            raise RequestError(
                _describe(exc, f"settings for provider {name!r} ({kind})")
                + f". Valid settings: {', '.join(valid_keys)}"
            ) from exc
        if kind == "custom":
            return cls(config, options, adapters=self.adapter)  # type: ignore[call-arg]
        return cls(config, options)

    async def create_provider(
        self, *, type: str, name: str, tenant: str = "default", **settings: Any
    ) -> ProviderInfo:
        """Create a provider for a tenant.

        Args:
            type: ``openai``, ``anthropic``, ``google``, ``ollama``, ``custom``, or ``local`` (with
                ``server_type`` ``ollama``/``lmstudio``/``vllm``/``llamacpp``).
            name: Unique within the tenant.
            tenant: The tenant that owns it; other tenants never see it.
            **settings: ``api_key``, ``base_url``, ``default_model``, ``models``, ``priority`` (lower is
                tried first), ``weight``, ``timeout``, ``headers``, plus the type's own options
                (``organization``, ``anthropic_version``, ``request_format``, ...). camelCase works too.

        Raises:
            Conflict: the tenant already has a provider of that name.
            RequestError: a setting is invalid or unknown (every problem is listed).
        """
        async with self._lock:
            if name in self._providers.get(tenant, {}):
                raise Conflict(
                    f"tenant {tenant!r} already has a provider named {name!r}; use update_provider"
                )
            provider = self._build(type, name, tenant, settings)
            self._providers.setdefault(tenant, {})[name] = provider
        return self.describe(provider)

    async def add_provider(self, provider: Provider) -> None:
        """Add a ready-made provider object (a plugin's, or ``podium.testing.MockProvider``)."""
        async with self._lock:
            tenant = provider.config.tenant
            if provider.name in self._providers.get(tenant, {}):
                raise Conflict(f"tenant {tenant!r} already has a provider named {provider.name!r}")
            self._providers.setdefault(tenant, {})[provider.name] = provider

    async def update_provider(self, name: str, tenant: str = "default", **changes: Any) -> ProviderInfo:
        """Change some settings of a provider; the rest stay as they were.

        Requests already under way finish on the old settings; new ones use the new settings.
        """
        async with self._lock:
            old = self._get(name, tenant)
            current: dict[str, Any] = {
                k: v for k, v in old.config.model_dump().items() if k not in ("name", "tenant", "type")
            }
            current.update(old.options.model_dump())
            current.update(_normalise(changes))
            type_ = str(current.pop("type_override", old.config.type))
            provider = self._build(type_, name, tenant, current)
            self._providers[tenant][name] = provider
        self._retire(old)
        return self.describe(provider)

    async def remove_provider(self, name: str, tenant: str = "default") -> None:
        """Remove a provider; its pooled connections close once in-flight requests finish."""
        async with self._lock:
            old = self._get(name, tenant)
            del self._providers[tenant][name]
        self.stats.forget(tenant, name)
        self._retire(old)

    def _retire(self, provider: Provider) -> None:
        async def close_later() -> None:
            await asyncio.sleep(provider.config.timeout + 1.0)
            await provider.aclose()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retiring[task] = provider
        task.add_done_callback(lambda t: self._retiring.pop(t, None))

    def _get(self, name: str, tenant: str) -> Provider:
        provider = self._providers.get(tenant, {}).get(name)
        if provider is None:
            raise NotFound(f"tenant {tenant!r} has no provider named {name!r}")
        return provider

    def provider(self, name: str, tenant: str = "default") -> Provider:
        """The live provider object (for provider-specific calls such as ``count_tokens``)."""
        return self._get(name, tenant)

    def get_provider(self, name: str, tenant: str = "default") -> ProviderInfo:
        """A provider's settings, secrets masked."""
        return self.describe(self._get(name, tenant))

    def list_providers(self, tenant: str | None = None) -> list[ProviderInfo]:
        """Every provider of a tenant (of all tenants when None), secrets masked."""
        tenants = [tenant] if tenant is not None else sorted(self._providers)
        return [self.describe(p) for t in tenants for p in self._providers.get(t, {}).values()]

    @staticmethod
    def describe(provider: Provider) -> ProviderInfo:
        """Public view of a provider."""
        c = provider.config
        options = {
            k: (mask_secret(v.get_secret_value()) if isinstance(v, SecretStr) else v)
            for k, v in provider.options.model_dump().items()
        }
        return ProviderInfo(
            name=c.name,
            type=c.type,
            tenant=c.tenant,
            base_url=getattr(getattr(provider, "http", None), "base_url", None) or c.base_url,
            default_model=c.default_model,
            models=list(c.models),
            priority=c.priority,
            weight=c.weight,
            enabled=c.enabled,
            timeout=c.timeout,
            api_key=mask_secret(c.api_key.get_secret_value()) if c.api_key else None,
            headers={
                k: ("****" if k.lower() in ("authorization", "x-api-key", "api-key") else v)
                for k, v in c.headers.items()
            },
            options=options,
        )

    async def test_provider(self, name: str, tenant: str = "default") -> CheckResult:
        """Check a provider's connectivity with a cheap probe (model list or a one-token request)."""
        return await self._get(name, tenant).check()

    async def list_models(self, tenant: str = "default") -> list[ModelInfo]:
        """The models of the tenant's providers (configured ones; no upstream call)."""
        out: list[ModelInfo] = []
        for p in self._providers.get(tenant, {}).values():
            for m in dict.fromkeys([*(x for x in [p.config.default_model] if x), *p.config.models]):
                out.append(ModelInfo(id=m, provider=p.name, type=p.config.type))
        return out

    # ------------------------------------------------------------------- routing

    def router(self, tenant: str) -> Router:
        """The tenant's router (created on first use)."""
        router = self._routers.get(tenant)
        if router is None:
            strategy: Strategy = STRATEGIES.get(self._strategy_name)()
            router = Router(
                tenant,
                lambda: list(self._providers.get(tenant, {}).values()),
                strategy,
                self.retry,
                self.stats,
            )
            self._routers[tenant] = router
        return router

    @staticmethod
    def _context(tenant: str, provider: str | None, timeout: float | None, user: str | None) -> CallContext:
        if timeout is not None and timeout <= 0:
            raise RequestError("timeout must be positive", param="timeout")
        return CallContext(
            tenant=tenant,
            provider=provider,
            deadline=time.monotonic() + timeout if timeout else None,
            user_id=user,
        )

    def build_chat_request(
        self,
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

    async def chat(
        self,
        messages: str | Iterable[MessageLike],
        *,
        tenant: str = "default",
        provider: str | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> ChatResponse:
        """Answer a chat, failing over between the tenant's providers.

        Args:
            messages: A prompt, or OpenAI-shaped message dicts / ``Message`` objects.
            tenant: Whose providers to use.
            provider: Use only this provider (no failover to others).
            timeout: Seconds the whole request (every attempt included) may take.
            **params: ``model`` (a model name, ``provider/model``), ``temperature``, ``top_p``,
                ``max_tokens``, ``stop``, ``seed``, ``user``, ``metadata``, ``tools``, ``tool_choice``,
                ``parallel_tool_calls``, ``response_format``; anything else is passed to the provider.

        Raises:
            RequestError: invalid arguments. NoHealthyProviders: nothing to try.
            AllProvidersFailed: every attempt failed (``.attempts`` lists them).
        """
        request = self._chat_request(messages, params)
        return await self.chat_request(request, self._context(tenant, provider, timeout, request.user))

    def _chat_request(self, messages: str | Iterable[MessageLike], params: dict[str, Any]) -> ChatRequest:
        params = {(to_snake(k) if to_snake(k) in _CHAT_PARAMS else k): v for k, v in params.items()}
        known = {k: params.pop(k) for k in list(params) if k in _CHAT_PARAMS}
        extra = params.pop("extra", None) or {}
        return self.build_chat_request(messages, **known, extra={**extra, **params})

    async def chat_request(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer a canonical request (the gateway server's entry point)."""
        return await self.router(ctx.tenant).chat(request, ctx)

    async def stream(
        self,
        messages: str | Iterable[MessageLike],
        *,
        tenant: str = "default",
        provider: str | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a chat answer; the last chunk carries usage. Arguments as for ``chat``.

        Failover happens only before the first chunk; after it, errors reach the caller.
        """
        request = self._chat_request(messages, params)
        async for chunk in self.stream_request(
            request, self._context(tenant, provider, timeout, request.user)
        ):
            yield chunk

    def stream_request(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[ChatChunk]:
        """Stream a canonical request (the gateway server's entry point)."""
        return self.router(ctx.tenant).stream(request, ctx)

    async def complete(
        self,
        prompt: str,
        *,
        tenant: str = "default",
        provider: str | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | list[str] | None = None,
        seed: int | None = None,
        user: str | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> CompletionResponse:
        """Complete text (legacy completions API where the provider has one, else through chat)."""
        if not isinstance(prompt, str) or not prompt:
            raise RequestError("prompt must be a non-empty string", param="prompt")
        request = CompletionRequest(
            prompt=prompt,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=[stop] if isinstance(stop, str) else stop,
            seed=seed,
            user=user,
            extra=extra or None,
        )
        ctx = self._context(tenant, provider, timeout, user)
        return await self.router(tenant).complete(request, ctx)

    async def embed(
        self,
        input: str | list[str],
        *,
        tenant: str = "default",
        provider: str | None = None,
        model: str | None = None,
        dimensions: int | None = None,
        user: str | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> EmbedResponse:
        """Embed one text or several (one vector per text, in order)."""
        texts = [input] if isinstance(input, str) else list(input)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise RequestError("input must be a string or a non-empty list of strings", param="input")
        request = EmbedRequest(
            input=texts, model=model, dimensions=dimensions, user=user, extra=extra or None
        )
        ctx = self._context(tenant, provider, timeout, user)
        return await self.router(tenant).embed(request, ctx)

    # ---------------------------------------------------------------- reporting

    def get_statistics(self, tenant: str | None = None) -> Statistics:
        """Requests, errors and latency per provider (of one tenant, or of all)."""
        return self.stats.snapshot(tenant)

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close every provider's connections."""
        retiring = list(self._retiring.items())
        for task, _ in retiring:
            task.cancel()
        providers = [p for ps in self._providers.values() for p in ps.values()] + [p for _, p in retiring]
        await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)

    async def __aenter__(self) -> Orchestrator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


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

__all__ = ["ModelInfo", "Orchestrator", "ProviderInfo", "mask_secret"]
