"""The price catalog: records indexed for constant-time lookup by model, Region, scope and tier.

A lookup walks six layers and takes the first that has the slot ``(key, region, scope, tier)``:
override records before catalog records, and within each an explicit Region code before a
``@group`` before ``*``. ``*`` matches only commercial Regions, so GovCloud, China and ISO Regions
are priced only where a record names them: spendgate never bills one Region at another's rate.

The packaged catalog (``data/catalog.json``) is read on the first call of ``default_catalog()``,
never at import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from itertools import pairwise
from types import MappingProxyType
from typing import Any, NamedTuple

from spendgate.bedrock.modelids import is_valid_region
from spendgate.errors import DataError
from spendgate.pricing.prices import COMPONENTS, LongContext, Price, discounted
from spendgate.pricing.records import (
    WILDCARD,
    ModelInfo,
    Rates,
    Record,
    base_model,
    id_forms,
    mapping,
    parse_groups,
    parse_model,
    parse_record,
    text,
)

_LAYERS = 6  # (overrides, catalog) x (Region code, @group, *)

Slot = tuple[str, str, str, str]  # key, region (or "*"), scope, tier


class Discounts(NamedTuple):
    """Private-pricing discounts in percent; the most specific applies (model > provider > all)."""

    all: Decimal | None = None
    providers: Mapping[str, Decimal] = MappingProxyType({})
    models: Mapping[str, Decimal] = MappingProxyType({})

    def for_model(self, key: str, provider: str | None) -> Decimal | None:
        if key in self.models:
            return self.models[key]
        if provider is not None and provider in self.providers:
            return self.providers[provider]
        return self.all


def is_commercial(region: str) -> bool:
    """True for a Region a ``*`` record covers: not GovCloud, China or ISO."""
    return (
        is_valid_region(region)
        and not region.startswith(("us-gov-", "cn-"))
        and "-iso" not in region
    )


class Catalog:
    """Indexed, immutable price data plus a lookup cache that ``price_for`` fills."""

    def __init__(
        self,
        version: str,
        models: Mapping[str, ModelInfo],
        records: Iterable[Record],
        region_groups: Mapping[str, tuple[str, ...]],
        discounts: Discounts | None = None,
    ) -> None:
        self.version = version
        self.models: Mapping[str, ModelInfo] = dict(models)
        self.records: tuple[Record, ...] = tuple(records)
        self.region_groups: Mapping[str, tuple[str, ...]] = dict(region_groups)
        self.aliases = _aliases(self.models)
        self.discounts = self._keyed(discounts or Discounts())
        self._layers = _index(self.records, self.region_groups, self.models)
        self._tiers = _tiers(self.records)
        # Filled by spendgate.pricing.lookup: (model_id, region, tier) -> resolved entry.
        self.lookup_cache: dict[tuple[str, str, str], object] = {}

    def __repr__(self) -> str:
        sizes = f"models={len(self.models)}, records={len(self.records)}"
        return f"Catalog(version={self.version!r}, {sizes})"

    def key_for(self, model_id: str) -> str | None:
        """The catalog key for a foundation id (any version/date suffix form), or None."""
        for form in id_forms(model_id):
            key = self.aliases.get(form)
            if key is not None:
                return key
        return None

    def _keyed(self, discounts: Discounts) -> Discounts:
        """``discounts`` with its model entries (any id form) keyed by catalog key."""
        models = {}
        for model, pct in discounts.models.items():
            key = self.key_for(base_model(model))
            if key is None:
                raise DataError(f"discounts.models: {model!r} is in neither catalog nor overrides")
            models[key] = pct
        return discounts._replace(models=models)

    def tiers(self, key: str) -> frozenset[str]:
        return self._tiers.get(key, frozenset())

    def records_for(self, key: str, region: str, scope: str, tier: str) -> tuple[Record, ...]:
        """The records of the most specific layer that prices this slot (date-ordered)."""
        commercial = is_commercial(region)
        for number, layer in enumerate(self._layers):
            wildcard = number % 3 == 2
            if wildcard and not commercial:
                continue
            found = layer.get((key, WILDCARD if wildcard else region, scope, tier))
            if found:
                return found
        return ()

    def price(self, record: Record, region: str, scope: str) -> Price:
        """``record`` resolved for one call: gaps filled with the input rate, discount applied."""
        rates, assumed = _fill(record.rates)
        long_context = None
        if record.long_context is not None:
            spec = record.long_context
            long_context = LongContext.of(spec.threshold, _fill(spec.rates)[0])
        price = Price.of(
            record.key,
            region,
            scope,
            record.tier,
            rates,
            long_context=long_context,
            ref=f"{record.key}@{region}/{scope}/{record.tier}/{record.effective_from:%Y-%m-%d}",
            source_url=record.source_url,
            effective_from=record.effective_from,
            effective_to=record.effective_to,
            checked=record.checked,
            verified=record.verified,
            assumed=assumed,
            notes=record.notes,
            catalog_version=self.version,
        )
        info = self.models.get(record.key)
        pct = self.discounts.for_model(record.key, info.provider if info else None)
        return discounted(price, pct) if pct else price


def _fill(rates: Rates) -> tuple[tuple[Decimal, ...], tuple[str, ...]]:
    """Rates with each unlisted component charged at the input rate, and the names filled."""
    base = rates[0]
    assert base is not None  # input is required by the parser
    assumed = tuple(name for name, rate in zip(COMPONENTS, rates, strict=True) if rate is None)
    return tuple(base if rate is None else rate for rate in rates), assumed


def _aliases(models: Mapping[str, ModelInfo]) -> dict[str, str]:
    """Every id form -> key. Keys and listed ids are unique; ambiguous short forms are dropped."""
    exact: dict[str, str] = {}
    for key, info in models.items():
        for name in (key, *info.ids):
            if exact.get(name, key) != key:
                raise DataError(f"catalog: id {name!r} is listed for both {exact[name]} and {key}")
            exact[name] = key
    derived: dict[str, str | None] = {}
    for key, info in models.items():
        for model_id in info.ids:
            for form in id_forms(model_id):
                if form not in exact:
                    derived[form] = key if derived.get(form, key) == key else None
    return exact | {form: key for form, key in derived.items() if key is not None}


def _index(
    records: tuple[Record, ...],
    groups: Mapping[str, tuple[str, ...]],
    models: Mapping[str, ModelInfo],
) -> tuple[dict[Slot, tuple[Record, ...]], ...]:
    layers: list[dict[Slot, list[Record]]] = [{} for _ in range(_LAYERS)]
    for record in records:
        if record.key not in models:
            raise DataError(f"catalog: price record for {record.key!r}, which has no model entry")
        base = 0 if record.origin == "overrides" else 3
        for entry in record.regions:
            for rank, region in _expand(entry, groups):
                for scope in record.scopes:
                    slot = (record.key, region, scope, record.tier)
                    layers[base + rank].setdefault(slot, []).append(record)
    return tuple({slot: _ordered(slot, found) for slot, found in layer.items()} for layer in layers)


def _expand(entry: str, groups: Mapping[str, tuple[str, ...]]) -> list[tuple[int, str]]:
    if entry == WILDCARD:
        return [(2, WILDCARD)]
    if entry.startswith("@"):
        if entry[1:] not in groups:
            raise DataError(f"catalog: unknown region group {entry!r}")
        return [(1, region) for region in groups[entry[1:]]]
    return [(0, entry)]


def _ordered(slot: Slot, found: list[Record]) -> tuple[Record, ...]:
    ordered = sorted(found, key=lambda r: r.effective_from)
    for before, after in pairwise(ordered):
        if before.effective_to is None or before.effective_to > after.effective_from:
            raise DataError(
                f"catalog: overlapping {slot[3]} prices for {slot[0]} in {slot[1]} ({slot[2]}): "
                f"records from {before.effective_from:%Y-%m-%d} and {after.effective_from:%Y-%m-%d}"
            )
    return tuple(ordered)


def _tiers(records: tuple[Record, ...]) -> dict[str, frozenset[str]]:
    tiers: dict[str, set[str]] = {}
    for record in records:
        tiers.setdefault(record.key, set()).add(record.tier)
    return {key: frozenset(found) for key, found in tiers.items()}


def load_catalog(data: Any, *, source: str = "catalog") -> Catalog:
    """A ``Catalog`` from the parsed JSON document; ``DataError`` names the first problem."""
    body = mapping(data, source)
    version = text(body.get("catalog_version"), f"{source}.catalog_version")
    if body.get("currency") != "USD" or body.get("unit") != "per 1M tokens":
        raise DataError(f"{source}: expected currency 'USD' and unit 'per 1M tokens'")
    groups = parse_groups(body.get("region_groups", {}), f"{source}.region_groups")
    raw_models = mapping(body.get("models"), f"{source}.models")
    models = {
        key: parse_model(key, raw, f"{source}.models.{key}") for key, raw in raw_models.items()
    }
    raw_prices = body.get("prices")
    if not isinstance(raw_prices, list):
        raise DataError(f"{source}.prices: expected a list of price records")
    records = [
        parse_record(raw, f"{source}.prices[{i}]", groups) for i, raw in enumerate(raw_prices)
    ]
    return Catalog(version, models, records, groups)


def load_catalog_bytes(raw: bytes | str, *, source: str = "catalog") -> Catalog:
    import json  # deferred: importing spendgate.pricing reads and parses nothing

    try:
        data = json.loads(raw)
    except ValueError as err:
        raise DataError(f"{source}: not valid JSON ({err})") from None
    return load_catalog(data, source=source)


@cache
def default_catalog() -> Catalog:
    """The catalog shipped in the package, loaded once on first use."""
    from importlib.resources import files  # deferred: ~20 ms of imports, needed once

    resource = files("spendgate.pricing").joinpath("data").joinpath("catalog.json")
    return load_catalog_bytes(resource.read_bytes(), source="catalog.json")
