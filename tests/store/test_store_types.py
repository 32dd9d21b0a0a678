"""Money and time conversions the store relies on (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spendgate.store.types import as_utc, from_pusd, to_pusd

BIGINT_MAX = 2**63 - 1


@given(st.integers(min_value=-BIGINT_MAX, max_value=BIGINT_MAX))
def test_picodollars_round_trip(pusd: int) -> None:
    usd = from_pusd(pusd)
    assert usd.as_tuple().exponent == -12
    assert to_pusd(usd) == pusd


@given(st.decimals(min_value=-9_000_000, max_value=9_000_000, allow_nan=False, places=12))
def test_twelve_places_are_kept_exactly(usd: Decimal) -> None:
    assert from_pusd(to_pusd(usd)) == usd


@given(st.decimals(min_value=-9_000_000, max_value=9_000_000, allow_nan=False))
def test_rounding_error_is_at_most_half_a_picodollar(usd: Decimal) -> None:
    assert abs(from_pusd(to_pusd(usd)) - usd) <= Decimal("0.5E-12")


@pytest.mark.parametrize(
    "usd", [Decimal("NaN"), Decimal("Infinity"), Decimal("9223372.036854775808"), Decimal("1E+30")]
)
def test_unstorable_costs_are_refused(usd: Decimal) -> None:
    with pytest.raises(ValueError, match="cost"):
        to_pusd(usd)


def test_as_utc() -> None:
    local = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-7)))
    assert as_utc(local) == local and as_utc(local).tzinfo == UTC
    with pytest.raises(ValueError, match="no timezone"):
        as_utc(datetime(2026, 3, 29))
