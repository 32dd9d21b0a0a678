"""Bedrock prices as data, and exact cost arithmetic in ``Decimal`` (pure core: no I/O, no clock).

    price_for(model_id, region, at, tier)  -> PriceResult   which price applies (or why none does)
    cost_of(usage, price)                  -> Cost          dollars, split by token component
    pt_cost(model, units, hours, commitment, overrides) -> Decimal   provisioned throughput
    parse_overrides(text) / apply_overrides(catalog, overrides)      private discounts, PT, models

The packaged catalog loads lazily on the first lookup; importing this package reads no file.
Rules, token convention and file formats: docs/pricing.md.
"""

from spendgate.pricing.catalog import Catalog, Discounts, default_catalog, load_catalog
from spendgate.pricing.cost import Cost, TokenUsage, cost_of
from spendgate.pricing.lookup import Fallback, Resolver, price_for
from spendgate.pricing.overrides import Overrides, apply_overrides, parse_overrides, pt_cost
from spendgate.pricing.prices import (
    COMPONENTS,
    SCOPES,
    TIERS,
    LongContext,
    Price,
    PriceResult,
    decimal_text,
)

__all__ = [
    "COMPONENTS",
    "SCOPES",
    "TIERS",
    "Catalog",
    "Cost",
    "Discounts",
    "Fallback",
    "LongContext",
    "Overrides",
    "Price",
    "PriceResult",
    "Resolver",
    "TokenUsage",
    "apply_overrides",
    "cost_of",
    "decimal_text",
    "default_catalog",
    "load_catalog",
    "parse_overrides",
    "price_for",
    "pt_cost",
]
