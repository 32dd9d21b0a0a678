"""Spend sums over a time range: from the rollups where they can answer, raw events otherwise.

``sum_spend`` returns additive sums per group and time slot, as one Arrow table (every part
added up, column-wise); deriving ratios and percentiles from them is ``spendgate.analytics``'
job (pure).

How a range ``[since, until)`` is answered (``plan``):

- when every group-by and filter field is a rollup dimension and no distinct count is asked:
  whole days from a daily rollup (unless hourly slots are wanted), the whole hours around them
  from an hourly one, the rows still pending a fold (``spend_pending``) for all those whole
  hours, and the partial hours at either end from ``events``. Of each grain, the smallest
  rollup that can answer is read (``store.rollups.choose``): a facet rollup when the question
  names at most one field;
- otherwise (``session_id`` / ``workflow_id`` named, or ``distinct=True``) all from ``events``,
  using the same aggregate expressions (``store.rollup_sql.event_measures``).

Each rollup part is summed from ``store.rollup_cache`` when one is given (its columnar copies
of the slots, checked against the writer's tokens in the same snapshot), else in SQL.

Each part is one ``SELECT … GROUP BY``, all in one snapshot of the database (SQLite's read
transaction; ``REPEATABLE READ`` on PostgreSQL), so a fold running meanwhile is seen entirely or
not at all. The parts' sums are added up (they are additive) in Arrow, not row by row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    cast,
    func,
    or_,
    select,
)

from spendgate.store.rollup_cache import RollupCache, sum_by, sums_schema
from spendgate.store.rollup_sql import event_measures, money_sums, truncate
from spendgate.store.rollups import choose, held_until, sealed_until
from spendgate.store.schema import (
    LATENCY_BUCKETS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    ROLLUP_SPECS,
    events,
    pair_of,
    rollup_tables,
    spend_pending,
)
from spendgate.store.types import UTCDateTime, floor_time

# Every field a spend query may group or filter by.
DIMENSIONS = (*ROLLUP_DIMENSIONS, "session_id", "workflow_id")
GRAINS = ("hour", "day", "week", "month")
# The additive measures without the latency ones (``latency=False``).
ADDITIVE_WITHOUT_LATENCY = tuple(
    m for m in ROLLUP_MEASURES if m not in ("latency_count", "latency_sum_ms", *LATENCY_BUCKETS)
)
# Extra sums a ``distinct`` query returns (raw events only).
DISTINCT_MEASURES = (
    "sessions",
    "session_cost_micro",
    "session_cost_pico",
    "workflows",
    "workflow_cost_micro",
    "workflow_cost_pico",
)
SPECS = {spec.name: spec for spec in ROLLUP_SPECS}
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a range and where it is read from: ``events``, ``pending`` (the rows not
    yet folded, hourly), or a rollup of grain ``hour`` or ``day`` (``table``: the one
    ``store.rollups.choose`` picked)."""

    source: str
    start: datetime
    end: datetime
    table: str = "events"
    sign: int = 1  # -1: subtract these sums (see ``plan``)


def plan(since: datetime, until: datetime, *, rollups: bool, days: bool) -> list[Part]:
    """The parts that answer ``[since, until)``: see the module docstring. ``days`` allows
    the daily rollups; ``rollups`` allows any rollup.

    Each end is taken to its nearest hour (then, inside those, to the nearest day): a range
    starting at 10:05 reads the whole 10:00 hour from a rollup and subtracts the five raw
    minutes (a part with ``sign`` -1), instead of adding 55 raw minutes. So an end never costs
    more than half an hour of raw events and twelve hourly slots."""
    if not rollups:
        return [Part("events", since, until)]
    low_hour, high_hour = _nearest(since, _HOUR), _nearest(until, _HOUR)
    if low_hour >= high_hour:
        return [Part("events", since, until)]
    parts = _between("events", since, low_hour)
    parts.append(Part("pending", low_hour, high_hour, "spend_pending"))
    low_day, high_day = _nearest(low_hour, _DAY), _nearest(high_hour, _DAY)
    if days and low_day < high_day:
        parts += _between("hour", low_hour, low_day)
        parts.append(Part("day", low_day, high_day))
        parts += _between("hour", high_day, high_hour)
    else:
        parts.append(Part("hour", low_hour, high_hour))
    return parts + _between("events", high_hour, until)


