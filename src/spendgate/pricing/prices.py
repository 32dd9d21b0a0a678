"""The values pricing hands out: a resolved ``Price`` and the ``PriceResult`` of a lookup.

Prices are ``Decimal`` USD per 1M tokens, exactly as the catalog states them. ``Price`` also keeps
the per-token rates (price / 1,000,000, exact in ``Decimal``) so ``cost_of`` is five
multiplications and no division.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

COMPONENTS: tuple[str, ...] = (
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
)
TIERS: tuple[str, ...] = ("standard", "batch", "flex", "priority")
SCOPES: tuple[str, ...] = ("in_region", "geo", "global")
COMMITMENTS: tuple[str, ...] = ("none", "1m", "6m")

_PER_TOKEN = -6  # scaleb exponent: USD per 1M tokens -> USD per token
_HUNDRED = Decimal(100)


def per_token(rates: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
    """Per-1M rates as exact per-token rates."""
    return tuple(rate.scaleb(_PER_TOKEN) for rate in rates)


@dataclass(frozen=True, slots=True)
class LongContext:
    """Rates for a request whose input + cache tokens exceed ``threshold`` (a cliff)."""

    threshold: int
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    per_token: tuple[Decimal, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_token", per_token(self.rates))

    @property
    def rates(self) -> tuple[Decimal, ...]:
        """The five per-1M rates in ``COMPONENTS`` order."""
        return (self.input, self.output, self.cache_read, self.cache_write_5m, self.cache_write_1h)

    @classmethod
    def of(cls, threshold: int, rates: Sequence[Decimal]) -> LongContext:
        return cls(threshold, rates[0], rates[1], rates[2], rates[3], rates[4])


@dataclass(frozen=True, slots=True)
class Price:
    """One resolved price: what a call to ``key`` from ``region`` over ``scope`` costs per 1M.

    ``ref`` names the catalog record (``key@region/scope/tier/effective_from``) and
    ``catalog_version`` the catalog it came from; ``assumed`` lists the components the record gives
    no price for, which are charged at the input rate; ``estimate`` is true for prices that come
    from the genai-prices fallback.
    """

    key: str
    region: str
    scope: str
    tier: str
    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    long_context: LongContext | None
    ref: str
    source_url: str
    effective_from: datetime
    effective_to: datetime | None = None
    checked: date | None = None
    verified: bool = True
    estimate: bool = False
    discount_pct: Decimal | None = None
    assumed: tuple[str, ...] = ()
    notes: str = ""
    catalog_version: str = ""
    per_token: tuple[Decimal, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_token", per_token(self.rates))

    @property
    def rates(self) -> tuple[Decimal, ...]:
        """The five per-1M rates in ``COMPONENTS`` order."""
        return (self.input, self.output, self.cache_read, self.cache_write_5m, self.cache_write_1h)

    @classmethod
    def of(
        cls, key: str, region: str, scope: str, tier: str, rates: Sequence[Decimal], **rest: Any
    ) -> Price:
        """A price from its five per-1M rates in ``COMPONENTS`` order plus keyword fields."""
        return cls(
            key, region, scope, tier, rates[0], rates[1], rates[2], rates[3], rates[4], **rest
        )


@dataclass(frozen=True, slots=True)
class PriceResult:
    """The answer of ``price_for``: a price, or the reason there is none. Never a silent zero."""

    price: Price | None
    unpriced_reason: str | None
    catalog_version: str

    @property
    def unpriced(self) -> bool:
        return self.price is None


def _scaled(rates: tuple[Decimal, ...], factor: Decimal) -> tuple[Decimal, ...]:
    return tuple(rate * factor for rate in rates)


def discounted(price: Price, pct: Decimal) -> Price:
    """``price`` with a private discount of ``pct`` percent on every rate, long context included."""
    factor = (_HUNDRED - pct) / _HUNDRED
    long_context = price.long_context
    if long_context is not None:
        long_context = LongContext.of(long_context.threshold, _scaled(long_context.rates, factor))
    rates = _scaled(price.rates, factor)
    return replace(
        price,
        input=rates[0],
        output=rates[1],
        cache_read=rates[2],
        cache_write_5m=rates[3],
        cache_write_1h=rates[4],
        long_context=long_context,
        discount_pct=pct,
    )


def decimal_text(amount: Decimal) -> str:
    """Plain notation, full precision, no trailing zeros: ``0.01419``, ``100``, never ``1E+2``."""
    return format(amount.normalize(), "f")
