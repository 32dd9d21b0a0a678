"""A call's worst case before it runs, and its actual use after (pure).

Worst case = the input estimated from the body (``spendgate.bedrock.prompts``' documented
estimator) plus the most output the call may produce: the request's own maximum (Converse
``inferenceConfig.maxTokens``, Anthropic ``max_tokens``, Llama ``max_gen_len``, Titan
``maxTokenCount``, ...) or else the model's ``max_output_tokens`` from the catalog, or else
``DEFAULT_MAX_OUTPUT``. Priced with the model's price (a request with cache points pays its input at
the dearest cache-write rate, the most a prompt can cost); a model without a price is charged the
conservative rates ``Rates`` holds, never $0 — both when reserving and when settling.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from spendgate.budgets.model import Metric
from spendgate.pricing import Price, cost_of

DEFAULT_MAX_OUTPUT = 64_000
MILLION = Decimal(1_000_000)
_MAX_KEYS = (
    *("maxTokens", "max_tokens", "max_new_tokens", "max_gen_len", "maxTokenCount"),
    "max_completion_tokens",
)
_CONFIG_KEYS = ("inferenceConfig", "textGenerationConfig", "parameters")


class Rates(NamedTuple):
    """USD per 1M tokens charged for a model without a price."""

    input: Decimal
    output: Decimal


class Tokens(NamedTuple):
    """The five token counts of spendgate.pricing.cost.TokenUsage."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0


class Use(NamedTuple):
    """Amounts of one call in every metric (a worst case, or what it really used). A NamedTuple:
    two are built per call on the gateway's hot path."""

    input_tokens: int  # every input-side token, cache reads and writes included
    output_tokens: int
    cost: Decimal
    priced: bool

    def of(self, metric: Metric) -> Decimal | int:
        if metric is Metric.COST_USD:
            return self.cost
        if metric is Metric.INPUT_TOKENS:
            return self.input_tokens
        if metric is Metric.OUTPUT_TOKENS:
            return self.output_tokens
        if metric is Metric.TOTAL_TOKENS:
            return self.input_tokens + self.output_tokens
        return 1


def requested_max_output(doc: Mapping[str, Any] | None) -> int | None:
    """The output cap the request states, if any (top level or its config object)."""
    if not doc:
        return None
    config = doc.get("inferenceConfig")
    common = config.get("maxTokens") if isinstance(config, Mapping) else doc.get("max_tokens")
    if isinstance(common, int) and not isinstance(common, bool) and common > 0:
        return common  # Converse, Anthropic: the usual places first
    places = [doc, *(doc.get(k) for k in _CONFIG_KEYS)]
    for place in places:
        if not isinstance(place, Mapping):
            continue
        for key in _MAX_KEYS:
            value = place.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def worst_case(
    input_tokens: int,
    max_output: int,
    price: Price | None,
    rates: Rates,
    *,
    cache_points: bool = False,
) -> Use:
    if price is None:
        return Use(
            input_tokens, max_output, conservative_cost(input_tokens, max_output, rates), False
        )
    cost = cost_of(Tokens(input_tokens, max_output), price).total
    if cache_points:
        dearest = max(price.cache_write_5m, price.cache_write_1h, price.input)
        cost += input_tokens * (dearest - price.input) / MILLION
    return Use(input_tokens, max_output, cost, True)


def actual_use(tokens: Tokens, cost: Decimal | None, rates: Rates) -> Use:
    """What a finished call used. ``cost`` None (unpriced): the conservative rates apply."""
    inputs = (
        tokens.input_tokens
        + tokens.cache_read_tokens
        + tokens.cache_write_5m_tokens
        + tokens.cache_write_1h_tokens
    )
    if cost is None:
        cost = conservative_cost(inputs, tokens.output_tokens, rates)
        return Use(inputs, tokens.output_tokens, cost, False)
    return Use(inputs, tokens.output_tokens, cost, True)


def conservative_cost(input_tokens: int, output_tokens: int, rates: Rates) -> Decimal:
    """What tokens of a model without a price count for, at the conservative ``rates``."""
    return (input_tokens * rates.input + output_tokens * rates.output) / MILLION