def _nearest(moment: datetime, step: timedelta) -> datetime:
    floor = floor_time(moment, step)
    return floor if moment - floor <= step / 2 else floor + step


def _between(source: str, have: datetime, want: datetime) -> list[Part]:
    """What turns a boundary at ``have`` into one at ``want`` (at the start of a range; at
    its end the arguments swap): ``source`` over the gap, added if ``have`` is earlier,
    subtracted if later."""
    if have < want:
        return [Part(source, have, want)]
    if have > want:
        return [Part(source, want, have, sign=-1)]
    return []


@dataclass(frozen=True, slots=True)
class Ask:
    """What each part's query groups by, filters on and returns."""

    group_by: tuple[str, ...]
    filters: tuple[tuple[str, str], ...]
    grain: str | None
    distinct: bool
    latency: bool

    @property
    def measures(self) -> tuple[str, ...]:
        names = ROLLUP_MEASURES if self.latency else ADDITIVE_WITHOUT_LATENCY
        return (*names, *(DISTINCT_MEASURES if self.distinct else ()))


def sum_spend(
    engine: Engine,
    *,
    since: datetime,
    until: datetime,
    group_by: Sequence[str] = (),
    filters: Mapping[str, str] | None = None,
    grain: str | None = None,
    distinct: bool = False,
    latency: bool = True,
    cache: RollupCache | None = None,
) -> pa.Table:
    """Additive spend sums per group and ``grain`` slot over ``[since, until)``: a table laid
    out by ``rollup_cache.sums_schema`` (a string column per ``group_by`` field, null for a
    missing value; ``slot``, the slot's UTC start, with a grain; an int64 column per measure:
    every ``ROLLUP_MEASURES`` name, or ``ADDITIVE_WITHOUT_LATENCY`` with ``latency=False``,
    then ``DISTINCT_MEASURES`` with ``distinct``), one row per group and slot in no particular
    order. Groups left with no requests (they only had events outside the range) are left
    out. ``grain`` (``hour``, ``day``, ``week``, ``month`` or ``None``): every part's slots are
    cut to it in SQL (hourly and daily rollups nest in every coarser grain).
    Distinct counts are exact for the ``grain`` given (do not merge them across slots).
    ``latency=False`` leaves out the latency sums and histogram (about half the columns).
    ``cache``: the parts it ``covers`` are summed from its columnar copies (same answers),
    once it holds their slots.
    Fields must be in ``DIMENSIONS``; a filter value ``""`` matches a missing value."""
    filters = dict(filters or {})
    unknown = sorted((set(group_by) | set(filters)) - set(DIMENSIONS))
    if unknown or (grain is not None and grain not in GRAINS):
        raise ValueError(f"not a spend field or grain: {unknown or grain}")
    ask = Ask(tuple(group_by), tuple(sorted(filters.items())), grain, distinct, latency)
    fields = set(group_by) | set(filters)
    rolled = not distinct and fields <= set(ROLLUP_DIMENSIONS)
    parts = plan(since, until, rollups=rolled, days=grain != "hour")
    tables: list[pa.Table] = []
    summing: list[tuple[Future[pa.Table], Part]] = []  # cached parts, summed meanwhile
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":  # one snapshot for every part
            connection.execution_options(isolation_level="REPEATABLE READ")
        sealed = sealed_until(connection) if any(p.source == "day" for p in parts) else {}
        for planned in parts:
            for part in _with_table(planned, fields, sealed):
                if cache is not None and cache.covers(part.table, part.start, part.end):
                    future = _cached(connection, cache, part, ask)
                    if future is not None:
                        summing.append((future, part))
                        continue
                tables.append(_run(connection, part, ask))
    tables += [_renamed(future.result(), part, ask) for future, part in summing]
    return _added(tables, ask)


