"""The router: plans which providers serve a request, then fails over between them.

It is a ``Backend`` over one tenant's providers. For each request it picks the candidates (an explicit
provider, the providers serving the requested model, or all of them), lets the strategy order them,
and tries them in turn: a failure that another provider may not share moves on to the next one; when
every candidate failed retryably it backs off (honouring Retry-After) and tries again. Streams fail
over only until their first chunk has been delivered.

With a health registry, a candidate whose circuit is open is skipped without a call (so an outage
costs one failed attempt, not one per request); when every candidate is open the request fails at once
with ``NoHealthyProviders`` and the soonest retry time. Every attempt is bounded by the provider's
timeout and the request's deadline, every stream gap by the idle timeout (``routing.deadline``).
A ``RateLimitExceeded`` raised below the router for one attempt (podium's own per-provider limit)
moves on to the next candidate without counting against the provider's health.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import msgspec

from podium.backend import Backend, CallContext
from podium.errors import (
    AllProvidersFailed,
    Attempt,
    ModelNotFound,
    NoHealthyProviders,
    NotFound,
    PodiumError,
    ProviderError,
    ProviderRateLimited,
    RateLimitExceeded,
)
from podium.health.registry import Blocked, HealthRegistry, Permit
from podium.health.stats import StatsRecorder
from podium.observability.metrics import PodiumMetrics
from podium.observability.tracing import span
from podium.providers.base import Provider
from podium.routing.deadline import IdleWatch, attempt_timeout, bounded
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


@dataclass(slots=True)
class _Trace:
    """What one caller request cost in upstream time, for the overhead metric."""

    started: float = field(default_factory=time.perf_counter)
    waited: float = 0.0  # seconds in upstream attempts and backoff sleeps


class Router:
    """Routes one tenant's requests over its providers with failover, retries, circuits and deadlines.

    Args:
        tenant: The tenant whose providers these are.
        providers: Returns the tenant's current providers (looked up per request, so changes apply at once).
        strategy: Orders the candidates.
        retry: Retry rounds and backoff.
        stats: Where attempt outcomes are recorded (lifetime totals).
        health: Circuits and rolling health; providers with an open circuit are skipped, and its settings
            give the default request deadline and the stream idle timeout (None: no circuits).
        metrics: Prometheus metrics to record into (None: none).
        attempt: The layer each attempt goes through for a provider (limits, budget, cost: the
            governance ``Guarded`` wrapper); None calls the provider directly.
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
        *,
        health: HealthRegistry | None = None,
        metrics: PodiumMetrics | None = None,
        attempt: Callable[[Provider], Backend] | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.tenant = tenant
        self._providers = providers
        self.strategy = strategy
        self.retry = retry
        self.stats = stats
        self.health = health
        self.metrics = metrics
        self._attempt = attempt
        self._rng = rng or random.Random()
        self._sleep = sleep

    def target(self, provider: Provider) -> Backend:
        """What an attempt on ``provider`` calls: the provider, through the attempt layer if any."""
        return provider if self._attempt is None else self._attempt(provider)

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

    # ------------------------------------------------------------------ plumbing

    def _begin(self, ctx: CallContext) -> _Trace:
        if ctx.deadline is None and self.health is not None:
            default = self.health.settings.request_deadline
            if default is not None:
                ctx.deadline = time.monotonic() + default
        if self.metrics is not None:
            self.metrics.request_started(self.tenant)
        return _Trace()

    def _end(self, trace: _Trace, kind: str, error: BaseException | None, streamed: float = 0.0) -> None:
        if self.metrics is not None:
            total = time.perf_counter() - trace.started
            self.metrics.request_finished(self.tenant, kind, total, trace.waited + streamed, error)

    async def _serve(
        self, kind: str, request: Req, ctx: CallContext, call: Callable[[Provider, Req], Awaitable[R]]
    ) -> R:
        trace = self._begin(ctx)
        try:
            with span("podium.request", {"podium.tenant": self.tenant, "podium.kind": kind}):
                result, _ = await self._run(request, ctx, call, trace, settle=True)
        except BaseException as exc:
            self._end(trace, kind, exc)
            raise
        self._end(trace, kind, None)
        return result

    def _failed(
        self, provider: str, model: str, permit: Permit | None, exc: ProviderError, secs: float
    ) -> None:
        self.stats.failure(self.tenant, provider, exc)
        if permit is not None and self.health is not None:
            self.health.failed(permit, exc)
        if self.metrics is not None:
            self.metrics.attempt(self.tenant, provider, model, secs, exc)

    def _admit(
        self, provider: Provider, model: str, blocked: list[tuple[str, Blocked]]
    ) -> Permit | bool | None:
        """A permit (or None without circuits) when the attempt may go; False when its circuit is open."""
        if self.health is None:
            return None
        got = self.health.admit(self.tenant, provider.name, model)
        if isinstance(got, Blocked):
            blocked.append((provider.name, got))
            if self.metrics is not None:
                self.metrics.circuit_skip(self.tenant, provider.name)
            return False
        return got

    async def _run(
        self,
        request: Req,
        ctx: CallContext,
        call: Callable[[Provider, Req], Awaitable[R]],
        trace: _Trace,
        *,
        settle: bool,
    ) -> tuple[R, Permit | None]:
        """Try the plan in order, with retry rounds; ``settle=False`` leaves the permit to the caller."""
        plan = self.plan(request.model, ctx)
        attempts: list[Attempt] = []
        blocked: list[tuple[str, Blocked]] = []
        limited: list[RateLimitExceeded] = []
        pending = plan
        round_no = 0
        while True:
            retry_next: list[tuple[Provider, str | None]] = []
            wait_at_least = 0.0
            for provider, model in pending:
                if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
                    break
                mkey = model or provider.config.default_model or ""
                permit = self._admit(provider, mkey, blocked)
                if permit is False:
                    continue
                assert permit is None or isinstance(permit, Permit)
                req = msgspec.structs.replace(request, model=model) if model != request.model else request
                t0 = time.perf_counter()
                try:
                    with span("podium.upstream", {"podium.provider": provider.name, "podium.model": mkey}):
                        result = await bounded(
                            call(provider, req),
                            attempt_timeout(provider.config.timeout, ctx),
                            provider.name,
                            "no answer",
                        )
                except ProviderError as exc:
                    elapsed = time.perf_counter() - t0
                    trace.waited += elapsed
                    exc.provider = exc.provider or provider.name
                    attempts.append(Attempt(provider.name, mkey, exc, elapsed * 1000))
                    self._failed(provider.name, mkey, permit, exc, elapsed)
                    if not exc.failover:
                        self.stats.request(self.tenant, ok=False)
                        raise
                    if exc.retryable:
                        ra = exc.retry_after if isinstance(exc, ProviderRateLimited) else None
                        if ra is None or ra <= self.retry.max_retry_after:
                            retry_next.append((provider, model))
                            wait_at_least = max(wait_at_least, ra or 0.0)
                    continue
                except RateLimitExceeded as exc:
                    # podium's own limit for this provider: no upstream call was made; try the next one.
                    trace.waited += time.perf_counter() - t0
                    if permit is not None and self.health is not None:
                        self.health.released(permit)
                    limited.append(exc)
                    continue
                except BaseException:
                    # Cancelled, or refused before reaching the upstream (e.g. no model to call).
                    trace.waited += time.perf_counter() - t0
                    if permit is not None and self.health is not None:
                        self.health.released(permit)
                    raise
                elapsed = time.perf_counter() - t0
                trace.waited += elapsed
                self._succeeded(provider.name, mkey, permit, result, elapsed, settle)
                if attempts and isinstance(result, ChatResponse):
                    result.metadata["failed_attempts"] = [
                        {"provider": a.provider, "error": type(a.error).__name__, "message": str(a.error)}
                        for a in attempts
                    ]
                return result, permit
            round_no += 1
            if not retry_next or round_no > self.retry.max_retries:
                break
            delay = max(wait_at_least, self.retry.backoff(round_no, self._rng))
            left = ctx.remaining()
            if left is not None and delay >= left:
                break
            t0 = time.perf_counter()
            await self._sleep(delay)
            trace.waited += time.perf_counter() - t0
            pending = retry_next
        self.stats.request(self.tenant, ok=False)
        if limited and not attempts:
            raise min(limited, key=lambda e: e.retry_after)
        raise _all_failed(attempts, blocked)

    def _succeeded(
        self, provider: str, model: str, permit: Permit | None, result: _Result, secs: float, settle: bool
    ) -> None:
        self.stats.success(self.tenant, provider, result.latency_ms, result.usage)
        self.stats.request(self.tenant, ok=True)
        if permit is not None and settle and self.health is not None:
            self.health.succeeded(permit, secs * 1000)
        if self.metrics is not None:
            self.metrics.attempt(self.tenant, provider, model, secs, None)
            if result.usage is not None:
                self.metrics.record_tokens(self.tenant, provider, model, result.usage)

    # ------------------------------------------------------------------- Backend

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Answer from the first provider that succeeds."""
        return await self._serve("chat", request, ctx, lambda p, r: self.target(p).chat(r, ctx))

    async def complete(self, request: CompletionRequest, ctx: CallContext) -> CompletionResponse:
        """Complete text with the first provider that succeeds."""
        return await self._serve("completion", request, ctx, lambda p, r: self.target(p).complete(r, ctx))

    async def embed(self, request: EmbedRequest, ctx: CallContext) -> EmbedResponse:
        """Embed with the first provider that succeeds."""
        return await self._serve("embedding", request, ctx, lambda p, r: self.target(p).embed(r, ctx))

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[ChatChunk]]:
        """Stream from the first provider whose stream starts; no failover after the first batch.

        Every gap between batches is bounded by the idle timeout and the request's deadline. A stream
        counts as a success for health only once it ends well; a fault mid-stream counts against it.
        """

        async def open_stream(provider: Provider, req: ChatRequest) -> _Opened:
            t0 = time.perf_counter()
            agen = self.target(provider).stream(req, ctx).__aiter__()
            try:
                first: list[ChatChunk] | None = await agen.__anext__()
            except StopAsyncIteration:
                first = None
            except BaseException:
                await _aclose(agen)
                raise
            return _Opened(provider, agen, first, (time.perf_counter() - t0) * 1000)

        trace = self._begin(ctx)
        error: BaseException | None = None
        first_at = 0.0
        try:
            with span("podium.request", {"podium.tenant": self.tenant, "podium.kind": "stream"}):
                opened, permit = await self._run(request, ctx, open_stream, trace, settle=False)
            first_at = time.perf_counter()
            async for batch in self._relay(opened, permit, ctx):
                yield batch
        except GeneratorExit:
            raise  # the caller stopped reading: its choice, not a failed request
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._end(trace, "stream", error, time.perf_counter() - first_at if first_at else 0.0)

    async def _relay(
        self, opened: _Opened, permit: Permit | None, ctx: CallContext
    ) -> AsyncIterator[list[ChatChunk]]:
        name = opened.provider.name
        idle = (
            self.health.settings.stream_idle_timeout if self.health else None
        ) or opened.provider.config.timeout
        watch = IdleWatch(idle, ctx, name)  # inline rather than another generator layer per chunk
        usage: Usage | None = None
        try:
            if opened.first is not None:
                batch = opened.first
                while True:
                    for chunk in batch:
                        if chunk.usage is not None:
                            usage = chunk.usage
                    yield batch
                    try:
                        batch = await watch.next(opened.agen)
                    except StopAsyncIteration:
                        break
        except ProviderError as exc:
            exc.provider = exc.provider or name
            self.stats.failure(self.tenant, name, exc)
            if permit is not None and self.health is not None:
                self.health.failed(permit, exc)
            raise
        except BaseException:
            # The caller stopped reading (or was cancelled): nothing learnt about the upstream.
            if permit is not None and self.health is not None:
                self.health.released(permit)
            raise
        finally:
            watch.close()
            await _aclose(opened.agen)
        if permit is not None and self.health is not None:
            self.health.succeeded(permit, opened.latency_ms)
        # The attempt was counted as a success when its first chunk arrived; add the tokens now.
        self.stats.success_tokens(self.tenant, name, usage)
        if self.metrics is not None and usage is not None:
            model = opened.first[0].model if opened.first else ""
            self.metrics.record_tokens(self.tenant, name, model, usage)


class _Opened(msgspec.Struct):
    """A stream whose first chunk arrived; quacks like a response for the failover loop."""

    provider: Provider
    agen: AsyncIterator[list[ChatChunk]]
    first: list[ChatChunk] | None
    latency_ms: float
    usage: Usage | None = None


async def _aclose(agen: AsyncIterator[list[ChatChunk]]) -> None:
    aclose = getattr(agen, "aclose", None)
    if aclose is not None:
        await aclose()


def _all_failed(attempts: list[Attempt], blocked: list[tuple[str, Blocked]]) -> PodiumError:
    skipped = ", ".join(f"{name} ({b.reason}; retry in {b.retry_after:.1f} s)" for name, b in blocked)
    if not attempts:
        if blocked and all(b.rate_limited for _, b in blocked):
            # Every candidate asked us to wait: tell the caller the same, as a 429 with Retry-After.
            name, soonest = min(blocked, key=lambda nb: nb[1].retry_after)
            return ProviderRateLimited(
                f"every candidate provider is rate limited: {skipped}",
                provider=name,
                retry_after=max(1.0, soonest.retry_after),
            )
        if blocked:
            return NoHealthyProviders(
                f"every candidate provider's circuit is open: {skipped}",
                retry_after=min(b.retry_after for _, b in blocked),
            )
        return NoHealthyProviders("no provider could be tried before the request's deadline")
    last = attempts[-1].error
    summary = "; ".join(f"{a.provider}: {type(a.error).__name__}" for a in attempts)
    also = f"; skipped with an open circuit: {skipped}" if blocked else ""
    return AllProvidersFailed(
        f"all {len(attempts)} attempts failed ({summary}); last error: {last}{also}", attempts=attempts
    )
