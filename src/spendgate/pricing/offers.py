"""AWS Price List bulk offer files -> catalog records, and their diff against the catalog.

Maintainer tooling for ``scripts/update-prices``; the product never runs it. An offer file is the
JSON the Price List Bulk API serves at
``https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/{offer}/current/{region}/index.json``
for ``AmazonBedrock`` (first-party and open-weight models, priced per 1K tokens) and
``AmazonBedrockFoundationModels`` (Marketplace-billed models such as Claude, priced per 1M):

    {"formatVersion": "v1.0", "offerCode": ..., "version": ..., "publicationDate": ...,
     "products": {SKU: {"sku", "productFamily", "attributes": {"usagetype", "regionCode",
                        "model" | "titanModel" | "servicename", "inferenceType", ...}}},
     "terms": {"OnDemand": {SKU: {TERM: {"effectiveDate", "priceDimensions": {RATE:
               {"unit", "description", "pricePerUnit": {"USD": "0.0000600000"}}}}}}}}

The token component, tier, route and long-context flag are read from ``usagetype`` (falling back
to ``inferenceType``), longest match first, as bedrock-formats.md §7.3 advises.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from spendgate.errors import DataError
from spendgate.pricing.catalog import Catalog
from spendgate.pricing.prices import COMPONENTS, decimal_text
from spendgate.pricing.records import Record

OFFER_URL = (
    "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/{offer}/current/{region}/index.json"
)
OFFERS = ("AmazonBedrock", "AmazonBedrockFoundationModels")
_DEFAULT_SCALE = {"AmazonBedrock": Decimal(1000), "AmazonBedrockFoundationModels": Decimal(1)}
_COMPONENT_MARKERS = (
    ("cachewrite1h", "cache_write_1h"),
    ("cachewrite", "cache_write_5m"),
    ("cacheread", "cache_read"),
    ("output", "output"),
    ("input", "input"),
)
_TIERS = ("batch", "flex", "priority")
_SKIP = ("provisioned", "reserved", "latency", "customization", "training", "storage",
         "audio", "speech", "image", "video")  # fmt: skip
_LONG_CONTEXT = ("lctx", "longcontext")
_DEFAULT_THRESHOLD = 200_000


@dataclass(frozen=True, slots=True)
class OfferPrice:
    """One token price from an offer file, normalised to USD per 1M tokens."""

    offer: str
    sku: str
    name: str
    region: str
    usagetype: str
    component: str
    scope: str  # "global" or "regional"
    tier: str
    long_context: bool
    usd_per_1m: Decimal
    effective: date


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the diff: ``kind`` is new, changed, same or unmapped."""

    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        mark = {"new": "+", "changed": "~", "same": "=", "unmapped": "?"}[self.kind]
        return f"{mark} {self.kind:<8} {self.subject}: {self.detail}"


def _flat(text: str) -> str:
    return text.lower().replace("-", "").replace("_", "").replace(" ", "")


def _component(flat: str) -> str | None:
    return next((name for marker, name in _COMPONENT_MARKERS if marker in flat), None)


def _scale(offer: str, dimension: Mapping[str, Any]) -> Decimal | None:
    """Multiplier from the dimension's unit to per-1M tokens; None when it is not per token."""
    unit = _flat(str(dimension.get("unit", "")))
    described = _flat(str(dimension.get("description", "")))
    for text in (unit, described):
        if "1ktokens" in text or "thousand" in text:
            return Decimal(1000)
        if "1mtokens" in text or "million" in text:
            return Decimal(1)
    if "token" in unit or unit == "units":
        return _DEFAULT_SCALE.get(offer)
    return None


def read_offer(data: Any, *, source: str = "offer") -> tuple[list[OfferPrice], list[str]]:
    """The token prices in an offer file, and a note for every product it skipped."""
    if not isinstance(data, Mapping) or not isinstance(data.get("products"), Mapping):
        raise DataError(f"{source}: not an AWS Price List offer file (no 'products' object)")
    offer = str(data.get("offerCode", ""))
    if offer not in OFFERS:
        raise DataError(f"{source}: offerCode {offer!r} is not one of {', '.join(OFFERS)}")
    terms = data.get("terms", {}).get("OnDemand", {})
    prices: list[OfferPrice] = []
    skipped: list[str] = []
    for sku, product in data["products"].items():
        for found in _product_prices(offer, sku, product, terms.get(sku, {}), skipped):
            prices.append(found)
    return prices, skipped


def _product_prices(
    offer: str, sku: str, product: Any, terms: Mapping[str, Any], skipped: list[str]
) -> Iterator[OfferPrice]:
    attrs = product.get("attributes", {}) if isinstance(product, Mapping) else {}
    usagetype = str(attrs.get("usagetype", ""))
    flat = _flat(usagetype) + "|" + _flat(str(attrs.get("inferenceType", "")))
    name = attrs.get("model") or attrs.get("titanModel") or attrs.get("servicename")
    component = _component(_flat(usagetype)) or _component(flat)
    if any(word in flat for word in _SKIP) or not name or component is None:
        skipped.append(f"{offer} {sku} {usagetype or '?'}: not an on-demand token price")
        return
    region = attrs.get("regionCode") or ""
    for term in terms.values():
        effective = _date(term.get("effectiveDate"))
        for dimension in term.get("priceDimensions", {}).values():
            scale = _scale(offer, dimension)
            usd = _usd(dimension)
            if scale is None or usd is None:
                skipped.append(
                    f"{offer} {sku} {usagetype}: unit {dimension.get('unit')!r} is not per token"
                )
                continue
            yield OfferPrice(
                offer, sku, str(name), str(region), usagetype, component,
                "global" if "global" in flat else "regional",
                next((tier for tier in _TIERS if tier in flat), "standard"),
                any(marker in flat for marker in _LONG_CONTEXT),
                (usd * scale).normalize(),
                effective,
            )  # fmt: skip


