"""Catalog records as typed values, and the one parser for them (shared by catalog and overrides).

The parser is the cheap structural check that runs when a catalog or an overrides file is loaded:
it names the first problem it meets (``catalog prices[12].input: ...``) and raises ``DataError``.
The full JSON Schema (``data/catalog.schema.json``) is enforced by the test suite, not at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from spendgate.bedrock.modelids import is_valid_region, parse_model_id
from spendgate.errors import DataError, InvalidModelId
from spendgate.pricing.prices import COMPONENTS, SCOPES, TIERS

WILDCARD = "*"
KINDS = ("text", "embedding")
_KEY_RE = re.compile(r"[a-z0-9-]+\.[a-z0-9][a-z0-9.:-]*")
_DECIMAL_RE = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
# Id suffixes stripped one after another to match an id to a catalog key: a context-window suffix
# (":200k", ":mm"), a minor version (":0"), a *first* major version ("-v1", or "-1" when it had a
# minor), then a release date. "-v2" and later are never stripped: they are different models.
_CONTEXT_RE = re.compile(r":[0-9]*[a-z][0-9a-z]*$")
_MINOR_RE = re.compile(r":[0-9]+$")
_FIRST_VERSION_RE = re.compile(r"-v1$")
_FIRST_VERSION_AFTER_MINOR_RE = re.compile(r"-v?1$")
_DATE_RE = re.compile(r"-[0-9]{8}$")

Rates = tuple[Decimal | None, ...]


class ModelInfo(NamedTuple):
    """What the catalog knows about a model apart from its prices."""

    key: str
    name: str
    provider: str
    kind: str
    ids: tuple[str, ...]
    price_list_names: tuple[str, ...] = ()
    max_output_tokens: int | None = None  # most output one call can produce (budget worst case)


class LongContextSpec(NamedTuple):
    threshold: int
    rates: Rates


class Record(NamedTuple):
    """One price record as written: per-1M rates (None = not listed) for regions x scopes x tier."""

    key: str
    regions: tuple[str, ...]
    scopes: tuple[str, ...]
    tier: str
    rates: Rates
    long_context: LongContextSpec | None
    effective_from: datetime
    effective_to: datetime | None
    source_url: str
    checked: date | None
    verified: bool
    notes: str = ""
    origin: str = "catalog"


def id_forms(model_id: str) -> tuple[str, ...]:
    """``model_id`` and the shorter forms it matches, most specific first."""
    current = _CONTEXT_RE.sub("", model_id)
    without_minor = _MINOR_RE.sub("", current)
    first = _FIRST_VERSION_AFTER_MINOR_RE if without_minor != current else _FIRST_VERSION_RE
    unversioned = first.sub("", without_minor)
    forms = [model_id]
    for form in (current, without_minor, unversioned, _DATE_RE.sub("", unversioned)):
        if form not in forms:
            forms.append(form)
    return tuple(forms)


_MODEL_FIELDS = frozenset(
    {"name", "provider", "kind", "ids", "price_list_names", "max_output_tokens"}
)
_RECORD_FIELDS = frozenset(
    {
        "key",
        "regions",
        "scopes",
        "tier",
        *COMPONENTS,
        "long_context",
        "effective_from",
        "effective_to",
        "source_url",
        "checked",
        "verified",
        "notes",
    }
)
_LONG_CONTEXT_FIELDS = frozenset({"threshold", *COMPONENTS})


def base_model(model: str) -> str:
    """The foundation id inside a profile id or ARN (a catalog key or bare id is itself)."""
    try:
        return parse_model_id(model).base_model or model
    except InvalidModelId:
        return model


def _fail(where: str, problem: str) -> DataError:
    return DataError(f"{where}: {problem}")


def only(body: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    """Reject unknown fields, so a typo is an error rather than a silently ignored setting."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _fail(where, f"unknown field {unknown[0]!r} (expected: {', '.join(sorted(allowed))})")


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a table/object, got {type(value).__name__}")
    return value


