"""What a spend question is (``SpendQuery``) and what its answer holds (``SpendRow``).

A query names a half-open time range ``[since, until)`` (UTC-aware), the fields to group by
(``DIMENSIONS``), equality filters on the same fields, an optional time bucket (``BUCKETS``),
an order (a measure in ``ORDERS``, ``-`` first for descending) and a row limit. Every check
raises ``ConfigError`` with a sentence a person can act on (the API turns it into a 400).

Money is ``Decimal`` (exact), tokens and counts ``int``. Measures derived from sums
(``cost_per_1k_tokens``, ``cost_per_request``, ``cache_hit_rate``, ``cost_per_session`` …) are
properties, ``None`` when their denominator is zero (or, for sessions and workflows, when the
query did not ask for them with ``sessions=True``). Each is the exact quotient rounded
half-even to the places it is shown with: money to the picodollar (12 places), the cache-hit
rate to 6; answers are ordered by those same values (``analytics.answer`` computes them
column-wise, equal by construction and by test).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from spendgate.errors import ConfigError
from spendgate.store.spend import DIMENSIONS
from spendgate.store.types import PICO, as_utc, from_pusd

BUCKETS = ("hour", "day", "week", "month")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
MAX_ROWS = 100_000

# The measures of a ``SpendRow`` (each an attribute).
MEASURES = (
    "cost",
    "requests",
    "errors",
    "error_cost",
    "unpriced",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
    "latency_p50_ms",
    "latency_p95_ms",
    "cost_per_1k_tokens",
    "cost_per_request",
    "cache_hit_rate",
)
# The counts a ``SpendRow`` holds as summed (same names as the sums), in field order.
COUNTS = ("requests", "errors", "unpriced", "input_tokens", "output_tokens", "cache_read_tokens")
# The integer measures of ``row_to_dict`` (and the API's rows), in order.
INTEGERS = (*COUNTS, "cache_write_tokens", "total_tokens")
# Its money measures (decimal strings to the picodollar), in order; the session ones only with
# ``SpendQuery.sessions``.
MONEY = ("cost", "error_cost", "cost_per_1k_tokens", "cost_per_request")
SESSION_MONEY = ("session_cost", "cost_per_session", "workflow_cost", "cost_per_workflow")
RATE_PLACES = 6  # cache_hit_rate's decimal places
# Orders a query accepts (prefix ``-`` for descending): a measure, or ``bucket`` / a group field.
ORDERS = (*MEASURES, "bucket")

_WIDE = Context(prec=60)  # money sums of any size, to the picodollar


@dataclass(frozen=True, slots=True)
class SpendQuery:
    """One spend question. Build it directly or with ``SpendQuery.of(...)`` (which accepts a
    mapping of filters and a comma-separated group-by); it validates itself either way.

    - ``group_by``: fields of ``DIMENSIONS`` (attribution fields, key_id, model fields, …).
    - ``filters``: ``(field, value)`` pairs, each an equality; ``""`` matches a missing value.
    - ``bucket``: ``hour`` | ``day`` | ``week`` (ISO, Monday) | ``month`` | ``None`` (no series).
    - ``order``: default ``-cost``; ties are broken by bucket then group values.
    - ``limit``: at most this many rows (``None``: all; an answer of more than ``MAX_ROWS``
      rows is then a ``ConfigError``, ``answer.answer_table``).
    - ``sessions``: also count distinct sessions and workflows (cost per session/workflow).
      They come from the id rollups (a row per id and combination of dimensions), so this
      reads more rows than the other measures: slower on long ranges.
    - ``latency``: compute latency p50/p95 (``False``: leave them ``None`` and read about half
      the columns: faster, for views that show no latency).
    """

    since: datetime
    until: datetime
    group_by: tuple[str, ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    bucket: str | None = None
    limit: int | None = None
    order: str = "-cost"
    sessions: bool = False
    latency: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _aware("since", self.since))
        object.__setattr__(self, "until", _aware("until", self.until))
        if not EARLIEST <= self.since < self.until <= LATEST:
            raise ConfigError(
                f"the range must satisfy {EARLIEST:%Y-%m-%d} <= since < until <= "
                f"{LATEST:%Y-%m-%d}; got {self.since.isoformat()} .. {self.until.isoformat()}"
            )
        _known("group_by", self.group_by)
        if len(set(self.group_by)) != len(self.group_by):
            raise ConfigError("group_by names a field twice")
        _known("filter", [name for name, _ in self.filters])
        if self.bucket is not None and self.bucket not in BUCKETS:
            raise ConfigError(f"unknown bucket {self.bucket!r}; use one of {', '.join(BUCKETS)}")
        if self.limit is not None and not 1 <= self.limit <= MAX_ROWS:
            raise ConfigError(f"limit must be between 1 and {MAX_ROWS}, not {self.limit}")
        key = self.order.removeprefix("-")
        if key.startswith("latency") and not self.latency:
            raise ConfigError(f"cannot order by {key!r} without latency")
        if key not in ORDERS and key not in self.group_by:
            raise ConfigError(
                f"cannot order by {key!r}; use a measure ({', '.join(ORDERS)}) or a group_by field"
            )

    @classmethod
    def of(
        cls,
        since: datetime,
        until: datetime,
        group_by: str | Iterable[str] = (),
        filters: Mapping[str, str] | None = None,
        **options: Any,
    ) -> SpendQuery:
        """A query from friendlier arguments: ``group_by="project,model_id"``, a filter dict."""
        fields = group_by.split(",") if isinstance(group_by, str) else list(group_by)
        return cls(
            since=since,
            until=until,
            group_by=tuple(f.strip() for f in fields if f.strip()),
            filters=tuple(sorted((filters or {}).items())),
            **options,
        )

    @property
    def filter_map(self) -> dict[str, str]:
        return dict(self.filters)


@dataclass(slots=True)
class SpendRow:
    """One group (and bucket) of a spend answer. ``keys`` maps each group_by field to its value
    (``None``: the events had none); ``bucket`` is the bucket's start (UTC) or ``None``.
    Not frozen: a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, a third of the time of building a 20,000-row answer."""

    keys: dict[str, str | None] = field(default_factory=dict)
    bucket: datetime | None = None
    requests: int = 0
    errors: int = 0
    unpriced: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0  # 5-minute and 1-hour cache writes together
    cost: Decimal = Decimal(0)  # priced events only: see ``unpriced``
    error_cost: Decimal = Decimal(0)  # spend on calls whose status is not ok
    latency_p50_ms: float | None = None  # estimated from a histogram (see docs/analytics.md)
    latency_p95_ms: float | None = None
    sessions: int | None = None  # distinct session ids (only with SpendQuery.sessions)
    session_cost: Decimal | None = None  # spend of events that carry a session id
    workflows: int | None = None
    workflow_cost: Decimal | None = None

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )

    @property
    def cost_per_1k_tokens(self) -> Decimal | None:
        return _per(self.cost, self.total_tokens, 1000)

    @property
    def cost_per_request(self) -> Decimal | None:
        return _per(self.cost, self.requests)

    @property
    def cache_hit_rate(self) -> Decimal | None:
        """cache_read / (input + cache_read + cache_write), as a fraction 0..1 (``RATE_PLACES``)."""
        prompt = self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
        if not prompt:
            return None
        scaled = rounded_quotient(self.cache_read_tokens * 10**RATE_PLACES, prompt)
        return Decimal(scaled).scaleb(-RATE_PLACES)

    @property
    def cost_per_session(self) -> Decimal | None:
        return None if self.session_cost is None else _per(self.session_cost, self.sessions)

    @property
    def cost_per_workflow(self) -> Decimal | None:
        return None if self.workflow_cost is None else _per(self.workflow_cost, self.workflows)

    def measure(self, name: str) -> Any:
        """The value of measure (or group field) ``name``, for ordering and display."""
        if name == "bucket":
            return self.bucket
        if name in self.keys:
            return self.keys[name]
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: money and ratios as decimal strings, the bucket as ISO 8601 UTC."""
        return row_to_dict(self)


