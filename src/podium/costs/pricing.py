"""What a response cost: prices from the ``genai-prices`` package, overridable per provider and model.

Prices are looked up by model (with the provider's type as a hint, e.g. ``openai``), so a new model
is priced as soon as ``genai-prices`` knows it. A provider can carry its own prices in US dollars per
million tokens (input, output, cached input) for custom, fine-tuned or self-hosted models, and local
providers (types listed in ``local_types``, ``ollama`` by default, or any provider registered with
``local=True``) cost nothing. Costs are exact integer nano-dollars (1e-9 USD) from ``Decimal`` prices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from podium.state.base import NANOS_PER_USD, to_usd
from podium.types import Usage

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo

logger = logging.getLogger(__name__)

PriceSource = Literal["genai-prices", "override", "local", "unknown"]
_PER_MILLION = Decimal(NANOS_PER_USD) / Decimal(1_000_000)


class PriceOverride(BaseModel):
    """Prices in US dollars per million tokens (``input``, ``output``; ``cached_input`` defaults to input).

    camelCase (``cachedInput``) is accepted.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, alias_generator=to_camel, frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)

    def rates(self) -> tuple[Decimal, Decimal, Decimal]:
        """(input, cached input, output) in US dollars per million tokens, exact as written."""
        cached = self.input if self.cached_input is None else self.cached_input
        return Decimal(str(self.input)), Decimal(str(cached)), Decimal(str(self.output))

    def nanos(self, usage: Usage) -> int:
        """The exact cost of ``usage`` at these prices, in nano-dollars."""
        nanos = _Rate.flat("override", *self.rates()).nanos(usage)
        assert nanos is not None  # an override always prices cached input
        return nanos


class Cost(msgspec.Struct, frozen=True):
    """The cost of one response.

    Attributes:
        nanos: Exact cost in nano-dollars (what the ledger and budgets add up).
        source: Where the price came from: ``genai-prices``, ``override``, ``local`` or ``unknown``
            (no price known: counted as 0, and logged once per model).
    """

    nanos: int
    source: PriceSource

    @property
    def usd(self) -> float:
        """The cost in US dollars."""
        return to_usd(self.nanos)


@dataclass(slots=True)
class _ProviderPrices:
    kind: str | None = None
    local: bool = False
    default: PriceOverride | None = None
    models: dict[str, PriceOverride] = field(default_factory=dict)


def _as_override(value: PriceOverride | Mapping[str, Any]) -> PriceOverride:
    return value if isinstance(value, PriceOverride) else PriceOverride.model_validate(value)