def text(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise _fail(where, f"expected a non-empty string, got {value!r}")
    return value


def strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(where, f"expected a non-empty list of strings, got {value!r}")
    return tuple(text(item, f"{where}[{i}]") for i, item in enumerate(value))


def decimal(value: Any, where: str) -> Decimal:
    """A non-negative price: a decimal string, an integer, or (from TOML) a float."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(where, f'expected a decimal string such as "3.30", got {value!r}')
    raw = repr(value) if isinstance(value, float) else str(value)
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise _fail(where, f'expected a decimal string such as "3.30", got {value!r}') from None
    if not number.is_finite() or number < 0:
        raise _fail(where, f"expected a finite, non-negative amount, got {value!r}")
    return number


def optional_decimal(value: Any, where: str) -> Decimal | None:
    return None if value is None else decimal(value, where)


def day(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        raise _fail(where, f"expected a date (YYYY-MM-DD), got the date-time {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(where, f"expected a date (YYYY-MM-DD), got {value!r}")


def midnight(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def choice(value: Any, options: tuple[str, ...], where: str) -> str:
    if value not in options:
        raise _fail(where, f"expected one of {', '.join(options)}, got {value!r}")
    return str(value)


def parse_key(value: Any, where: str) -> str:
    key = text(value, where)
    if not _KEY_RE.fullmatch(key):
        raise _fail(
            where, f"expected a catalog key such as 'anthropic.claude-sonnet-4-5', got {key!r}"
        )
    return key


def parse_model(key: str, raw: Any, where: str) -> ModelInfo:
    body = mapping(raw, where)
    only(body, _MODEL_FIELDS, where)
    names = body.get("price_list_names", [])
    return ModelInfo(
        key=parse_key(key, f"{where} (key)"),
        name=text(body.get("name"), f"{where}.name"),
        provider=text(body.get("provider"), f"{where}.provider"),
        kind=choice(body.get("kind"), KINDS, f"{where}.kind"),
        ids=strings(body.get("ids"), f"{where}.ids"),
        price_list_names=strings(names, f"{where}.price_list_names") if names else (),
        max_output_tokens=_max_output(body.get("max_output_tokens"), f"{where}.max_output_tokens"),
    )


def _max_output(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, "must be a whole number of tokens (0 or more)")
    return value


def _regions(
    value: Any, where: str, groups: Mapping[str, tuple[str, ...]] | None
) -> tuple[str, ...]:
    regions = strings(value, where)
    for i, region in enumerate(regions):
        if region.startswith("@"):
            if groups is not None and region[1:] not in groups:
                raise _fail(f"{where}[{i}]", f"unknown region group {region!r}")
        elif region != WILDCARD and not is_valid_region(region):
            raise _fail(
                f"{where}[{i}]", f"expected an AWS Region code, '@group' or '*', got {region!r}"
            )
    return regions


def _rates(body: Mapping[str, Any], where: str) -> Rates:
    return tuple(
        decimal(body.get(name), f"{where}.{name}")
        if name in ("input", "output")
        else optional_decimal(body.get(name), f"{where}.{name}")
        for name in COMPONENTS
    )


def _long_context(raw: Any, where: str) -> LongContextSpec | None:
    if raw is None:
        return None
    body = mapping(raw, where)
    only(body, _LONG_CONTEXT_FIELDS, where)
    threshold = body.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise _fail(f"{where}.threshold", f"expected a positive token count, got {threshold!r}")
    return LongContextSpec(threshold, _rates(body, where))


def parse_record(
    raw: Any, where: str, groups: Mapping[str, tuple[str, ...]] | None, *, origin: str = "catalog"
) -> Record:
    """A price record from its JSON/TOML form; ``DataError`` names the first bad field.

    ``groups`` None accepts any ``@group`` name (an overrides file is checked against the
    catalog's groups when it is applied).
    """
    body = mapping(raw, where)
    only(body, _RECORD_FIELDS, where)
    start = day(body.get("effective_from"), f"{where}.effective_from")
    end_raw = body.get("effective_to")
    end = None if end_raw is None else day(end_raw, f"{where}.effective_to")
    if end is not None and end <= start:
        raise _fail(f"{where}.effective_to", f"{end} is not after effective_from {start}")
    checked = body.get("checked")
    verified = body.get("verified", origin != "catalog")
    if not isinstance(verified, bool):
        raise _fail(f"{where}.verified", f"expected true or false, got {verified!r}")
    return Record(
        key=parse_key(body.get("key"), f"{where}.key"),
        regions=_regions(body.get("regions"), f"{where}.regions", groups),
        scopes=tuple(
            choice(s, SCOPES, f"{where}.scopes")
            for s in strings(body.get("scopes"), f"{where}.scopes")
        ),
        tier=choice(body.get("tier", "standard"), TIERS, f"{where}.tier"),
        rates=_rates(body, where),
        long_context=_long_context(body.get("long_context"), f"{where}.long_context"),
        effective_from=midnight(start),
        effective_to=None if end is None else midnight(end),
        source_url=text(body.get("source_url"), f"{where}.source_url"),
        checked=None if checked is None else day(checked, f"{where}.checked"),
        verified=verified,
        notes=text(body.get("notes", ""), f"{where}.notes", allow_empty=True),
        origin=origin,
    )


def parse_groups(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    groups: dict[str, tuple[str, ...]] = {}
    for name, regions in mapping(raw, where).items():
        codes = strings(regions, f"{where}.{name}")
        for code in codes:
            if not is_valid_region(code):
                raise _fail(f"{where}.{name}", f"{code!r} is not an AWS Region code")
        groups[name] = codes
    return groups