def row_to_dict(row: SpendRow) -> dict[str, Any]:
    """``row`` as a flat JSON-ready dict: group fields first, then ``bucket``, then measures."""
    out: dict[str, Any] = dict(row.keys)
    if row.bucket is not None:
        out["bucket"] = row.bucket.strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in INTEGERS:
        out[name] = getattr(row, name)
    for name in MONEY:
        out[name] = money_text(getattr(row, name))
    out["cache_hit_rate"] = ratio_text(row.cache_hit_rate)
    out["latency_p50_ms"] = row.latency_p50_ms
    out["latency_p95_ms"] = row.latency_p95_ms
    if row.sessions is not None:
        out["sessions"] = row.sessions
        out["workflows"] = row.workflows
        for name in SESSION_MONEY:
            out[name] = money_text(getattr(row, name))
    return out


def rounded_quotient(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` (both >= 0, denominator > 0) rounded half-even to an
    integer: exact, however big."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    return quotient + (twice > denominator or (twice == denominator and quotient % 2 == 1))


def _per(money: Decimal, count: int | None, scale: int = 1) -> Decimal | None:
    """``money * scale / count`` rounded half-even to the picodollar; ``None`` for no count."""
    if not count:
        return None
    pusd = int(money.scaleb(PICO, context=_WIDE)) * scale
    return from_pusd(rounded_quotient(pusd, count))


def money_text(value: Decimal | None) -> str | None:
    """Dollars as a plain decimal string (no exponent), at most 12 places; ``None`` stays."""
    if value is None:
        return None
    return _plain(value.quantize(Decimal("1E-12")))


def ratio_text(value: Decimal | None) -> str | None:
    """A ratio as a decimal string with ``RATE_PLACES`` places; ``None`` stays."""
    return None if value is None else _plain(value.quantize(Decimal(1).scaleb(-RATE_PLACES)))


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _aware(name: str, moment: datetime) -> datetime:
    try:
        return as_utc(moment)
    except ValueError:
        raise ConfigError(f"{name} must be a timezone-aware datetime (UTC), not {moment}") from None


def _known(what: str, names: Iterable[str]) -> None:
    unknown = sorted(set(names) - set(DIMENSIONS))
    if unknown:
        raise ConfigError(
            f"unknown {what} field {', '.join(unknown)}; use: {', '.join(DIMENSIONS)}"
        )
