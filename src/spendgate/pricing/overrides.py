"""The user's overrides file (TOML): private discounts, provisioned-throughput rates, extra models.

Overrides win: their price records are looked up before the catalog's, and a discount applies to
every price of the models it names. The format is documented in docs/pricing.md; this module
parses text (the CLI or the app reads the file) and raises ``DataError`` naming the bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from spendgate.bedrock.modelids import is_valid_region
from spendgate.errors import ConfigError, DataError
from spendgate.pricing.catalog import Catalog, Discounts
from spendgate.pricing.prices import COMMITMENTS
from spendgate.pricing.records import (
    ModelInfo,
    Record,
    base_model,
    decimal,
    id_forms,
    mapping,
    only,
    parse_model,
    parse_record,
    text,
)

_TOP = frozenset({"label", "discounts", "provisioned", "models", "prices"})
_DISCOUNTS = frozenset({"all", "providers", "models"})
_PROVISIONED = frozenset({"model", "commitment", "usd_per_model_unit_hour", "region", "source"})
_COMMITMENT_ALIASES = {
    "none": "none",
    "no-commitment": "none",
    "nocommitment": "none",
    "1m": "1m",
    "1month": "1m",
    "onemonth": "1m",
    "6m": "6m",
    "6months": "6m",
    "sixmonths": "6m",
}
_HUNDRED = Decimal(100)


class PTRate(NamedTuple):
    """A provisioned-throughput hourly rate per model unit, for one commitment term."""

    model: str
    commitment: str
    usd_per_model_unit_hour: Decimal
    region: str | None = None
    source: str = ""


class Overrides(NamedTuple):
    """A parsed overrides file; ``digest`` (of its text) names it in the catalog version."""

    label: str | None = None
    discounts: Discounts = Discounts()
    provisioned: tuple[PTRate, ...] = ()
    models: Mapping[str, ModelInfo] = MappingProxyType({})
    records: tuple[Record, ...] = ()
    digest: str = ""


def normalize_commitment(value: str) -> str:
    """``none``, ``1m`` or ``6m`` from any accepted spelling (AWS's ``OneMonth`` included)."""
    key = value.strip().lower().replace("_", "").replace(" ", "")
    found = _COMMITMENT_ALIASES.get(key)
    if found is None:
        raise ConfigError(
            f"unknown commitment {value!r}: expected one of {', '.join(COMMITMENTS)} "
            "(no commitment, 1 month, 6 months)"
        )
    return found


def parse_overrides(raw: str | bytes, *, source: str = "overrides") -> Overrides:
    """Parse and validate an overrides file's text."""
    import hashlib  # deferred with tomllib: parsed once at startup, kept off the import path
    import tomllib

    body_text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        body = tomllib.loads(body_text)
    except tomllib.TOMLDecodeError as err:
        raise DataError(f"{source}: not valid TOML ({err})") from None
    only(body, _TOP, source)
    label = body.get("label")
    models_raw = mapping(body.get("models", {}), f"{source}.models")
    prices_raw = body.get("prices", [])
    provisioned_raw = body.get("provisioned", [])
    for name, value in (("prices", prices_raw), ("provisioned", provisioned_raw)):
        if not isinstance(value, list):
            raise DataError(f"{source}.{name}: expected an array of tables ([[{name}]])")
    return Overrides(
        label=None if label is None else text(label, f"{source}.label"),
        discounts=_discounts(body.get("discounts", {}), f"{source}.discounts"),
        provisioned=tuple(
            _pt_rate(item, f"{source}.provisioned[{i}]") for i, item in enumerate(provisioned_raw)
        ),
        models={k: parse_model(k, v, f"{source}.models.{k}") for k, v in models_raw.items()},
        records=tuple(
            parse_record(item, f"{source}.prices[{i}]", None, origin="overrides")
            for i, item in enumerate(prices_raw)
        ),
        digest=hashlib.sha256(body_text.encode("utf-8")).hexdigest()[:12],
    )


def _percent(value: Any, where: str) -> Decimal:
    pct = decimal(value, where)
    if pct > _HUNDRED:
        raise DataError(f"{where}: a discount is a percent between 0 and 100, got {value!r}")
    return pct


def _discounts(raw: Any, where: str) -> Discounts:
    body = mapping(raw, where)
    only(body, _DISCOUNTS, where)
    everything = body.get("all")
    providers = mapping(body.get("providers", {}), f"{where}.providers")
    models = mapping(body.get("models", {}), f"{where}.models")
    return Discounts(
        all=None if everything is None else _percent(everything, f"{where}.all"),
        providers={k: _percent(v, f"{where}.providers.{k}") for k, v in providers.items()},
        models={k: _percent(v, f"{where}.models.{k}") for k, v in models.items()},
    )


def _pt_rate(raw: Any, where: str) -> PTRate:
    body = mapping(raw, where)
    only(body, _PROVISIONED, where)
    region = body.get("region")
    if region is not None and not (isinstance(region, str) and is_valid_region(region)):
        raise DataError(f"{where}.region: expected an AWS Region code, got {region!r}")
    try:
        commitment = normalize_commitment(text(body.get("commitment"), f"{where}.commitment"))
    except ConfigError as err:
        raise DataError(f"{where}.commitment: {err}") from None
    return PTRate(
        model=_model_form(text(body.get("model"), f"{where}.model")),
        commitment=commitment,
        usd_per_model_unit_hour=decimal(
            body.get("usd_per_model_unit_hour"), f"{where}.usd_per_model_unit_hour"
        ),
        region=region,
        source=text(body.get("source", ""), f"{where}.source", allow_empty=True),
    )


def _model_form(model: str) -> str:
    """The shortest id form of a model id, profile id, foundation ARN or catalog key."""
    return id_forms(base_model(model))[-1]


def apply_overrides(catalog: Catalog, overrides: Overrides) -> Catalog:
    """A new catalog whose lookups see the overrides first; its version names the overrides."""
    return Catalog(
        f"{catalog.version}+overrides.{overrides.digest}",
        {**catalog.models, **overrides.models},
        catalog.records + overrides.records,
        catalog.region_groups,
        overrides.discounts,
    )


def pt_cost(
    model: str,
    units: int,
    hours: Decimal | int,
    commitment: str,
    overrides: Overrides,
    *,
    region: str | None = None,
) -> Decimal:
    """Provisioned throughput: ``units`` model units for ``hours`` hours at the overrides' rate."""
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise ConfigError(f"model units must be a whole number of at least 1, got {units!r}")
    amount = Decimal(hours) if isinstance(hours, int) else hours
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ConfigError(f"hours must be a non-negative Decimal, got {hours!r}")
    return units * amount * _pt_rate_for(model, normalize_commitment(commitment), overrides, region)


def _pt_rate_for(model: str, commitment: str, overrides: Overrides, region: str | None) -> Decimal:
    form = _model_form(model)
    found = [r for r in overrides.provisioned if r.model == form and r.commitment == commitment]
    regional = [r for r in found if region is not None and r.region == region]
    general = [r for r in found if r.region is None]
    for candidates in (regional, general):
        if candidates:
            return candidates[0].usd_per_model_unit_hour
    where = f" in {region}" if region else ""
    raise ConfigError(
        f"no provisioned-throughput rate for {model} ({commitment} commitment){where}: AWS "
        "does not publish most PT rates, so add a [[provisioned]] entry to your overrides file"
    )