def _added(tables: list[pa.Table], ask: Ask) -> pa.Table:
    """The parts' sums added up per group and slot (missing values, ``''`` in the rollups
    and NULL in ``events``, as one null key), groups without requests dropped."""
    keys = [*ask.group_by, *(["slot"] if ask.grain is not None else [])]
    schema = sums_schema(ask.group_by, ask.grain is not None, ask.measures)
    whole = pa.concat_tables(tables) if tables else schema.empty_table()
    whole = pa.Table.from_arrays(sum_by(whole, keys, ask.measures).columns, schema=schema)
    whole = whole.filter(pc.not_equal(whole["requests"], 0))
    for index, field in enumerate(ask.group_by):
        column = whole[field]
        whole = whole.set_column(index, field, pc.if_else(pc.equal(column, ""), None, column))
    return whole


def _cached(
    connection: Connection, cache: RollupCache, part: Part, ask: Ask
) -> Future[pa.Table] | None:
    """``part`` summed by ``cache`` (``RollupCache.group``: ``_renamed`` makes the result a
    part's sums); ``None`` if the cache is still loading its slots."""
    dimension, columns = _layout(part, ask)
    return cache.group(
        connection,
        part.table,
        part.start,
        part.end,
        dimension=dimension,
        group_by=[columns[name] for name in ask.group_by],
        filters=[(columns[name], value) for name, value in ask.filters],
        grain=ask.grain,
        measures=ask.measures,
    )


def _renamed(found: pa.Table, part: Part, ask: Ask) -> pa.Table:
    """The cache's sums of ``part`` (columns named as in its table) as the part's sums."""
    names = [*ask.group_by, *found.column_names[len(ask.group_by) :]]
    return _signed(found.rename_columns(names), part, ask)


def _with_table(part: Part, fields: set[str], sealed: dict[str, datetime]) -> list[Part]:
    """``part`` with the rollup that answers it. A daily rollup holds only sealed days, so a
    day part is split there: the days after it come from the hourly rollup."""
    if part.source in ("events", "pending"):
        return [part]
    spec = choose(part.source, fields)
    assert spec is not None  # the full rollups hold every ROLLUP_DIMENSIONS field
    if spec.sealed_from is None:
        return [replace(part, table=spec.name)]
    until = held_until(sealed, spec, fields)
    hourly = choose("hour", fields)
    assert hourly is not None
    if part.end <= until:
        return [replace(part, table=spec.name)]
    if part.start >= until:
        return [replace(part, source="hour", table=hourly.name)]
    return [
        replace(part, end=until, table=spec.name),
        replace(part, source="hour", start=until, table=hourly.name),
    ]


def _run(connection: Connection, part: Part, ask: Ask) -> pa.Table:
    dialect = connection.dialect.name
    if part.source == "events":
        query = _events_query(dialect, part, ask)
    else:
        query = _rollup_query(part, ask, dialect)
    schema = sums_schema(ask.group_by, ask.grain is not None, ask.measures)
    rows = connection.execute(query).all()  # the columns of ``schema``, in its order
    columns = zip(*rows, strict=True) if rows else [()] * len(schema)
    arrays = [pa.array(c, field.type) for c, field in zip(columns, schema, strict=True)]
    for index in range(len(ask.group_by)):  # NULL (missing, in ``events``) as in the rollups
        arrays[index] = pc.fill_null(arrays[index], "")
    return _signed(pa.table(arrays, schema=schema), part, ask)


def _signed(table: pa.Table, part: Part, ask: Ask) -> pa.Table:
    """``part``'s sums, negated for a subtracted part."""
    if part.sign > 0:
        return table
    start = table.num_columns - len(ask.measures)
    for index in range(start, table.num_columns):
        table = table.set_column(index, table.field(index), pc.negate(table[index]))
    return table


def _slot(table: Table, part: Part, ask: Ask, dialect: str) -> list[ColumnElement[Any]]:
    """The slot column: the rollup's bucket, cut down to the asked grain when that is coarser
    (hours into days, days into weeks or months: the database groups them, not Python)."""
    if ask.grain is None:
        return []
    grain = "hour" if part.source in ("hour", "pending") else "day"
    if ask.grain == grain:
        return [table.c.bucket]
    return [truncate(table.c.bucket, ask.grain, dialect, type_=UTCDateTime()).label("slot")]


