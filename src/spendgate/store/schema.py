"""The tables, as SQLAlchemy Core metadata (the migrations create exactly this).

``events`` holds one row per ``spendgate.events.Event``: one column per field, the same names,
except ``cost_usd`` which is stored as ``cost_pusd`` (picodollars, see ``store.types``). The store
adds no column of its own, so what is at rest is exactly what the event holds.

``api_keys`` holds spendgate keys by SHA-256 hash only (see ``store.keys``).

``spend_hourly`` and ``spend_daily`` are rollups of ``events`` kept by ``Store.insert_events``
(see ``store.rollups``): one row per hour (day) and combination of ``ROLLUP_DIMENSIONS`` (a
missing value is stored as ``''`` so the key can be unique). Smaller rollups (``ROLLUP_SPECS``:
``spend_*_org``, ``spend_daily_models``, ``spend_daily_users``) keep fewer dimensions, the
facet rollups (``spend_facets_*``) one dimension at a time (a row per hour or day, dimension
and value), and ``spend_pairs_daily`` two at a time (every pair no smaller rollup keeps), so
a question naming one or two fields reads far fewer rows. ``spend_pending`` holds the hourly
sums of the newest events until the writer folds them into the rollups (every few seconds);
queries add it. Every rollup holds
additive measures only: counts, token sums, money split into exact integer parts
(``*_micro`` = Σ whole microdollars, ``*_pico`` = Σ the picodollar remainders, so no SUM can
overflow a BIGINT below ~$9.2 trillion), and a latency histogram (``LATENCY_BOUNDS_MS``).

``budgets`` holds budget definitions (see ``store.budgets``).

Later tables (CUR lines) join this metadata in their own migrations.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)

from spendgate.events import ATTRIBUTION_FIELDS, Event
from spendgate.store.types import JSONText, Picodollars, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Event fields whose column has another name.
RENAMED = {"cost_usd": "cost_pusd"}

# Filters an ``events`` query accepts: each an equality on the column of the same name.
FILTERABLE = (
    *ATTRIBUTION_FIELDS,
    "key_id",
    "model_id",
    "base_model",
    "provider",
    "operation",
    "status",
    "source",
)

# Dimensions the rollups keep (everything a spend query groups by, except the per-session and
# per-workflow ids, whose cardinality would make the rollups as big as the events).
ROLLUP_DIMENSIONS = (
    *(f for f in ATTRIBUTION_FIELDS if f not in ("session_id", "workflow_id")),
    "key_id",
    "model_id",
    "base_model",
    "provider",
    "model_family",
    "operation",
    "region",
    "status",
    "source",
)

# The ids whose distinct values a spend question may count (sessions, workflows): kept in their
# own rollups (``spend_ids_*``), a row per id and combination of ``ROLLUP_DIMENSIONS``.
ID_FIELDS = ("session_id", "workflow_id")
# The id rollups' sheets (their ``dimension``): the rows that carry each id, keyed by it, and
# the rows that carry both, keyed by both (``RollupSpec``).
ID_SHEETS: tuple[tuple[str, ...], ...] = (*((field,) for field in ID_FIELDS), ID_FIELDS)
# What ``spend_pending`` (and the fold's stage) is keyed by: every dimension and the ids.
PENDING_KEYS = (*ROLLUP_DIMENSIONS, *ID_FIELDS)

# Upper bounds (ms, exclusive) of the latency histogram's buckets; one more bucket holds the rest.
LATENCY_BOUNDS_MS = (
    *(100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 4500, 6500),
    *(10_000, 15_000, 25_000, 45_000),
)
LATENCY_BUCKETS = tuple(f"latency_h{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))

# Additive measures every rollup row holds (all BIGINT, summed on conflict).
ROLLUP_MEASURES = (
    "requests",
    "errors",
    "unpriced",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cost_micro",
    "cost_pico",
    "error_cost_micro",
    "error_cost_pico",
    "latency_count",
    "latency_sum_ms",
    *LATENCY_BUCKETS,
)

# What a distinct count needs of the id rollups: the ids of a group (those with requests) and
# the spend that carries one (the id rollups hold every ``ROLLUP_MEASURES``, so a question that
# groups by an id is summed from them too).
ID_MEASURES = ("requests", "cost_micro", "cost_pico")

# Attribution columns with an (owner, ts) index. The ids' serve one session's or workflow's
# spend and events, which no rollup holds: without, a month of them scans a month of events.
INDEXED_OWNERS = (
    *("key_id", "department", "project", "user_id", "application", "base_model"),
    *ID_FIELDS,
)


def _text(name: str, *, nullable: bool = True) -> Column[str]:
    return Column(name, Text, nullable=nullable)


def _count(name: str) -> Column[int]:
    return Column(name, Integer, nullable=False)


def _flag(name: str) -> Column[bool]:
    return Column(name, Boolean, nullable=False)


events = Table(
    "events",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("ts", UTCDateTime, nullable=False),
    _text("source", nullable=False),
    Column("ts_end", UTCDateTime),
    *(_text(n) for n in ("request_id", "gateway_request_id", "account_id", "region")),
    *(_text(n) for n in ("inference_region", "operation", "requested_model", "model_id")),
    *(_text(n) for n in ("base_model", "provider", "model_family", "model_tier")),
    _text("inference_profile_arn"),
    _text("service_tier"),
    _count("input_tokens"),
    _count("output_tokens"),
    _count("cache_read_tokens"),
    _count("cache_write_5m_tokens"),
    _count("cache_write_1h_tokens"),
    Column("latency_ms", Integer),
    Column("ttfb_ms", Integer),
    _text("status", nullable=False),
    Column("http_status", Integer),
    _text("error_type"),
    _text("error_message"),
    _text("stop_reason"),
    _flag("streamed"),
    _flag("partial"),
    _flag("usage_known"),
    Column("cost_pusd", Picodollars),
    _text("price_ref"),
    _text("catalog_version"),
    _flag("unpriced"),
    _text("unpriced_reason"),
    _text("key_id"),
    _text("iam_principal"),
    *(_text(n) for n in ("department", "project", "agent", "user_id", "application")),
    *(_text(n) for n in ("environment", "cost_center", "session_id", "workflow_id")),
    Column("tags", JSONText, nullable=False),
    _text("prompt_hash"),
    _text("response_hash"),
    Column("prefix_hashes", JSONText, nullable=False),
    Column("request_bytes", BigInteger),
    Column("response_bytes", BigInteger),
    _text("routed_from"),
    _text("budget_decision"),
    # Newest-first listing scans ix_events_ts backwards; the composite indexes serve the common
    # "one owner, newest first" views. Other filters walk ts order and test each row.
    Index(None, "ts"),
    *(Index(None, owner, "ts") for owner in INDEXED_OWNERS),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("key_prefix", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Column("allowed_models", JSONText),
    Column("defaults", JSONText, nullable=False),
    Column("role_arn", Text),
    Column("external_id", Text),
)


@dataclass(frozen=True, slots=True)
class RollupSpec:
    """One rollup table: its name, time grain (``hour`` | ``day``) and dimensions. A facet
    rollup (``facets``) keys its rows by ``(dimension, bucket, value)``: one row per dimension
    and value, so it answers questions that name at most one of its dimensions. An id rollup
    (``ids``) keys its rows by ``(dimension, bucket, *ID_FIELDS, *dimensions)``: ``dimension``
    names one of ``ID_SHEETS`` (``session_id``, ``workflow_id`` or ``session_id,workflow_id``,
    comma-separated), whose rows are those of the events that carry each of its ids, keyed by
    them (an id not in the sheet is ``''``); it answers the distinct counts of a question and
    the sums of one that groups by an id (``store.spend``). Every rollup holds
    ``ROLLUP_MEASURES``."""

    name: str
    grain: str
    dimensions: tuple[str, ...]
    facets: bool = False
    pairs: tuple[tuple[str, str], ...] = ()  # a pair rollup: the field pairs it keeps
    sealed_from: str | None = None  # a daily rollup: the rollup its ended days are summed from
    ids: bool = False

    def holds(self, fields: Collection[str]) -> bool:
        """Whether this rollup can answer a question that groups or filters by ``fields``
        (an id rollup: by those and an id, or their distinct counts)."""
        if self.pairs:
            return len(fields) == 2 and pair_of(fields) in self.pairs
        if self.facets and len(fields) > 1:
            return False
        return set(fields) <= set(self.dimensions)


def pair_of(fields: Collection[str]) -> tuple[str, str]:
    """Two fields in ``ROLLUP_DIMENSIONS`` order (the order a pair rollup keeps them in)."""
    first, second = sorted(fields, key=ROLLUP_DIMENSIONS.index)
    return first, second


# Smaller rollups answer the common questions from far fewer rows than the full ones.
ORG_DIMENSIONS = (
    *("department", "project", "agent", "application", "environment", "cost_center"),
    *("base_model", "provider", "model_family"),
)
MODEL_DIMENSIONS = (
    *("base_model", "provider", "model_family", "model_id", "region", "operation"),
    *("status", "source"),
)
USER_DIMENSIONS = ("user_id", "key_id", "department", "project", "base_model")


def _pairs_apart() -> tuple[tuple[str, str], ...]:
    """The field pairs that no smaller rollup keeps together."""
    narrow = (ORG_DIMENSIONS, MODEL_DIMENSIONS, USER_DIMENSIONS)
    return tuple(
        (first, second)
        for i, first in enumerate(ROLLUP_DIMENSIONS)
        for second in ROLLUP_DIMENSIONS[i + 1 :]
        if not any({first, second} <= set(dims) for dims in narrow)
    )


# Smallest first (``store.rollups.choose`` takes the first one that holds a query's fields).
# Hourly rollups are kept by every fold; a daily one is filled once a day has ended, from
# ``sealed_from`` (``store.rollups.RollupWriter.seal``), in this order.
ROLLUP_SPECS = (
    RollupSpec("spend_facets_hourly", "hour", ROLLUP_DIMENSIONS, facets=True),
    RollupSpec(
        "spend_facets_daily",
        "day",
        ROLLUP_DIMENSIONS,
        facets=True,
        sealed_from="spend_facets_hourly",
    ),
    RollupSpec("spend_hourly_org", "hour", ORG_DIMENSIONS),
    RollupSpec("spend_hourly", "hour", ROLLUP_DIMENSIONS),
    RollupSpec("spend_daily_models", "day", MODEL_DIMENSIONS, sealed_from="spend_hourly"),
    RollupSpec("spend_daily_org", "day", ORG_DIMENSIONS, sealed_from="spend_hourly_org"),
    RollupSpec("spend_daily_users", "day", USER_DIMENSIONS, sealed_from="spend_hourly"),
    RollupSpec(
        "spend_pairs_daily",
        "day",
        ROLLUP_DIMENSIONS,
        pairs=_pairs_apart(),
        sealed_from="spend_daily",
    ),
    RollupSpec("spend_daily", "day", ROLLUP_DIMENSIONS, sealed_from="spend_hourly"),
    RollupSpec("spend_ids_hourly", "hour", ROLLUP_DIMENSIONS, ids=True),
    RollupSpec(
        "spend_ids_daily", "day", ROLLUP_DIMENSIONS, ids=True, sealed_from="spend_ids_hourly"
    ),
)
SPECS = {spec.name: spec for spec in ROLLUP_SPECS}
# Sealing order: a rollup after the one it is summed from.
SEALED_SPECS = tuple(
    sorted((s for s in ROLLUP_SPECS if s.sealed_from), key=lambda s: s.sealed_from == "spend_daily")
)


def _rollup(spec: RollupSpec) -> Table:
    """A rollup table: ``bucket`` (the hour or day, UTC) and its dimensions as the key (for a
    facet rollup: ``dimension``, ``bucket`` and ``value``; for a pair rollup ``dimension`` is
    ``"first,second"``, and ``value``, ``value_2`` are theirs; an id rollup keys by
    ``dimension``, ``bucket``, the ids and its dimensions)."""
    keys: list[Column[Any]]
    if spec.ids:
        keys = [Column("dimension", Text, primary_key=True)]
        keys.append(Column("bucket", UTCDateTime, primary_key=True))
        keys += [Column(d, Text, primary_key=True) for d in (*ID_FIELDS, *spec.dimensions)]
    elif spec.facets or spec.pairs:
        values = ("value", "value_2") if spec.pairs else ("value",)
        keys = [Column(n, Text, primary_key=True) for n in ("dimension", *values)]
        keys.insert(1, Column("bucket", UTCDateTime, primary_key=True))
    else:
        keys = [Column("bucket", UTCDateTime, primary_key=True)]
        keys += [Column(d, Text, primary_key=True) for d in spec.dimensions]
    return Table(
        spec.name,
        metadata,
        *keys,
        *(Column(m, BigInteger, nullable=False) for m in ROLLUP_MEASURES),
        sqlite_with_rowid=False,  # SQLite keeps the rows in key order: a time range is one scan
    )


rollup_tables = {spec.name: _rollup(spec) for spec in ROLLUP_SPECS}
spend_hourly = rollup_tables["spend_hourly"]
spend_daily = rollup_tables["spend_daily"]

# How far each daily rollup is complete (``store.rollups.RollupWriter.seal``): every day
# before ``until``. One row per sealing unit: a rollup, or one pair of the pair rollup
# (``store.rollups.unit_name``).
spend_sealed = Table(
    "spend_sealed",
    metadata,
    Column("name", Text, primary_key=True),
    Column("until", UTCDateTime, nullable=False),
)

# A token per slot (an hour or day) of each rollup, new whenever the writer changes that slot's
# rows (a fold, late events, sealing, a rebuild): a copy in ``store.rollup_cache`` whose token
# still matches holds exactly the rows the database holds.
spend_marks = Table(
    "spend_marks",
    metadata,
    Column("name", Text, primary_key=True),
    Column("bucket", UTCDateTime, primary_key=True),
    Column("token", Text, nullable=False),
)

# The newest events' hourly sums (every dimension and id), appended in each insert transaction and
# moved into the rollups by ``store.rollups.RollupWriter.fold``; rows are not unique.
spend_pending = Table(
    "spend_pending",
    metadata,
    Column("bucket", UTCDateTime, nullable=False),
    *(Column(d, Text, nullable=False) for d in ROLLUP_DIMENSIONS),
    *(Column(m, BigInteger, nullable=False) for m in ROLLUP_MEASURES),
    *(Column(d, Text, nullable=False, server_default="") for d in ID_FIELDS),
    Index(None, "bucket"),
)


# One row per ``spendgate.budgets.model.Budget`` (see ``store.budgets``): the limit as a decimal
# string (exact on every engine), the scope and thresholds as JSON text, names unique.
budgets = Table(
    "budgets",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("scope", JSONText, nullable=False),
    _text("metric", nullable=False),
    _text("window", nullable=False),
    _text("limit", nullable=False),
    _text("action", nullable=False),
    _text("downgrade_to"),
    Column("thresholds", JSONText, nullable=False),
    _text("timezone", nullable=False),
    _flag("enabled"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


def row_to_event(row: Mapping[Any, Any]) -> Event:
    """The ``Event`` a row of ``events`` (any mapping of column -> value) holds."""
    values = dict(row)
    for field_name, column in RENAMED.items():
        values[field_name] = values.pop(column)
    return Event(**values)