class Pricing:
    """Prices every response, streamed or not, from its real usage.

    Args:
        local_types: Provider types that run locally and cost nothing unless given prices.
    """

    def __init__(self, local_types: Iterable[str] = ("ollama",)) -> None:
        self._local_types = frozenset(local_types)
        self._providers: dict[tuple[str | None, str], _ProviderPrices] = {}
        self._genai_ids_cache: frozenset[str] | None = None
        self._models: dict[tuple[str, str | None], ModelInfo | None] = {}
        self._unknown_logged: set[tuple[str | None, str]] = set()
        self._rates: dict[tuple[str, str | None, str], tuple[_Rate, float]] = {}

    def set_provider(
        self,
        provider: str,
        *,
        tenant: str | None = None,
        kind: str | None = None,
        prices: PriceOverride | Mapping[str, Any] | None = None,
        models: Mapping[str, PriceOverride | Mapping[str, Any]] | None = None,
        local: bool | None = None,
    ) -> None:
        """Tell pricing about a provider (call it when the provider is created or changed).

        Args:
            provider: The provider's name.
            tenant: The tenant that owns it (None: a provider of that name in any tenant without its own
                registration).
            kind: Its type (``openai``, ``anthropic``, ...), used as the ``genai-prices`` provider hint.
            prices: Prices for every model of this provider.
            models: Prices for single models (win over ``prices``).
            local: Whether it runs locally (free unless priced); default: its type is in ``local_types``.

        Raises:
            pydantic.ValidationError: a price is negative or has unknown keys.
        """
        self._providers[(tenant, provider)] = _ProviderPrices(
            kind=kind,
            local=(kind in self._local_types) if local is None else local,
            default=None if prices is None else _as_override(prices),
            models={m: _as_override(p) for m, p in (models or {}).items()},
        )
        self._rates.clear()

    def remove_provider(self, provider: str, *, tenant: str | None = None) -> None:
        """Forget what was registered for a provider."""
        self._providers.pop((tenant, provider), None)
        self._rates.clear()

    def cost(self, usage: Usage, *, model: str, provider: str | None = None, tenant: str = "default") -> Cost:
        """The cost of ``usage`` on ``model`` served by ``provider``."""
        key = (tenant, provider, model)
        found = self._rates.get(key)
        if found is None or found[1] < time.monotonic():
            found = self._resolve(key)
        rate = found[0]
        nanos = rate.nanos(usage)
        if nanos is not None:
            return Cost(nanos, rate.source)
        if rate.source == "unknown":
            return _UNKNOWN
        return Cost(self._genai_general(usage, model, rate.hint), rate.source)

    def max_cost(
        self,
        prompt_tokens: int,
        max_tokens: int,
        *,
        model: str,
        provider: str | None = None,
        tenant: str = "default",
    ) -> Cost:
        """The most a request can cost: its prompt uncached plus ``max_tokens`` of output."""
        usage = Usage(
            prompt_tokens=prompt_tokens, completion_tokens=max_tokens, total_tokens=prompt_tokens + max_tokens
        )
        return self.cost(usage, model=model, provider=provider, tenant=tenant)

    def _resolve(self, key: tuple[str, str | None, str]) -> tuple[_Rate, float]:
        """Find the rate of (tenant, provider, model) and keep it for ``_RATE_TTL`` seconds.

        Every request is priced up to three times (its reservation, a failover's top-up, the
        settlement): the lookup through registrations and the ``genai-prices`` table happens here once
        a while, not per call. A dated price change in ``genai-prices`` is seen within the TTL.
        """
        tenant, provider, model = key
        entry = None
        if provider is not None:
            entry = self._providers.get((tenant, provider)) or self._providers.get((None, provider))
        rate: _Rate | None = None
        if entry is not None:
            override = entry.models.get(model, entry.default)
            if override is not None:
                rate = _Rate.flat("override", *override.rates())
            elif entry.local:
                rate = _Rate.flat("local", _ZERO, _ZERO, _ZERO)
        if rate is None:
            kind = entry.kind if entry is not None else None
            rate = self._genai_rate(model, kind)
            if rate.source == "unknown" and (kind, model) not in self._unknown_logged:
                self._unknown_logged.add((kind, model))
                logger.warning(
                    "no price known for model %r (provider type %r): counted as $0; give the provider "
                    "prices to cost and budget it",
                    model,
                    kind,
                )
        if len(self._rates) >= _MAX_RATES:
            self._rates.clear()  # a bound against unbounded model names; refilled on demand
        found = self._rates[key] = (rate, time.monotonic() + _RATE_TTL)
        return found

    @property
    def _genai_ids(self) -> frozenset[str]:
        if self._genai_ids_cache is None:
            from genai_prices.data_snapshot import get_snapshot

            self._genai_ids_cache = frozenset(p.id for p in get_snapshot().providers)
        return self._genai_ids_cache

    def _genai_rate(self, model: str, kind: str | None) -> _Rate:
        hint = kind if kind in self._genai_ids else None
        key = (model, hint)
        if key in self._models:
            info = self._models[key]
        else:
            # genai-prices (and its price table) load on the first price asked for: processes that
            # only serve local or custom-priced models never pay for them.
            from genai_prices.data_snapshot import get_snapshot

            try:
                info = get_snapshot().find_provider_model(model, None, hint, None)[1]
            except LookupError:
                info = None
            self._models[key] = info
        if info is None:
            return _Rate("unknown", hint)
        # The package's own calculation is general (every unit, tiers, audio, images) and costs about
        # 70 us a call; text-only usage at flat rates is three multiplications of the same prices.
        rates = info.get_prices(datetime.now(tz=UTC))
        p_in, p_out = _flat(rates.input_mtok), _flat(rates.output_mtok)
        p_cached = rates.cache_read_mtok if isinstance(rates.cache_read_mtok, Decimal) else None
        if p_in is not None and p_out is not None:
            # Without a flat cache-read price, cached tokens need the general calculation; the flat
            # rate still serves every usage without cached tokens (nearly all of them).
            return _Rate.flat("genai-prices", p_in, p_cached, p_out, hint=hint)
        return _Rate("genai-prices", hint)

    def _genai_general(self, usage: Usage, model: str, hint: str | None) -> int:
        import genai_prices

        genai_usage = genai_prices.Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=min(usage.cached_tokens, usage.prompt_tokens),
        )
        price = genai_prices.calc_price(genai_usage, model, provider_id=hint)
        return int((price.total_price * NANOS_PER_USD).to_integral_value(ROUND_HALF_EVEN))


