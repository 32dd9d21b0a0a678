"""``spendgate quote``: price one call, tokens in and dollars out, with breakdown and provenance."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from spendgate.bedrock.modelids import is_valid_region, parse_model_id
from spendgate.bedrock.usage import Usage
from spendgate.errors import ConfigError, InvalidModelId
from spendgate.pricing import (
    COMPONENTS,
    TIERS,
    Catalog,
    Cost,
    Price,
    PriceResult,
    apply_overrides,
    cost_of,
    decimal_text,
    default_catalog,
    parse_overrides,
    price_for,
)

DEFAULT_REGION = "us-east-1"
_LABELS = {
    "input": "input",
    "output": "output",
    "cache_read": "cache read",
    "cache_write_5m": "cache write 5m",
    "cache_write_1h": "cache write 1h",
}
_TOKENS = click.IntRange(min=0)
_CENT = Decimal("0.01")


def _rate(amount: Decimal) -> str:
    """A per-1M rate for display: at least cents (``3.30``), more digits only when it has them."""
    cents = amount.quantize(_CENT)
    return str(cents) if cents == amount else decimal_text(amount)


def _region(model: str, region: str | None) -> str:
    if region is None:
        return parse_model_id(model).region or DEFAULT_REGION
    if not is_valid_region(region):
        raise ConfigError(f"--region: {region!r} is not an AWS Region code such as us-east-1")
    return region


def _when(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise ConfigError(f"--at: {at!r} is not an ISO 8601 date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _catalog(overrides: Path | None) -> Catalog:
    if overrides is None:
        return default_catalog()
    try:
        raw = overrides.read_bytes()
    except OSError as err:
        raise ConfigError(f"--overrides: cannot read {overrides} ({err.strerror})") from None
    return apply_overrides(default_catalog(), parse_overrides(raw, source=str(overrides)))


def _document(
    call: tuple[str, str, str, datetime], usage: Usage, result: PriceResult
) -> dict[str, Any]:
    model, region, tier, at = call
    price = result.price
    cost = cost_of(usage, price) if price is not None else None
    doc: dict[str, Any] = {
        "model": model,
        "region": region,
        "tier": tier,
        "at": at.isoformat(),
        "tokens": {name: getattr(usage, f"{name}_tokens") for name in COMPONENTS},
        "unpriced": price is None,
        "reason": result.unpriced_reason,
        "cost_usd": decimal_text(cost.total) if cost else None,
        "breakdown": {k: decimal_text(v) for k, v in cost.breakdown.items()} if cost else {},
        "catalog_version": result.catalog_version,
        "price_ref": None,
        "price_source": None,
    }
    if price is not None and cost is not None:
        doc |= _provenance(price, cost)
    return doc


def _provenance(price: Price, cost: Cost) -> dict[str, Any]:
    rates = price.long_context.rates if cost.long_context and price.long_context else price.rates
    return {
        "price_ref": price.ref,
        "price_source": price.source_url,
        "catalog_key": price.key,
        "scope": price.scope,
        "long_context": cost.long_context,
        "rates_per_1m": {name: _rate(rate) for name, rate in zip(COMPONENTS, rates, strict=True)},
        "charged_at_input_rate": list(price.assumed),
        "discount_pct": None if price.discount_pct is None else decimal_text(price.discount_pct),
        "estimate": price.estimate,
        "verified": price.verified,
        "notes": price.notes,
    }


def _text(doc: dict[str, Any]) -> str:
    head = f"{doc['model']} from {doc['region']}, {doc['tier']} tier, at {doc['at']}"
    if doc["unpriced"]:
        return f"{head}\nunpriced: {doc['reason']}\ncatalog  {doc['catalog_version']}"
    lines = [f"{head} ({doc['scope']} route)"]
    for name in COMPONENTS:
        count, rate = doc["tokens"][name], doc["rates_per_1m"][name]
        amount = doc["breakdown"][name]
        lines.append(
            f"  {_LABELS[name]:<15}{count:>12,} tokens x {'$' + rate + '/M':<12} = ${amount}"
        )
    flags = [
        flag
        for flag, on in (("long-context rate", doc["long_context"]), ("ESTIMATE", doc["estimate"]))
        if on
    ]
    note = f"  ({', '.join(flags)})" if flags else ""
    lines.append(f"  {'total':<15}{'':>12}{'':<23}= ${doc['cost_usd']}{note}")
    lines.append(f"price    {doc['price_ref']}" + ("" if doc["verified"] else " (unverified)"))
    lines.append(f"source   {doc['price_source']}")
    lines.append(f"catalog  {doc['catalog_version']}")
    return "\n".join(lines)


@click.command()
@click.option("--model", "model", required=True, help="Model id, profile id or ARN.")
@click.option("--region", help=f"Source Region called (default: the ARN's, else {DEFAULT_REGION}).")
@click.option("--input", "input_tokens", type=_TOKENS, required=True, help="Uncached input tokens.")
@click.option("--output", "output_tokens", type=_TOKENS, required=True, help="Output tokens.")
@click.option("--cache-read", type=_TOKENS, default=0, show_default=True)
@click.option("--cache-write-5m", type=_TOKENS, default=0, show_default=True)
@click.option("--cache-write-1h", type=_TOKENS, default=0, show_default=True)
@click.option("--tier", type=click.Choice(TIERS), default="standard", show_default=True)
@click.option("--at", help="Request time, ISO 8601 (default: now; no offset means UTC).")
@click.option(
    "--overrides", type=click.Path(dir_okay=False, path_type=Path), help="Overrides TOML file."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def quote(
    *,
    model: str,
    region: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_read: int,
    cache_write_5m: int,
    cache_write_1h: int,
    tier: str,
    at: str | None,
    overrides: Path | None,
    as_json: bool,
) -> None:
    """Price a call: tokens in, dollars out, with the price record it used.

    Token convention: --input excludes cache reads and writes, as Converse's inputTokens does.
    """
    try:
        source = _region(model, region)
    except InvalidModelId as err:
        raise ConfigError(f"--model: {err.message}") from None
    usage = Usage(input_tokens, output_tokens, cache_read, cache_write_5m, cache_write_1h)
    when = _when(at)
    catalog = _catalog(overrides)
    result = price_for(model, source, when, tier, catalog=catalog)
    doc = _document((model, source, tier, when), usage, result)
    click.echo(json.dumps(doc, indent=2) if as_json else _text(doc))
