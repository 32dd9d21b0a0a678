"""Helpers for the pricing tests (a plain module: tests/conftest.py owns the name conftest)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from spendgate.bedrock.usage import Usage
from spendgate.pricing import Catalog, PriceResult, cost_of, price_for

AT = datetime(2026, 11, 1, tzinfo=UTC)

Quote = Callable[..., Decimal]


def quote_with(catalog: Catalog | None = None) -> Quote:
    """``quote(model, region, tier=..., at=..., i=, o=, cr=, w5=, w1=, **price_for_kw)`` -> USD."""

    def quote(
        model: str,
        region: str = "us-east-1",
        *,
        tier: str = "standard",
        at: datetime = AT,
        i: int = 0,
        o: int = 0,
        cr: int = 0,
        w5: int = 0,
        w1: int = 0,
        **kwargs: Any,
    ) -> Decimal:
        result = price_for(model, region, at, tier, catalog=catalog, **kwargs)
        assert result.price is not None, result.unpriced_reason
        return cost_of(Usage(i, o, cr, w5, w1), result.price).total

    return quote


quote = quote_with()


def unpriced(
    model: str, region: str = "us-east-1", tier: str = "standard", **kw: Any
) -> PriceResult:
    """Look a model up and assert that it is unpriced, with a reason and a catalog version."""
    at = kw.pop("at", AT)
    result = price_for(model, region, at, tier, **kw)
    assert result.price is None, f"expected unpriced, got {result.price}"
    assert result.unpriced_reason
    assert result.catalog_version
    return result
