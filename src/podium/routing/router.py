"""The router: plans which providers serve a request, then fails over between them.

It is a ``Backend`` over one tenant's providers. For each request it picks the candidates (an explicit
provider, the providers serving the requested model, or all of them), lets the strategy order them,
and tries them in turn: a failure that another provider may not share moves on to the next one; when
every candidate failed retryably it backs off (honouring Retry-After) and tries again. Streams fail
over only until their first chunk has been delivered.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import msgspec

from podium.backend import CallContext
from podium.errors import (
    AllProvidersFailed,
    Attempt,
    ModelNotFound,
    NoHealthyProviders,
    NotFound,
    ProviderError,
    ProviderRateLimited,
)
from podium.health.stats import StatsRecorder
from podium.providers.base import Provider
from podium.routing.retry import RetryPolicy
from podium.routing.strategies import Strategy
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    CompletionRequest,
    CompletionResponse,
    EmbedRequest,
    EmbedResponse,
    Usage,
)


class _Result(Protocol):
    @property
    def latency_ms(self) -> float: ...

    @property
    def usage(self) -> Usage | None: ...


R = TypeVar("R", bound=_Result)
Req = TypeVar("Req", ChatRequest, CompletionRequest, EmbedRequest)


class Router:
    """Routes one tenant's requests over its providers with failover and retries.

    Args:
        tenant: The tenant whose providers these are.
        providers: Returns the tenant's current providers (looked up per request, so changes apply at once).
        strategy: Orders the candidates.
        retry: Retry rounds and backoff.
        stats: Where attempt outcomes are recorded.
        rng: Randomness for backoff jitter (injectable for tests).
        sleep: How to wait between retry rounds (injectable for tests).
    """

    def __init__(
        self,
        tenant: str,
        providers: Callable[[], Sequence[Provider]],
        strategy: Strategy,
        retry: RetryPolicy,
        stats: StatsRecorder,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.tenant = tenant
        self._providers = providers
        self.strategy = strategy
        self.retry = retry
        self.stats = stats
        self._rng = rng or random.Random()
        self._sleep = sleep

    def plan(self, model: str | None, ctx: CallContext) -> list[tuple[Provider, str | None]]:
        """Return ``(provider, model)`` pairs in the order they will be tried.

        Raises:
            NotFound: the explicitly requested provider does not exist for this tenant.
            ModelNotFound: no provider of the tenant serves the requested model.
            NoHealthyProviders: the tenant has no enabled provider.
        """
        providers = [p for p in self._providers() if p.config.enabled]
        if ctx.provider is not None:
            chosen = [p for p in providers if p.name == ctx.provider]
            if not chosen:
                raise NotFound(f"tenant {self.tenant!r} has no enabled provider named {ctx.provider!r}")
            return [(chosen[0], model)]
        if not providers:
            raise NoHealthyProviders(
                f"tenant {self.tenant!r} has no enabled providers; create one with create_provider(...)"
            )
        if model is None:
            return [(p, None) for p in self.strategy.order(providers)]
        prefix, _, rest = model.partition("/")
        if rest:
            named = [p for p in providers if p.name == prefix]
            if named:
                return [(named[0], rest)]
        serving = [p for p in providers if p.config.serves(model)]
        if not serving:
            # Providers that declare no model list accept any model name.
            serving = [p for p in providers if not p.config.models]
        if not serving:
            known = sorted({m for p in providers for m in (p.config.default_model, *p.config.models) if m})
            raise ModelNotFound(
                f"no provider of tenant {self.tenant!r} serves model {model!r}; "
                f"available: {', '.join(known)}",
                param="model",
            )
        return [(p, model) for p in self.strategy.order(serving)]

    async def _run(
        self,
        request: Req,
        ctx: CallContext,
        call: Callable[[Provider, Req], Awaitable[R]],
    ) -> R:
        plan = self.plan(request.model, ctx)
        attempts: list[Attempt] = []
        pending = plan
        round_no = 0
        while True:
            retry_next: list[tuple[Provider, str | None]] = []
            wait_at_least = 0.0
            for provider, model in pending:
                if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
                    break
                req = msgspec.structs.replace(request, model=model) if model != request.model else request
                t0 = time.perf_counter()
                try:
                    result = await call(provider, req)
                except ProviderError as exc:
                    exc.provider = exc.provider or provider.name
                    elapsed = (time.perf_counter() - t0) * 1000
                    attempts.append(
                        Attempt(provider.name, model or provider.config.default_model or "", exc, elapsed)
                    )
                    self.stats.failure(self.tenant, provider.name, exc)
                    if not exc.failover:
                        self.stats.request(self.tenant, ok=False)
                        raise
                    if exc.retryable:
                        ra = exc.retry_after if isinstance(exc, ProviderRateLimited) else None
                        if ra is None or ra <= self.retry.max_retry_after:
                            retry_next.append((provider, model))
                            wait_at_least = max(wait_at_least, ra or 0.0)
                    continue
                self.stats.success(self.tenant, provider.name, result.latency_ms, result.usage)
                self.stats.request(self.tenant, ok=True)
                if attempts and isinstance(result, ChatResponse):
                    result.metadata["failed_attempts"] = [
                        {"provider": a.provider, "error": type(a.error).__name__, "message": str(a.error)}
                        for a in attempts
                    ]
                return result
            round_no += 1
            if not retry_next or round_no > self.retry.max_retries:
                break
            delay = max(wait_at_least, self.retry.backoff(round_no, self._rng))
            left = ctx.remaining()
            if left is not None and delay >= left:
                break
            await self._sleep(delay)
            pending = retry_next
        self.stats.request(self.tenant, ok=False)
        raise _all_failed(attempts)

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer from the first provider that succeeds."""
        return await self._run(request, ctx, lambda p, r: p.chat(r, ctx))

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Complete text with the first provider that succeeds."""
        return await self._run(request, ctx, lambda p, r: p.complete(r, ctx))

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed with the first provider that succeeds."""
        return await self._run(request, ctx, lambda p, r: p.embed(r, ctx))

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[ChatChunk]:
        """Stream from the first provider whose stream starts; no failover after the first chunk."""

        async def open_stream(provider: Provider, req: ChatRequest) -> _Opened:
            t0 = time.perf_counter()
            agen = provider.stream(req, ctx).__aiter__()
            try:
                first = await agen.__anext__()
            except StopAsyncIteration:
                first = None
            except BaseException:
                await _aclose(agen)
                raise
            return _Opened(provider, agen, first, (time.perf_counter() - t0) * 1000)

        opened = await self._run(request, ctx, open_stream)
        usage: Usage | None = None
        try:
            if opened.first is not None:
                usage = opened.first.usage or usage
                yield opened.first
                async for chunk in opened.agen:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    yield chunk
        except ProviderError as exc:
            exc.provider = exc.provider or opened.provider.name
            self.stats.failure(self.tenant, opened.provider.name, exc)
            raise
        finally:
            await _aclose(opened.agen)
        # The attempt was counted as a success when its first chunk arrived; add the tokens now.
        self.stats.success_tokens(self.tenant, opened.provider.name, usage)


class _Opened(msgspec.Struct):
    """A stream whose first chunk arrived; quacks like a response for the failover loop."""

    provider: Provider
    agen: AsyncIterator[ChatChunk]
    first: ChatChunk | None
    latency_ms: float
    usage: Usage | None = None


async def _aclose(agen: AsyncIterator[ChatChunk]) -> None:
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        await aclose()


def _all_failed(attempts: list[Attempt]) -> AllProvidersFailed | NoHealthyProviders:
    if not attempts:
        return NoHealthyProviders("no provider could be tried before the request's deadline")
    last = attempts[-1].error
    summary = "; ".join(f"{a.provider}: {type(a.error).__name__}" for a in attempts)
    return AllProvidersFailed(
        f"all {len(attempts)} attempts failed ({summary}); last error: {last}", attempts=attempts
    )
