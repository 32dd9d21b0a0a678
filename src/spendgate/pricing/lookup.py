"""``price_for``: which price applies to one call, by the rules in docs/pricing.md.

1. The id is parsed by ``spendgate.bedrock.modelids`` (bare id, ``{geo}.`` profile, foundation or
   inference-profile ARN). Application-inference-profile ARNs go through the caller's resolver.
2. The route's scope comes from the id: ``global.`` -> global, another geo prefix -> geo, a bare id
   or foundation ARN -> in_region. You pay the *source* Region's price (the Region you call).
3. The slot ``(catalog key, source Region, scope, tier)`` picks the record; the request time picks
   among its dated versions. From Claude Sonnet 4.5 on, the catalog's global record is the base
   rate and the in-Region/geo record is 1.10x it.
4. Anything that cannot be priced returns ``PriceResult(price=None, unpriced_reason=...)``. An
   unknown model may be priced by an optional fallback, marked ``estimate``.

Everything except the request time is resolved once per (model id, Region, tier) and cached on the
catalog, so a warm call is a dict hit and a short date scan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple

from spendgate.bedrock.modelids import ModelKind, ModelRef, parse_model_id
from spendgate.errors import InvalidModelId
from spendgate.pricing.catalog import Catalog, default_catalog
from spendgate.pricing.prices import SCOPES, TIERS, Price, PriceResult, discounted

Resolver = Callable[[str], str | None]
Fallback = Callable[[ModelRef, str, datetime], Price | None]

_CACHE_LIMIT = 8192
_NOT_PER_TOKEN = {
    ModelKind.PROVISIONED: "a provisioned-throughput model is billed per model-unit hour, "
    "not per token (see pt_cost)",
    ModelKind.CUSTOM: "a custom model is billed through provisioned throughput or on-demand "
    "custom-model deployment, not at catalog token prices",
    ModelKind.IMPORTED: "an imported model is billed by Custom Model Import copy-minutes, "
    "not per token",
    ModelKind.PROMPT: "a prompt-management ARN: price the model the prompt names",
    ModelKind.PROMPT_ROUTER: "a prompt router: price the model it routed to "
    "(trace.promptRouter.invokedModelId)",
}


class _Dated(NamedTuple):
    """A known model: its price versions for one (Region, scope, tier) as (from, to, result)."""

    key: str
    versions: tuple[tuple[datetime, datetime | None, PriceResult], ...]


class _Fixed(NamedTuple):
    """An answer that does not depend on the request time (an unpriced reason)."""

    result: PriceResult
    unknown: ModelRef | None = None  # set when the model is not in the catalog (fallback may try)


class _Deferred:
    """An application inference profile: resolved on each call (the caller's map may change)."""


_DEFERRED = _Deferred()
_Entry = _Dated | _Fixed | _Deferred


def price_for(
    model_id: str,
    region: str,
    at: datetime,
    tier: str = "standard",
    *,
    resolver: Resolver | None = None,
    catalog: Catalog | None = None,
    fallback: Fallback | None = None,
) -> PriceResult:
    """The price of a call to ``model_id`` made from ``region`` at ``at`` (timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError("price_for needs a timezone-aware 'at' (UTC)")
    cat = catalog if catalog is not None else default_catalog()
    entry = cat.lookup_cache.get((model_id, region, tier))
    if entry is None:
        entry = _resolve(cat, model_id, region, tier)
        if len(cat.lookup_cache) >= _CACHE_LIMIT:
            cat.lookup_cache.clear()
        cat.lookup_cache[(model_id, region, tier)] = entry
    if isinstance(entry, _Dated):
        return _at(cat, entry, at)
    if isinstance(entry, _Fixed):
        if entry.unknown is not None and fallback is not None and tier == "standard":
            return _fallback(cat, entry, fallback, region, at)
        return entry.result
    call = (model_id, region, at, tier)
    return _via_resolver(cat, call, resolver=resolver, fallback=fallback)


def _at(cat: Catalog, entry: _Dated, at: datetime) -> PriceResult:
    for start, end, result in entry.versions:
        if start <= at and (end is None or at < end):
            return result
    first = entry.versions[0][0]
    return _unpriced(
        cat,
        f"{entry.key} has no price in effect at {at.isoformat()} "
        f"(its prices start {first:%Y-%m-%d})",
    )


def _unpriced(cat: Catalog, reason: str) -> PriceResult:
    return PriceResult(None, reason, cat.version)


def _resolve(cat: Catalog, model_id: str, region: str, tier: str) -> _Entry:
    try:
        ref = parse_model_id(model_id)
    except InvalidModelId as err:
        return _Fixed(_unpriced(cat, f"invalid model id: {err.message}"))
    if ref.kind is ModelKind.APPLICATION_INFERENCE_PROFILE:
        return _DEFERRED
    return _resolve_ref(cat, ref, region, tier)


def _resolve_ref(cat: Catalog, ref: ModelRef, region: str, tier: str) -> _Entry:
    if ref.kind in _NOT_PER_TOKEN:
        return _Fixed(_unpriced(cat, _NOT_PER_TOKEN[ref.kind]))
    if ref.base_model is None:
        return _Fixed(
            _unpriced(
                cat, f"{ref.model_id!r} is not a Bedrock foundation model or inference profile id"
            )
        )
    if tier not in TIERS:
        return _Fixed(_unpriced(cat, _tier_problem(tier)))
    key = cat.key_for(ref.base_model)
    if key is None:
        reason = f"unknown model: {ref.base_model} is not in price catalog {cat.version}"
        return _Fixed(_unpriced(cat, reason), unknown=ref)
    if tier not in cat.tiers(key):
        priced = ", ".join(sorted(cat.tiers(key)))
        return _Fixed(
            _unpriced(cat, f"{key} has no {tier} price on Bedrock (priced tiers: {priced})")
        )
    return _dated(cat, key, region, ref.scope, tier)


def _dated(cat: Catalog, key: str, region: str, scope: str, tier: str) -> _Entry:
    records = cat.records_for(key, region, scope, tier)
    if not records:
        return _Fixed(_unpriced(cat, _where_problem(cat, key, region, scope, tier)))
    versions = tuple(
        (
            r.effective_from,
            r.effective_to,
            PriceResult(cat.price(r, region, scope), None, cat.version),
        )
        for r in records
    )
    return _Dated(key, versions)


def _tier_problem(tier: str) -> str:
    if tier == "reserved":
        return "the reserved tier is billed per reserved tokens-per-minute per month, not per token"
    return f"unknown service tier {tier!r} (expected one of {', '.join(TIERS)})"


def _where_problem(cat: Catalog, key: str, region: str, scope: str, tier: str) -> str:
    other_scopes = [s for s in SCOPES if s != scope and cat.records_for(key, region, s, tier)]
    if other_scopes:
        return (
            f"{key} has no {tier} price for a {scope} route from {region} "
            f"(priced routes there: {', '.join(other_scopes)})"
        )
    return (
        f"{key} has no {tier} price in {region}: the catalog does not price it there, and "
        "spendgate never falls back to another Region's price"
    )


def _via_resolver(
    cat: Catalog,
    call: tuple[str, str, datetime, str],
    *,
    resolver: Resolver | None,
    fallback: Fallback | None,
) -> PriceResult:
    model_id, region, at, tier = call
    if resolver is None:
        return _unpriced(
            cat,
            f"application inference profile {model_id} needs a resolver: "
            "its model cannot be known offline",
        )
    target = resolver(model_id)
    if target is None:
        return _unpriced(cat, f"the resolver does not know application profile {model_id}")
    try:
        kind = parse_model_id(target).kind
    except InvalidModelId as err:
        return _unpriced(cat, f"the resolver mapped {model_id} to an invalid id: {err.message}")
    if kind is ModelKind.APPLICATION_INFERENCE_PROFILE:
        return _unpriced(cat, f"the resolver mapped {model_id} to another application profile")
    return price_for(target, region, at, tier, catalog=cat, fallback=fallback)


def _fallback(
    cat: Catalog, entry: _Fixed, fallback: Fallback, region: str, at: datetime
) -> PriceResult:
    assert entry.unknown is not None
    price = fallback(entry.unknown, region, at)
    if price is None:
        return entry.result
    price = replace(price, catalog_version=cat.version)
    pct = cat.discounts.for_model(price.key, entry.unknown.provider)
    return PriceResult(discounted(price, pct) if pct else price, None, cat.version)
