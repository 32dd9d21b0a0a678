"""``cost_of``: the dollars of one call, exact in ``Decimal``, split by token component.

Token convention (Bedrock's, the same as ``spendgate.bedrock.usage``):

- ``input_tokens`` is *uncached* input. Converse ``inputTokens`` (and Anthropic ``input_tokens``,
  the ``X-Amzn-Bedrock-Input-Token-Count`` header, invocation-log ``inputTokenCount``) exclude
  cache reads and cache writes, so the five counts are disjoint and each is billed once:

      cost = input x input_rate + output x output_rate + cache_read x cache_read_rate
             + cache_write_5m x write_5m_rate + cache_write_1h x write_1h_rate

- A long-context tier is a cliff. Its threshold counts every input-side token,
  ``input + cache_read + cache_write_5m + cache_write_1h`` (not output); above it (strictly
  greater) the *whole* request, output included, is billed at the tier's rates.
- Rates are USD per 1M tokens; ``cost_usd`` keeps full precision (no rounding: a stored cost sums
  exactly). Round only for display.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple, Protocol

from spendgate.pricing.prices import COMPONENTS, Price

_ZERO = Decimal(0)


class TokenUsage(Protocol):
    """Any object with the five token counts (``spendgate.bedrock.usage.Usage`` is one)."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cache_read_tokens(self) -> int: ...
    @property
    def cache_write_5m_tokens(self) -> int: ...
    @property
    def cache_write_1h_tokens(self) -> int: ...


class Cost(NamedTuple):
    """``total`` USD and its ``breakdown`` by component (keys are ``COMPONENTS``).

    ``price_ref`` and ``catalog_version`` name the record and catalog that priced it: store them
    with the cost.

    A NamedTuple rather than a frozen dataclass: one is built per call on the gateway's hot path,
    and a frozen dataclass costs three times as much to construct.
    """

    total: Decimal
    breakdown: dict[str, Decimal]
    long_context: bool
    price_ref: str
    catalog_version: str


def cost_of(usage: TokenUsage, price: Price) -> Cost:
    """What ``usage`` costs at ``price``; negative token counts raise ``ValueError``."""
    i, o = usage.input_tokens, usage.output_tokens
    r, w5, w1 = usage.cache_read_tokens, usage.cache_write_5m_tokens, usage.cache_write_1h_tokens
    if i < 0 or o < 0 or r < 0 or w5 < 0 or w1 < 0:
        counts = dict(zip(COMPONENTS, (i, o, r, w5, w1), strict=True))
        raise ValueError(f"token counts must not be negative: {counts}")
    long_context = price.long_context
    above = long_context is not None and i + r + w5 + w1 > long_context.threshold
    rates = long_context.per_token if above and long_context is not None else price.per_token
    # A zero count costs an exact zero; skipping the multiplication keeps the hot path short.
    parts = (
        i * rates[0] if i else _ZERO,
        o * rates[1] if o else _ZERO,
        r * rates[2] if r else _ZERO,
        w5 * rates[3] if w5 else _ZERO,
        w1 * rates[4] if w1 else _ZERO,
    )
    breakdown = {
        "input": parts[0],
        "output": parts[1],
        "cache_read": parts[2],
        "cache_write_5m": parts[3],
        "cache_write_1h": parts[4],
    }
    total = parts[0] + parts[1] + parts[2] + parts[3] + parts[4]
    return Cost(total, breakdown, above, price.ref, price.catalog_version)
