"""The spend rollups (``schema.ROLLUP_SPECS``), kept in SQL by the event writer.

``Store.insert_events`` calls ``RollupWriter.roll_up(connection, event_ids)`` in the transaction
that inserts the batch, with the ids of the events that batch really added (a replayed
duplicate is skipped by the insert, so it must not be counted twice). Each rollup then takes one
``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` over those rows: the database does the
grouping and the sums, the gateway process spends no Python time per event on it.

``choose(grain, fields)`` picks the smallest rollup of a grain that holds every field.

The measure expressions (``event_measures``) are shared with the raw-event spend queries in
``store.spend``, so a rollup row and a query over the same events agree to the picodollar:

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

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Dialect,
    Insert,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnClause

from spendgate.store.schema import (
    LATENCY_BOUNDS_MS,
    LATENCY_BUCKETS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    ROLLUP_SPECS,
    RollupSpec,
    events,
    rollup_tables,
)

MICRO = 1_000_000  # picodollars per microdollar
_ID_CHUNK = 900  # ids per IN (…) list: far below any engine's parameter limit


def truncate(
    ts: ColumnElement[Any] | Column[Any], unit: str, dialect: str, type_: Any = None
) -> ColumnClause[Any]:
    """SQL for ``ts`` cut down to the start of its hour, day, ISO week (Monday) or month
    (UTC), in the engine's own
    datetime form (SQLite: ``YYYY-MM-DD HH:MM:SS.ffffff`` text; PostgreSQL: timestamptz),
    typed ``type_`` for results."""
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
    return func.sum(case((condition, 1), else_=0))


def pusd() -> ColumnElement[int]:
    """``events.cost_pusd`` as the plain BIGINT it is (no Decimal conversion of operands)."""
    return type_coerce(events.c.cost_pusd, BigInteger())


def _money(condition: ColumnElement[bool] | None = None) -> tuple[ColumnElement[Any], ...]:
    cost = pusd()
    parts: tuple[ColumnElement[Any], ...] = (cost // MICRO, cost % MICRO)  # truncating
    if condition is not None:
        parts = tuple(case((condition, part), else_=None) for part in parts)
    return tuple(func.coalesce(func.sum(part), 0) for part in parts)


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
    cost_micro, cost_pico = _money()
    error_micro, error_pico = _money(failed)
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
    """The per-connection scratch table a batch is first rolled up into (hour, every dimension):
    the rollups are then filled from its few rows instead of each re-reading the events."""
    bucket_type = Text() if dialect.name == "sqlite" else DateTime(timezone=True)
    return Table(
        "spend_stage",
        MetaData(),
        Column("bucket", bucket_type, nullable=False),
        *(Column(d, Text, nullable=False) for d in ROLLUP_DIMENSIONS),
        *(Column(m, BigInteger, nullable=False) for m in ROLLUP_MEASURES),
        prefixes=["TEMPORARY"],
    )


def _stage(stage: Table, dialect: str, where: ColumnElement[bool]) -> Insert:
    """``INSERT INTO spend_stage SELECT <hourly rollup of the events matching where>``."""
    dims = [func.coalesce(events.c[d], "").label(d) for d in ROLLUP_DIMENSIONS]
    measures = [expr.label(name) for name, expr in event_measures().items()]
    bucket = truncate(events.c.ts, "hour", dialect).label("bucket")
    grouped = select(bucket, *dims, *measures).where(where)
    grouped = grouped.group_by(*(literal_column(str(i + 1)) for i in range(1 + len(dims))))
    return stage.insert().from_select(["bucket", *ROLLUP_DIMENSIONS, *ROLLUP_MEASURES], grouped)


def _upsert(spec: RollupSpec, stage: Table, dialect: str) -> Insert:
    """``INSERT INTO <rollup> SELECT <the stage regrouped>`` (conflict clause apart)."""
    bucket = stage.c.bucket if spec.grain == "hour" else truncate(stage.c.bucket, "day", dialect)
    dims = [stage.c[d] for d in spec.dimensions]
    measures = [func.sum(stage.c[m]).label(m) for m in ROLLUP_MEASURES]
    grouped = select(bucket.label("bucket"), *dims, *measures).where(true())  # WHERE: see SQLite
    grouped = grouped.group_by(*(literal_column(str(i + 1)) for i in range(1 + len(dims))))
    columns = ["bucket", *spec.dimensions, *ROLLUP_MEASURES]
    return rollup_tables[spec.name].insert().from_select(columns, grouped)


def _on_conflict(spec: RollupSpec) -> str:
    key = ", ".join(("bucket", *spec.dimensions))
    sets = ", ".join(f"{m} = {spec.name}.{m} + excluded.{m}" for m in ROLLUP_MEASURES)
    return f" ON CONFLICT ({key}) DO UPDATE SET {sets}"


_Statement = tuple[str, list[str] | None, dict[str, Any]]  # SQL, parameter order, constants


class RollupWriter:
    """Runs the rollup upserts on one engine's dialect, with statements compiled once per id
    count (counts are padded to a power of two, so a handful of statements serve every batch).

    Per batch: create the stage if this connection has none, stage the batch's events (one
    pass over them), upsert every rollup from the stage, empty the stage."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        stage = stage_table(dialect)
        self._stage = stage
        self._prologue = str(CreateTable(stage, if_not_exists=True).compile(dialect=dialect))
        self._upserts = [
            self._compile(_upsert(spec, stage, dialect.name), spec) for spec in ROLLUP_SPECS
        ]
        self._clear = str(stage.delete().compile(dialect=dialect))
        self._staging: dict[int | None, _Statement] = {}

    def _compile(self, statement: Insert, spec: RollupSpec | None = None) -> _Statement:
        compiled = statement.compile(dialect=self._dialect)
        order = None if compiled.positiontup is None else list(compiled.positiontup)
        sql = str(compiled) + ("" if spec is None else _on_conflict(spec))
        return sql, order, compiled.params

    def _staging_for(self, size: int | None) -> _Statement:
        if size not in self._staging:
            if size is None:
                where: ColumnElement[bool] = true()
            else:
                where = events.c.event_id.in_([bindparam(f"id_{i}") for i in range(size)])
            self._staging[size] = self._compile(_stage(self._stage, self._dialect.name, where))
        return self._staging[size]

    def _run(self, connection: Connection, size: int | None, ids: Sequence[str]) -> None:
        connection.exec_driver_sql(self._prologue)
        connection.exec_driver_sql(self._clear)  # a failed earlier transaction may have left rows
        ids_by_name = {f"id_{i}": v for i, v in enumerate(ids)}
        for sql, order, constants in (self._staging_for(size), *self._upserts):
            values = {**constants, **ids_by_name}
            params = values if order is None else tuple(values[name] for name in order)
            connection.exec_driver_sql(sql, params)
        connection.exec_driver_sql(self._clear)

    def roll_up(self, connection: Connection, event_ids: Collection[str]) -> None:
        """Add the stored events ``event_ids`` (each counted once) to every rollup."""
        ids = sorted(set(event_ids))
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            size = min(_ID_CHUNK, 1 << (len(chunk) - 1).bit_length())
            padded = chunk + [chunk[0]] * (size - len(chunk))  # IN ignores the repeats
            self._run(connection, size, padded)

    def backfill(self, connection: Connection) -> None:
        """Roll up every stored event (into empty rollups)."""
        self._run(connection, None, ())


def choose(grain: str, fields: Collection[str]) -> RollupSpec | None:
    """The first rollup of ``grain`` (smallest first: ``ROLLUP_SPECS`` order) that holds every
    one of ``fields``."""
    for spec in ROLLUP_SPECS:
        if spec.grain == grain and set(fields) <= set(spec.dimensions):
            return spec
    return None


def stored_ids(connection: Connection, event_ids: Collection[str]) -> set[str]:
    """Which of ``event_ids`` are already in ``events``."""
    found: set[str] = set()
    ids = list(event_ids)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        query = select(events.c.event_id).where(events.c.event_id.in_(chunk))
        found.update(connection.execute(query).scalars())
    return found


def backfill(connection: Connection) -> None:
    """Roll up every stored event (into empty rollups: used by the migration and ``rebuild``)."""
    RollupWriter(connection.dialect).backfill(connection)


def rebuild(connection: Connection) -> None:
    """Empty both rollups and roll up every stored event again."""
    for table in rollup_tables.values():
        connection.execute(table.delete())
    backfill(connection)
