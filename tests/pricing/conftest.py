from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from spendgate.bedrock.usage import Usage
from spendgate.pricing import Catalog, PriceResult, cost_of, price_for

AT = datetime(2026, 11, 1, tzinfo=UTC)

Quote = Callable[..., Decimal]


def quote_with(catalog: Catalog | None = None) -> Quote:
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
        **kwargs: object,
    ) -> Decimal:
        result = price_for(model, region, at, tier, catalog=catalog, **kwargs)  # type: ignore[arg-type]
        assert result.price is not None, result.unpriced_reason
        return cost_of(Usage(i, o, cr, w5, w1), result.price).total

    return quote


@pytest.fixture
def quote() -> Quote:
    """``quote(model, region, tier=..., at=..., i=, o=, cr=, w5=, w1=)`` -> total USD."""
    return quote_with()


@pytest.fixture(scope="session")
def quote_for() -> Callable[[Catalog | None], Quote]:
    """A ``quote`` function over another catalog (e.g. one with overrides applied)."""
    return quote_with


@pytest.fixture
def unpriced() -> Callable[..., PriceResult]:
    def lookup(
        model: str, region: str = "us-east-1", tier: str = "standard", **kw: object
    ) -> PriceResult:
        at = kw.pop("at", AT)
        result = price_for(model, region, at, tier, **kw)  # type: ignore[arg-type]
        assert result.price is None, f"expected unpriced, got {result.price}"
        assert result.unpriced_reason
        assert result.catalog_version
        return result

    return lookup