def _rollup_query(part: Part, ask: Ask, dialect: str) -> Select[Any]:
    """A part read from ``spend_pending`` or a rollup: the rows in its range (of a facet or
    pair rollup, those of the field or pair named), grouped by the asked fields."""
    table = spend_pending if part.source == "pending" else rollup_tables[part.table]
    columns, where = _columns(table, part, ask)
    slot = _slot(table, part, ask, dialect)
    dims = [columns[name] for name in ask.group_by]
    sums = [_int(func.sum(table.c[m])).label(m) for m in ask.measures]
    query = select(*dims, *slot, *sums).where(
        *where, table.c.bucket >= part.start, table.c.bucket < part.end
    )
    for name, value in ask.filters:
        query = query.where(columns[name] == value)
    return query.group_by(*slot, *dims) if slot or dims else query


def _columns(
    table: Table, part: Part, ask: Ask
) -> tuple[dict[str, ColumnElement[Any]], list[ColumnElement[bool]]]:
    """Each asked field's column in ``table`` and the condition that picks its rows
    (``_layout``)."""
    dimension, names = _layout(part, ask)
    columns: dict[str, ColumnElement[Any]] = {f: table.c[n] for f, n in names.items()}
    return columns, [] if dimension is None else [table.c.dimension == dimension]


def _layout(part: Part, ask: Ask) -> tuple[str | None, dict[str, str]]:
    """Which rows of ``part``'s table hold the asked fields (the ``dimension`` of a facet or
    pair rollup; ``None``: every row) and the column holding each field. A facet or pair
    rollup keeps a field's values in ``value`` (``value_2``) of the rows whose ``dimension``
    names it; with no field named, the rows of ``source`` (every event has exactly one value
    of each dimension)."""
    fields = {*ask.group_by, *(name for name, _ in ask.filters)}
    spec = SPECS.get(part.table)
    if spec is None or not (spec.facets or spec.pairs):
        return None, {name: name for name in fields}
    if len(fields) == 2:
        first, second = pair_of(fields)
        return f"{first},{second}", {first: "value", second: "value_2"}
    (dimension,) = fields or {"source"}
    return dimension, {dimension: "value"}


def _events_query(dialect: str, part: Part, ask: Ask) -> Select[Any]:
    slot: list[ColumnElement[Any]] = []
    if ask.grain is not None:
        slot = [truncate(events.c.ts, ask.grain, dialect, type_=UTCDateTime()).label("slot")]
    dims = [events.c[name] for name in ask.group_by]
    every = event_measures()
    measures: list[ColumnElement[Any]] = [
        _int(every[n]).label(n) for n in ask.measures if n in every
    ]
    if ask.distinct:
        measures += _distinct_measures()
    query = select(*dims, *slot, *measures)
    query = query.where(events.c.ts >= part.start, events.c.ts < part.end)
    for name, value in ask.filters:
        column = events.c[name]
        query = query.where(or_(column.is_(None), column == "") if value == "" else column == value)
    return query.group_by(*slot, *dims) if slot or dims else query


def _distinct_measures() -> list[ColumnElement[Any]]:
    out: list[ColumnElement[Any]] = []
    for name, plural in (("session", "sessions"), ("workflow", "workflows")):
        column = events.c[f"{name}_id"]
        out.append(_int(func.count(column.distinct())).label(plural))
        micro, pico = money_sums(column.is_not(None))
        out += [_int(micro).label(f"{name}_cost_micro"), _int(pico).label(f"{name}_cost_pico")]
    return out


def _int(total: ColumnElement[Any]) -> ColumnElement[int]:
    """A sum as a plain BIGINT, never NULL (PostgreSQL's SUM(bigint) is numeric: slower to
    fetch and convert; every sum here is far below the BIGINT limit by construction)."""
    return cast(func.coalesce(total, 0), BigInteger)
