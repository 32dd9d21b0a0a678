"""Unknown models: unpriced without a fallback; an estimate with the genai-prices fallback."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from spendgate.bedrock.usage import Usage
from spendgate.pricing import apply_overrides, cost_of, default_catalog, parse_overrides, price_for
from spendgate.pricing.fallback import GenaiPricesFallback, genai_prices_fallback

AT = datetime(2026, 11, 1, tzinfo=UTC)
UNKNOWN = "writer.palmyra-x5-v1:0"


class _Model:
    id = "writer.palmyra-x5-v1:0"

    def __init__(self, **prices):
        self._prices = prices

    def get_prices(self, at):
        fields = (
            "input_mtok",
            "output_mtok",
            "cache_read_mtok",
            "cache_write_mtok",
            "cache_write_1h_mtok",
        )
        return SimpleNamespace(**{name: self._prices.get(name) for name in fields})


def _fake(**prices):
    seen = []

    def find(model_ref):
        seen.append(model_ref)
        if "palmyra" not in model_ref:
            raise LookupError(model_ref)
        return _Model(**prices)

    return GenaiPricesFallback(find, "9.9.9"), seen


def test_unknown_model_without_the_fallback_is_unpriced():
    result = price_for(UNKNOWN, "us-east-1", AT)
    assert result.price is None
    assert (
        result.unpriced_reason
        == f"unknown model: {UNKNOWN} is not in price catalog {default_catalog().version}"
    )


def test_fallback_price_is_marked_estimate():
    fallback, seen = _fake(input_mtok=Decimal("0.6"), output_mtok=Decimal("6"))
    result = price_for(f"us.{UNKNOWN}", "us-east-1", AT, fallback=fallback)
    price = result.price
    assert price is not None and price.estimate and not price.verified
    assert price.ref == "genai-prices:writer.palmyra-x5-v1:0@us-east-1/geo/standard/9.9.9"
    assert price.assumed == ("cache_read", "cache_write_5m", "cache_write_1h")
    assert price.catalog_version == result.catalog_version == default_catalog().version
    assert seen == [f"us.{UNKNOWN}"]
    # 1,000 x $0.60 + 1 x $6 = 0.0006 + 0.000006 = $0.000606
    assert cost_of(Usage(1_000, 1), price).total == Decimal("0.000606")


def test_fallback_tier_becomes_long_context():
    tiered = SimpleNamespace(
        base=Decimal("1"), tiers=[SimpleNamespace(start=100_000, price=Decimal("5"))]
    )
    out = SimpleNamespace(
        base=Decimal("2"), tiers=[SimpleNamespace(start=100_000, price=Decimal("3"))]
    )
    fallback, _ = _fake(input_mtok=tiered, output_mtok=out)
    price = price_for(UNKNOWN, "us-east-1", AT, fallback=fallback).price
    # 150k in > 100k: 150k x $5 + 10k x $3 = 0.75 + 0.03 = $0.78
    assert cost_of(Usage(150_000, 10_000), price).total == Decimal("0.78")


def test_fallback_only_for_unknown_models_in_the_standard_tier():
    fallback, seen = _fake(input_mtok=Decimal("1"), output_mtok=Decimal("1"))
    assert price_for(UNKNOWN, "us-east-1", AT, "batch", fallback=fallback).price is None
    # a known model missing a Region stays unpriced: no US price for Canada
    assert price_for("amazon.nova-lite-v1:0", "ca-central-1", AT, fallback=fallback).price is None
    assert seen == []


def test_fallback_without_a_price_keeps_the_reason():
    fallback, _ = _fake(input_mtok=Decimal("1"), output_mtok=Decimal("1"))
    result = price_for("acme.other-v1:0", "us-east-1", AT, fallback=fallback)
    assert result.price is None and result.unpriced_reason.startswith("unknown model")


def test_discounts_apply_to_estimates():
    fallback, _ = _fake(input_mtok=Decimal("1"), output_mtok=Decimal("1"))
    catalog = apply_overrides(default_catalog(), parse_overrides("[discounts]\nall = '10'"))
    price = price_for(UNKNOWN, "us-east-1", AT, catalog=catalog, fallback=fallback).price
    # 1M x $1 x 0.9 = $0.90
    assert cost_of(Usage(1_000_000), price).total == Decimal("0.90")


def test_fallback_is_none_without_genai_prices(monkeypatch):
    monkeypatch.setitem(sys.modules, "genai_prices", None)
    assert genai_prices_fallback() is None


def test_real_genai_prices_through_a_private_snapshot():
    genai_prices = pytest.importorskip("genai_prices")
    from genai_prices import data_snapshot

    fallback = genai_prices_fallback()
    assert fallback is not None
    price = price_for(f"us.{UNKNOWN}", "us-east-1", AT, fallback=fallback).price
    if price is None:
        pytest.skip(f"genai-prices {genai_prices.__version__} has no {UNKNOWN}")
    assert price.estimate and price.input > 0 and price.source_url.endswith("genai-prices")
    assert data_snapshot._custom_snapshot is None  # never replaced the process-wide snapshot
