"""What a response cost: prices from the ``genai-prices`` package, overridable per provider and model.

Prices are looked up by model (with the provider's type as a hint, e.g. ``openai``), so a new model
is priced as soon as ``genai-prices`` knows it. A provider can carry its own prices in US dollars per
million tokens (input, output, cached input) for custom, fine-tuned or self-hosted models, and local
providers (types listed in ``local_types``, ``ollama`` by default, or any provider registered with
``local=True``) cost nothing. Costs are exact integer nano-dollars (1e-9 USD) from ``Decimal`` prices.
"""

from __future__ import annotations

import logging
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

    def nanos(self, usage: Usage) -> int:
        """The exact cost of ``usage`` at these prices, in nano-dollars."""
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        total = (
            Decimal(usage.prompt_tokens - cached) * Decimal(str(self.input))
            + Decimal(cached) * Decimal(str(cached_price))
            + Decimal(usage.completion_tokens) * Decimal(str(self.output))
        ) * _PER_MILLION
        return int(total.to_integral_value(ROUND_HALF_EVEN))


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

    def remove_provider(self, provider: str, *, tenant: str | None = None) -> None:
        """Forget what was registered for a provider."""
        self._providers.pop((tenant, provider), None)

    def cost(self, usage: Usage, *, model: str, provider: str | None = None, tenant: str = "default") -> Cost:
        """The cost of ``usage`` on ``model`` served by ``provider``."""
        entry = None
        if provider is not None:
            entry = self._providers.get((tenant, provider)) or self._providers.get((None, provider))
        if entry is not None:
            override = entry.models.get(model, entry.default)
            if override is not None:
                return Cost(override.nanos(usage), "override")
            if entry.local:
                return Cost(0, "local")
        kind = entry.kind if entry is not None else None
        nanos = self._genai(usage, model, kind)
        if nanos is None:
            if (kind, model) not in self._unknown_logged:
                self._unknown_logged.add((kind, model))
                logger.warning(
                    "no price known for model %r (provider type %r): counted as $0; give the provider "
                    "prices to cost and budget it",
                    model,
                    kind,
                )
            return Cost(0, "unknown")
        return Cost(nanos, "genai-prices")

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

    @property
    def _genai_ids(self) -> frozenset[str]:
        if self._genai_ids_cache is None:
            from genai_prices.data_snapshot import get_snapshot

            self._genai_ids_cache = frozenset(p.id for p in get_snapshot().providers)
        return self._genai_ids_cache

    def _genai(self, usage: Usage, model: str, kind: str | None) -> int | None:
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
            return None
        # The package's own calculation is general (every unit, tiers, audio, images) and costs about
        # 70 us a call; text-only usage at flat rates is three multiplications of the same prices.
        rates = info.get_prices(datetime.now(tz=UTC))
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        p_in, p_out = _flat(rates.input_mtok), _flat(rates.output_mtok)
        p_cached = rates.cache_read_mtok if isinstance(rates.cache_read_mtok, Decimal) else None
        if p_in is not None and p_out is not None and (cached == 0 or p_cached is not None):
            total = (
                Decimal(usage.prompt_tokens - cached) * p_in
                + Decimal(cached) * (p_cached or _ZERO)
                + Decimal(usage.completion_tokens) * p_out
            ) * _PER_MILLION
            return int(total.to_integral_value(ROUND_HALF_EVEN))
        import genai_prices

        genai_usage = genai_prices.Usage(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=cached,
        )
        price = genai_prices.calc_price(genai_usage, model, provider_id=hint)
        return int((price.total_price * NANOS_PER_USD).to_integral_value(ROUND_HALF_EVEN))


_ZERO = Decimal(0)


def _flat(price: object) -> Decimal | None:
    """The price when it is one flat rate (absent: free); None when it is tiered."""
    if price is None:
        return _ZERO
    return price if isinstance(price, Decimal) else None
