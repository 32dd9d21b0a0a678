"""The SQL of the spend rollups: the measure expressions over ``events`` (shared with the
raw-event spend queries in ``store.spend``, so a rollup row and a query over the same events
agree to the picodollar), and the statements ``store.rollups.RollupWriter`` runs to stage, fold
and seal them.

- money is summed as two integers: Σ ``cost_pusd / 10**6`` (whole microdollars, truncated) and
  Σ ``cost_pusd % 10**6`` (the picodollar remainders). Both sums are exact and stay far from the
  BIGINT limit (the first reaches it at ~$9.2 trillion, the second after ~9 trillion events),
  where a plain SUM of picodollars overflows SQLite's 64-bit integers past ~$9.2 million;
- errors are calls whose status is not ``ok`` (error, partial, rejected); error cost is their
  spend (partial streams are billed);
- latency is a histogram with bounds ``LATENCY_BOUNDS_MS`` (additive, so percentiles can be
  estimated from any set of rollup rows).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Dialect,
    Insert,
    MetaData,
    Table,
    Text,
    and_,
    func,
    literal,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnClause

from spendgate.store.schema import (
    ID_FIELDS,
    ID_SHEETS,
    LATENCY_BOUNDS_MS,
    LATENCY_BUCKETS,
    PENDING_KEYS,
    ROLLUP_MEASURES,
    RollupSpec,
    events,
    rollup_tables,
    spend_pending,
)

MICRO = 1_000_000  # picodollars per microdollar


def truncate(
    ts: ColumnElement[Any] | Column[Any], unit: str, dialect: str, type_: Any = None
) -> ColumnClause[Any]:
    """SQL for ``ts`` cut down to the start of its hour, day, ISO week (Monday) or month
    (UTC), in the engine's own datetime form (SQLite: ``YYYY-MM-DD HH:MM:SS.ffffff`` text;
    PostgreSQL: timestamptz), typed ``type_`` for results."""
    name = ts.compile(compile_kwargs={"literal_binds": True})
    if dialect == "sqlite":
        sql = {
            "hour": f"substr({name}, 1, 13) || ':00:00.000000'",
            "day": f"substr({name}, 1, 10) || ' 00:00:00.000000'",
            "week": f"date({name}, 'weekday 0', '-6 days') || ' 00:00:00.000000'",
            "month": f"substr({name}, 1, 7) || '-01 00:00:00.000000'",
        }[unit]
        return literal_column(f"({sql})", type_)
    sql = f"(date_trunc('{unit}', {name} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    return literal_column(sql, type_)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """The rows matching ``condition``: an aggregate ``FILTER`` (SQLite 3.30+), which both
    engines evaluate far faster than ``SUM(CASE …)`` (the 16 histogram buckets took most of a
    raw edge's time on PostgreSQL that way)."""
    return func.count().filter(condition)


def pusd() -> ColumnElement[int]:
    """``events.cost_pusd`` as the plain BIGINT it is (no Decimal conversion of operands)."""
    return type_coerce(events.c.cost_pusd, BigInteger())


def money_sums(condition: ColumnElement[bool] | None = None) -> tuple[ColumnElement[Any], ...]:
    """Σ whole microdollars and Σ picodollar remainders of ``events.cost_pusd`` (of the rows
    matching ``condition``), each 0 when there is none."""
    cost = pusd()
    # Truncating division and remainder: the sum of the parts is exact.
    sums: list[ColumnElement[Any]] = [func.sum(cost // MICRO), func.sum(cost % MICRO)]
    if condition is not None:
        sums = [total.filter(condition) for total in sums]
    return tuple(func.coalesce(total, 0) for total in sums)


def latency_bucket_conditions() -> list[ColumnElement[bool]]:
    """One condition per histogram bucket on ``events.latency_ms`` (NULL matches none)."""
    latency = events.c.latency_ms
    lows = (None, *LATENCY_BOUNDS_MS)
    highs = (*LATENCY_BOUNDS_MS, None)
    conditions: list[ColumnElement[bool]] = []
    for low, high in zip(lows, highs, strict=True):
        parts = [latency >= low] if low is not None else []
        parts += [latency < high] if high is not None else [latency.is_not(None)]
        conditions.append(and_(*parts))
    return conditions


def event_measures() -> dict[str, ColumnElement[Any]]:
    """Each rollup measure as an aggregate over ``events`` rows (keys: ``ROLLUP_MEASURES``)."""
    failed = events.c.status != "ok"
    cost_micro, cost_pico = money_sums()
    error_micro, error_pico = money_sums(failed)
    measures: dict[str, ColumnElement[Any]] = {
        "requests": func.count(),
        "errors": _count_if(failed),
        "unpriced": _count_if(events.c.unpriced.is_(True)),
        **{
            name: func.coalesce(func.sum(events.c[name]), 0)
            for name in (
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_5m_tokens",
                "cache_write_1h_tokens",
            )
        },
        "cost_micro": cost_micro,
        "cost_pico": cost_pico,
        "error_cost_micro": error_micro,
        "error_cost_pico": error_pico,
        "latency_count": func.count(events.c.latency_ms),
        "latency_sum_ms": func.coalesce(func.sum(events.c.latency_ms), 0),
    }
    for name, condition in zip(LATENCY_BUCKETS, latency_bucket_conditions(), strict=True):
        measures[name] = _count_if(condition)
    assert tuple(measures) == ROLLUP_MEASURES
    return measures


def stage_table(dialect: Dialect) -> Table:
    """The per-connection scratch table a fold first gathers the pending rows into (hour, every
    dimension and id, summed): the rollups are then filled from its rows."""
    bucket_type = Text() if dialect.name == "sqlite" else DateTime(timezone=True)
    return Table(
        "spend_stage",
        MetaData(),
        Column("bucket", bucket_type, nullable=False),
        *(Column(d, Text, nullable=False) for d in PENDING_KEYS),
        *(Column(m, BigInteger, nullable=False) for m in ROLLUP_MEASURES),
        prefixes=["TEMPORARY"],
    )


def pend_statement(dialect: str, where: ColumnElement[bool]) -> Insert:
    """``INSERT INTO spend_pending SELECT <hourly sums of the events matching where>``."""
    dims = [func.coalesce(events.c[d], "").label(d) for d in PENDING_KEYS]
    measures = [expr.label(name) for name, expr in event_measures().items()]
    bucket = truncate(events.c.ts, "hour", dialect).label("bucket")
    grouped = select(bucket, *dims, *measures).where(where)
    grouped = grouped.group_by(*ordinals(1 + len(dims)))
    return spend_pending.insert().from_select(["bucket", *PENDING_KEYS, *ROLLUP_MEASURES], grouped)


def ordinals(count: int) -> list[ColumnElement[Any]]:
    """``1, 2, … count``: GROUP BY / ORDER BY the first ``count`` selected columns."""
    return [literal_column(str(i)) for i in range(1, count + 1)]


def move_statements(dialect: str) -> list[str]:
    """SQL that moves every pending row into the stage (summed per hour, dimensions and ids)."""
    dims = ", ".join(PENDING_KEYS)
    sums = ", ".join(f"SUM({m})" for m in ROLLUP_MEASURES)
    columns = f"bucket, {dims}, {', '.join(ROLLUP_MEASURES)}"
    grouped = f"SELECT bucket, {dims}, {sums} FROM {{source}} WHERE true GROUP BY bucket, {dims}"
    if dialect == "postgresql":  # rows another transaction adds meanwhile stay pending
        return [
            f"WITH moved AS (DELETE FROM spend_pending RETURNING {columns}) "
            f"INSERT INTO spend_stage ({columns}) {grouped.format(source='moved')}"
        ]
    # SQLite: the caller holds the write lock, so nothing is added between the two.
    return [
        f"INSERT INTO spend_stage ({columns}) {grouped.format(source='spend_pending')}",
        "DELETE FROM spend_pending",
    ]


def upsert_statements(
    spec: RollupSpec, source: Table, dialect: Dialect, *, bounded: bool = False
) -> list[str]:
    """``INSERT INTO <rollup> SELECT <source regrouped> ON CONFLICT DO UPDATE`` (one per
    dimension of a facet rollup, per pair of a pair rollup), rows in key order so concurrent
    folds cannot deadlock. ``source`` is the stage or a finer rollup (``sealed_from``);
    ``bounded``: only its rows in ``[:low, :high)`` (named parameters, see ``marker``)."""
    table = rollup_tables[spec.name]
    same = spec.grain == "hour" or source.name == "spend_daily"  # the source's grain is ours
    bucket = source.c.bucket if same else truncate(source.c.bucket, "day", dialect.name)
    measures = [func.sum(source.c[m]).label(m) for m in ROLLUP_MEASURES]
    # The key columns of the rollup, and for each statement the expressions that fill them
    # and the condition on the source's rows.
    shapes: list[tuple[list[ColumnElement[Any]], ColumnElement[bool]]]
    dims = [source.c[d] for d in spec.dimensions] if not (spec.facets or spec.pairs) else []
    if spec.ids:
        key: tuple[str, ...] = ("dimension", "bucket", *ID_FIELDS, *spec.dimensions)
        if "dimension" in source.c:  # the daily id rollup from the hourly one
            ids = [source.c[f] for f in ID_FIELDS]
            shapes = [([source.c.dimension, bucket, *ids, *dims], true())]
        else:  # from the stage: each sheet's rows, those that carry its ids
            shapes = [
                (
                    [literal(",".join(sheet)), bucket]
                    + [source.c[f] if f in sheet else literal("") for f in ID_FIELDS]
                    + dims,
                    and_(*(source.c[f] != "" for f in sheet)),
                )
                for sheet in ID_SHEETS
            ]
    elif spec.facets and "dimension" in source.c:  # daily facets from the hourly ones
        key = ("dimension", "bucket", "value")
        shapes = [([source.c.dimension, bucket, source.c.value], true())]
    elif spec.pairs:
        key = ("dimension", "bucket", "value", "value_2")
        shapes = [
            ([literal(f"{a},{b}"), bucket, source.c[a], source.c[b]], true()) for a, b in spec.pairs
        ]
    elif spec.facets:
        key = ("dimension", "bucket", "value")
        shapes = [([literal(d), bucket, source.c[d]], true()) for d in spec.dimensions]
    else:
        key = ("bucket", *spec.dimensions)
        shapes = [([bucket, *dims], true())]
    where: ColumnElement[bool] = true()  # a WHERE: SQLite's upsert needs one
    if bounded:
        low: ColumnElement[Any] = literal_column("__low__")  # markers go in after compiling
        high: ColumnElement[Any] = literal_column("__high__")
        where = and_(source.c.bucket >= low, source.c.bucket < high)
    sets = ", ".join(f"{m} = {spec.name}.{m} + excluded.{m}" for m in ROLLUP_MEASURES)
    out = []
    for keys, condition in shapes:
        grouped = select(*keys, *measures).where(where, condition)
        grouped = grouped.group_by(*ordinals(len(keys))).order_by(*ordinals(len(keys)))
        insert = table.insert().from_select([*key, *ROLLUP_MEASURES], grouped)
        sql = str(insert.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        for name in ("low", "high"):
            sql = sql.replace(f"__{name}__", marker(dialect, name))
        out.append(f"{sql} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")
    return out


def marker(dialect: Dialect, name: str) -> str:
    """A named parameter in the driver's own style (sqlite3 and psycopg take a dict)."""
    return f":{name}" if dialect.name == "sqlite" else f"%({name})s"


def source_of(spec: RollupSpec) -> Table:
    assert spec.sealed_from is not None
    return rollup_tables[spec.sealed_from]


def mark_statement(
    spec: RollupSpec,
    source: str,
    dialect: Dialect,
    *,
    days: bool,
    bounded: bool,
    of: str | None = None,
) -> str:
    """SQL that gives every slot of the rollup ``spec`` that ``source``'s rows fall in (the
    stage, or ``spend_marks`` itself: the slots of the rollup ``of`` that ``spec`` is sealed
    from) a new token in ``spend_marks`` (the ``:token`` parameter): ``days``: the slots are
    the days of ``source``'s hourly buckets; ``bounded``: only the ``source`` rows in
    ``[:low, :high)``. An id rollup's slots are those of the ``source`` rows with an id."""
    bucket = "bucket"
    if days:
        bucket = truncate(literal_column("bucket"), "day", dialect.name).name
    where = "true" if of is None else f"name = '{of}'"
    if of is None and spec.ids:  # the stage's rows that carry an id
        where += " AND (" + " OR ".join(f"{f} <> ''" for f in ID_FIELDS) + ")"
    if bounded:
        where += f" AND bucket >= {marker(dialect, 'low')} AND bucket < {marker(dialect, 'high')}"
    token = f"CAST({marker(dialect, 'token')} AS TEXT)"
    return (
        f"INSERT INTO spend_marks (name, bucket, token) SELECT CAST('{spec.name}' AS TEXT), "
        f"{bucket}, {token} FROM {source} WHERE {where} GROUP BY 2 "
        "ON CONFLICT (name, bucket) DO UPDATE SET token = excluded.token"
    )