def _usd(dimension: Mapping[str, Any]) -> Decimal | None:
    try:
        return Decimal(str(dimension["pricePerUnit"]["USD"]))
    except (KeyError, TypeError, InvalidOperation):
        return None


def _date(value: Any) -> date:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    except ValueError:
        return date(1970, 1, 1)


def to_records(
    prices: list[OfferPrice], catalog: Catalog, *, checked: date, at: datetime
) -> tuple[list[dict[str, Any]], list[Change]]:
    """Catalog records (JSON form) for the prices whose name maps to a catalog key.

    A long-context threshold is not in the offer files: it is taken from the catalog record in
    effect at ``at``, else 200,000 tokens.
    """
    names = {
        name.lower(): key for key, info in catalog.models.items() for name in info.price_list_names
    }
    groups: dict[tuple[str, str, str, str], list[OfferPrice]] = {}
    unmapped: dict[tuple[str, str], int] = {}
    for price in prices:
        key = names.get(price.name.lower())
        if key is None:
            unmapped[(price.offer, price.name)] = unmapped.get((price.offer, price.name), 0) + 1
            continue
        groups.setdefault((key, price.region, price.scope, price.tier), []).append(price)
    records = [_record(slot, found, catalog, checked, at) for slot, found in sorted(groups.items())]
    notes = [
        Change(
            "unmapped", f"{offer} {name!r}", f"{count} prices; add it to a model's price_list_names"
        )
        for (offer, name), count in sorted(unmapped.items())
    ]
    return [r for r in records if r is not None], notes


def _record(
    slot: tuple[str, str, str, str],
    found: list[OfferPrice],
    catalog: Catalog,
    checked: date,
    at: datetime,
) -> dict[str, Any] | None:
    key, region, scope, tier = slot
    base = {p.component: p.usd_per_1m for p in found if not p.long_context}
    if "input" not in base or "output" not in base:
        return None
    record: dict[str, Any] = {
        "key": key,
        "regions": [region],
        "scopes": ["global"] if scope == "global" else ["in_region", "geo"],
        "tier": tier,
        **{name: _text(base.get(name)) for name in COMPONENTS},
    }
    long_context = {p.component: p.usd_per_1m for p in found if p.long_context}
    if "input" in long_context and "output" in long_context:
        current = _current(catalog, record, at)
        threshold = (
            current.long_context.threshold
            if current and current.long_context
            else _DEFAULT_THRESHOLD
        )
        record["long_context"] = {"threshold": threshold} | {
            name: _text(long_context.get(name)) for name in COMPONENTS
        }
    first = found[0]
    usagetypes = ", ".join(sorted({p.usagetype for p in found}))
    record |= {
        "effective_from": min(p.effective for p in found).isoformat(),
        "effective_to": None,
        "source_url": OFFER_URL.format(offer=first.offer, region=region),
        "checked": checked.isoformat(),
        "verified": True,
        "notes": f"AWS Price List {first.offer} ({usagetypes}).",
    }
    return record


def _text(value: Decimal | None) -> str | None:
    return None if value is None else decimal_text(value)


def _current(catalog: Catalog, record: Mapping[str, Any], at: datetime) -> Record | None:
    found = catalog.records_for(
        record["key"], record["regions"][0], record["scopes"][0], record["tier"]
    )
    return next(
        (
            r
            for r in found
            if r.effective_from <= at and (r.effective_to is None or at < r.effective_to)
        ),
        None,
    )


def diff(records: list[dict[str, Any]], catalog: Catalog, *, at: datetime) -> list[Change]:
    """How each offer-derived record compares with the catalog price in effect at ``at``."""
    changes = []
    for record in records:
        subject = f"{record['key']} {record['regions'][0]} {record['scopes'][0]} {record['tier']}"
        current = _current(catalog, record, at)
        if current is None:
            shown = ", ".join(f"{n} {record[n]}" for n in COMPONENTS if record[n] is not None)
            changes.append(Change("new", subject, shown))
            continue
        deltas = _deltas(record, current)
        kind, detail = ("changed", "; ".join(deltas)) if deltas else ("same", current.source_url)
        changes.append(Change(kind, subject, detail))
    return changes


def _deltas(record: Mapping[str, Any], current: Record) -> list[str]:
    pairs = [(name, record[name], current.rates[i]) for i, name in enumerate(COMPONENTS)]
    offer_lc = record.get("long_context")
    if offer_lc is not None:
        now = current.long_context.rates if current.long_context else (None,) * len(COMPONENTS)
        pairs += [(f"long_context.{n}", offer_lc[n], now[i]) for i, n in enumerate(COMPONENTS)]
    deltas = []
    for name, new, old in pairs:
        if new is not None and Decimal(new) != old:  # a component the offer does not list is kept
            deltas.append(f"{name} {_text(old) or '-'} -> {new}")
    return deltas