_ZERO = Decimal(0)
_UNKNOWN = Cost(0, "unknown")
_RATE_TTL = 60.0
_MAX_RATES = 4096


class _Rate:
    """A resolved price: nano-dollars per token as integers when exact, else as Decimals.

    ``ints`` and ``decimals`` are (uncached input, cached input, output) per token; both None means
    no flat rate (unknown, or priced by ``genai-prices``' general calculation). ``cached_flat`` is
    False when cached input has no flat price: usage with cached tokens then takes the general path.
    """

    __slots__ = ("cached_flat", "decimals", "hint", "ints", "source")

    def __init__(self, source: PriceSource, hint: str | None = None) -> None:
        self.source = source
        self.hint = hint
        self.ints: tuple[int, int, int] | None = None
        self.decimals: tuple[Decimal, Decimal, Decimal] | None = None
        self.cached_flat = True

    @classmethod
    def flat(
        cls,
        source: PriceSource,
        per_mtok_in: Decimal,
        per_mtok_cached: Decimal | None,
        per_mtok_out: Decimal,
        *,
        hint: str | None = None,
    ) -> _Rate:
        """A flat rate from US dollars per million tokens."""
        rate = cls(source, hint)
        rate.cached_flat = per_mtok_cached is not None
        per_token = [p * _PER_MILLION for p in (per_mtok_in, per_mtok_cached or _ZERO, per_mtok_out)]
        if all(p == p.to_integral_value() for p in per_token):
            rate.ints = (int(per_token[0]), int(per_token[1]), int(per_token[2]))
        else:
            rate.decimals = (per_token[0], per_token[1], per_token[2])
        return rate

    def nanos(self, usage: Usage) -> int | None:
        """The exact cost of ``usage`` in nano-dollars; None when only the general calculation can say."""
        if not self.cached_flat and usage.cached_tokens:
            return None
        cached = usage.cached_tokens if usage.cached_tokens <= usage.prompt_tokens else usage.prompt_tokens
        if self.ints is not None:
            p_in, p_cached, p_out = self.ints
            return (usage.prompt_tokens - cached) * p_in + cached * p_cached + usage.completion_tokens * p_out
        if self.decimals is None:
            return None
        d_in, d_cached, d_out = self.decimals
        total = (
            Decimal(usage.prompt_tokens - cached) * d_in
            + Decimal(cached) * d_cached
            + Decimal(usage.completion_tokens) * d_out
        )
        return int(total.to_integral_value(ROUND_HALF_EVEN))


def _flat(price: object) -> Decimal | None:
    """The price when it is one flat rate (absent: free); None when it is tiered."""
    if price is None:
        return _ZERO
    return price if isinstance(price, Decimal) else None
