"""Costs come from genai-prices' own numbers, from provider overrides, or are zero for local models."""

from __future__ import annotations

from decimal import Decimal

import genai_prices
import pytest

from podium.costs import PriceOverride, Pricing
from podium.types import Usage


def _genai_nanos(model: str, provider: str, prompt: int, completion: int, cached: int = 0) -> int:
    usage = genai_prices.Usage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached)
    price = genai_prices.calc_price(usage, model, provider_id=provider).total_price
    return int(price * Decimal(10**9))


@pytest.mark.parametrize(
    ("model", "kind"),
    [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-3-5-haiku-latest", "anthropic")],
)
def test_costs_match_genai_prices(model: str, kind: str) -> None:
    pricing = Pricing()
    pricing.set_provider("main", kind=kind)
    cost = pricing.cost(Usage(1234, 567, 1801), model=model, provider="main")
    assert cost.source == "genai-prices"
    assert cost.nanos == _genai_nanos(model, kind, 1234, 567)
    assert cost.usd == pytest.approx(cost.nanos / 1e9)
    assert cost.nanos > 0


def test_cached_prompt_tokens_are_cheaper() -> None:
    pricing = Pricing()
    full = pricing.cost(Usage(10_000, 100, 10_100), model="gpt-4o")
    cached = pricing.cost(Usage(10_000, 100, 10_100, cached_tokens=8_000), model="gpt-4o")
    assert cached.nanos == _genai_nanos("gpt-4o", "openai", 10_000, 100, cached=8_000)
    assert cached.nanos < full.nanos


def test_provider_and_model_overrides_win() -> None:
    pricing = Pricing()
    pricing.set_provider(
        "my-vllm",
        kind="openai",
        prices={"input": 0.5, "output": 1.5, "cachedInput": 0.1},
        models={"gpt-4o": PriceOverride(input=3, output=9)},
    )
    usage = Usage(1_000_000, 2_000_000, 3_000_000, cached_tokens=500_000)
    # 500k uncached at 0.5 + 500k cached at 0.1 + 2M output at 1.5 = 0.25 + 0.05 + 3.0
    assert pricing.cost(usage, model="llama-3-70b", provider="my-vllm").usd == pytest.approx(3.3)
    assert pricing.cost(usage, model="gpt-4o", provider="my-vllm").usd == pytest.approx(
        0.5 * 3 + 0.5 * 3 + 18
    )
    assert pricing.cost(usage, model="gpt-4o", provider="my-vllm").source == "override"


def test_local_models_are_free_unless_priced() -> None:
    pricing = Pricing()
    pricing.set_provider("ollama", kind="ollama")
    pricing.set_provider("studio", kind="openai", local=True)
    pricing.set_provider("gpu-box", kind="ollama", prices={"input": 0.01, "output": 0.01})
    usage = Usage(1000, 1000, 2000)
    assert pricing.cost(usage, model="gpt-4o", provider="ollama").nanos == 0
    assert pricing.cost(usage, model="gpt-4o", provider="ollama").source == "local"
    assert pricing.cost(usage, model="qwen2.5", provider="studio").nanos == 0
    assert pricing.cost(usage, model="llama3.2", provider="gpu-box").nanos == 20_000


def test_tenant_registrations_are_separate() -> None:
    pricing = Pricing()
    pricing.set_provider("gpt", prices={"input": 1, "output": 1})
    pricing.set_provider("gpt", tenant="acme", prices={"input": 2, "output": 2})
    usage = Usage(1_000_000, 0, 1_000_000)
    assert pricing.cost(usage, model="x", provider="gpt", tenant="acme").usd == 2
    assert pricing.cost(usage, model="x", provider="gpt", tenant="other").usd == 1


def test_unknown_models_cost_zero_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    pricing = Pricing()
    pricing.set_provider("custom", kind="custom")
    cost = pricing.cost(Usage(10, 10, 20), model="totally-unknown-model-xyz", provider="custom")
    assert (cost.nanos, cost.source) == (0, "unknown")
    assert "no price known" in caplog.text


def test_max_cost_prices_prompt_plus_max_tokens() -> None:
    pricing = Pricing()
    assert pricing.max_cost(100, 900, model="gpt-4o").nanos == _genai_nanos("gpt-4o", "openai", 100, 900)


def test_negative_prices_are_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal"):
        Pricing().set_provider("x", prices={"input": -1, "output": 1})


def _priced_models() -> list[tuple[str, str]]:
    from genai_prices.data_snapshot import get_snapshot

    wanted = {"openai", "anthropic", "google", "mistral", "groq", "deepseek"}
    return [(m.id, p.id) for p in get_snapshot().providers if p.id in wanted for m in p.models]


def test_every_model_of_the_major_providers_costs_what_genai_prices_says() -> None:
    """podium computes flat per-token prices itself (fast); it must agree with the package everywhere."""
    pricing = Pricing()
    checked = 0
    for model, kind in _priced_models():
        pricing.set_provider(kind, kind=kind)
        for prompt, completion, cached in ((1234, 567, 0), (250_000, 3, 0), (4000, 1000, 3000), (1, 0, 0)):
            usage = Usage(prompt, completion, prompt + completion, cached_tokens=cached)
            got = pricing.cost(usage, model=model, provider=kind)
            try:
                expected = genai_prices.calc_price(
                    genai_prices.Usage(
                        input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached
                    ),
                    model,
                    provider_id=kind,
                ).total_price
            except LookupError:
                continue
            assert got.nanos == int((expected * 10**9).to_integral_value()), (
                model,
                prompt,
                completion,
                cached,
            )
            checked += 1
    assert checked > 300  # the comparison really covered the catalogue


def test_changed_prices_apply_to_the_next_request() -> None:
    """Resolved prices are kept between requests; a provider's new prices must still apply at once."""
    pricing = Pricing()
    pricing.set_provider("vllm", prices={"input": 1, "output": 2})
    usage = Usage(1_000_000, 1_000_000, 2_000_000)
    assert pricing.cost(usage, model="m", provider="vllm").usd == pytest.approx(3.0)
    pricing.set_provider("vllm", prices={"input": 10, "output": 20})
    assert pricing.cost(usage, model="m", provider="vllm").usd == pytest.approx(30.0)
    pricing.remove_provider("vllm")
    assert pricing.cost(usage, model="m", provider="vllm").source == "unknown"


def test_fractional_nano_prices_round_half_even() -> None:
    """$0.0375 per million tokens is 37.5 nano-dollars a token: sums stay exact, rounded once."""
    pricing = Pricing()
    pricing.set_provider("cheap", prices={"input": 0.0375, "output": 0.0375})
    assert pricing.cost(Usage(3, 0, 3), model="m", provider="cheap").nanos == 112  # 112.5 -> even
    assert pricing.cost(Usage(5, 0, 5), model="m", provider="cheap").nanos == 188  # 187.5 -> even
    assert pricing.cost(Usage(2, 2, 4), model="m", provider="cheap").nanos == 150
