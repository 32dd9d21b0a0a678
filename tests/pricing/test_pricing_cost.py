"""cost_of: the token convention, the breakdown, and property tests of the arithmetic."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendgate.bedrock.usage import Usage
from spendgate.pricing import COMPONENTS, Price, cost_of, default_catalog, price_for

AT = datetime(2026, 11, 1, tzinfo=UTC)


def _all_prices() -> list[Price]:
    catalog = default_catalog()
    prices = []
    for record in catalog.records:
        region = record.regions[0]
        if region == "*":
            region = "us-east-1"
        elif region.startswith("@"):
            region = catalog.region_groups[region[1:]][0]
        prices.append(catalog.price(record, region, record.scopes[0]))
    return prices


PRICES = _all_prices()
TOKENS = st.integers(min_value=0, max_value=2_000_000)
USAGES = st.builds(Usage, TOKENS, TOKENS, TOKENS, TOKENS, TOKENS)


def _sonnet45(prefix: str = "us.") -> Price:
    price = price_for(f"{prefix}anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", AT).price
    assert price is not None
    return price


def test_converse_input_tokens_exclude_cache_tokens():
    # Converse reports inputTokens=3, cacheReadInputTokens=0, cacheWriteInputTokens=24479 (5m),
    # outputTokens=52 for one Sonnet 4.5 us. call. Each count is billed once, at its own rate:
    # 3 x 3.30 + 24,479 x 4.125 + 52 x 16.50 = 0.0000099 + 0.100975875 + 0.000858 = $0.101843775
    cost = cost_of(Usage(3, 52, 0, 24_479, 0), _sonnet45())
    assert cost.total == Decimal("0.101843775")
    assert cost.breakdown["input"] == Decimal("0.0000099")


def test_breakdown_has_every_component():
    # 1k of each at global Sonnet 4.5: 0.003 + 0.015 + 0.0003 + 0.00375 + 0.006 = $0.02805
    cost = cost_of(Usage(1_000, 1_000, 1_000, 1_000, 1_000), _sonnet45("global."))
    assert list(cost.breakdown) == list(COMPONENTS)
    assert cost.breakdown == {
        "input": Decimal("0.003"),
        "output": Decimal("0.015"),
        "cache_read": Decimal("0.0003"),
        "cache_write_5m": Decimal("0.00375"),
        "cache_write_1h": Decimal("0.006"),
    }
    assert cost.total == Decimal("0.02805")
    assert cost.price_ref.endswith("/global/standard/2025-09-29")
    assert cost.catalog_version == default_catalog().version
    assert not cost.long_context


def test_long_context_flag_is_reported():
    # 250k cache read alone crosses 200k: 250k x $0.60 (global long-context read) = $0.15
    cost = cost_of(Usage(cache_read_tokens=250_000), _sonnet45("global."))
    assert cost.long_context and cost.total == Decimal("0.15")


def test_full_precision_is_kept():
    # 1 token of Nova Micro input: 1 x $0.035 / 1M = $0.000000035, not rounded to 0
    price = price_for("amazon.nova-micro-v1:0", "us-east-1", AT).price
    assert cost_of(Usage(input_tokens=1), price).total == Decimal("0.000000035")


def test_any_object_with_the_five_counts_is_accepted():
    @dataclass
    class Counts:
        input_tokens: int = 10
        output_tokens: int = 0
        cache_read_tokens: int = 0
        cache_write_5m_tokens: int = 0
        cache_write_1h_tokens: int = 0

    # 10 x $3.30 / 1M = $0.000033
    assert cost_of(Counts(), _sonnet45()).total == Decimal("0.000033")


def test_negative_token_counts_are_rejected():
    with pytest.raises(ValueError, match="negative"):
        cost_of(Usage(input_tokens=-1), PRICES[0])


@settings(max_examples=300, deadline=None)
@given(price=st.sampled_from(PRICES), usage=USAGES)
def test_cost_is_the_sum_of_its_components(price, usage):
    cost = cost_of(usage, price)
    assert cost.total == sum(cost.breakdown.values(), Decimal(0))


@settings(max_examples=300, deadline=None)
@given(price=st.sampled_from(PRICES), usage=USAGES)
def test_cost_is_never_negative(price, usage):
    cost = cost_of(usage, price)
    assert cost.total >= 0
    assert all(part >= 0 for part in cost.breakdown.values())


@settings(max_examples=300, deadline=None)
@given(
    price=st.sampled_from(PRICES),
    usage=USAGES,
    component=st.sampled_from(COMPONENTS),
    extra=st.integers(min_value=1, max_value=500_000),
)
def test_cost_is_monotone_in_every_token_count(price, usage, component, extra):
    field = f"{component}_tokens"
    more = Usage(
        **{
            **{f"{c}_tokens": getattr(usage, f"{c}_tokens") for c in COMPONENTS},
            field: getattr(usage, field) + extra,
        }
    )
    assert cost_of(more, price).total >= cost_of(usage, price).total


@settings(max_examples=300, deadline=None)
@given(price=st.sampled_from(PRICES), usage=USAGES)
def test_cost_is_exact(price, usage):
    counts = [getattr(usage, f"{c}_tokens") for c in COMPONENTS]
    input_side = counts[0] + sum(counts[2:])
    lc = price.long_context
    rates = lc.rates if lc is not None and input_side > lc.threshold else price.rates
    expected = sum(
        (Fraction(n) * Fraction(r) / 1_000_000 for n, r in zip(counts, rates, strict=True)),
        Fraction(0),
    )
    assert Fraction(cost_of(usage, price).total) == expected


@settings(max_examples=200, deadline=None)
@given(price=st.sampled_from([p for p in PRICES if p.long_context is None]), usage=USAGES)
def test_without_a_tier_cost_is_additive_over_components(price, usage):
    parts = [
        cost_of(Usage(**{f"{c}_tokens": getattr(usage, f"{c}_tokens")}), price).total
        for c in COMPONENTS
    ]
    assert cost_of(usage, price).total == sum(parts, Decimal(0))
