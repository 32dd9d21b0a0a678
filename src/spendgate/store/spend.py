"""Spend sums over a time range: from the rollups where they can answer, raw events otherwise.

``sum_spend`` returns additive sums (``SpendSums``) per group and time slot; merging slots into
the caller's buckets and deriving ratios and percentiles is ``spendgate.analytics``' job (pure).

How a range ``[since, until)`` is answered (``plan``):

- when every group-by and filter field is a rollup dimension and no distinct count is asked:
  whole days from ``spend_daily`` (unless hourly slots are wanted), the whole hours around them
  from ``spend_hourly``, and the partial hours at either end from ``events``;
- otherwise (``session_id`` / ``workflow_id`` named, or ``distinct=True``) all from ``events``,
  using the same aggregate expressions (``store.rollups.event_measures``).

Each part is one ``SELECT … GROUP BY``; the caller adds the parts up (sums are additive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    case,
    cast,
    func,
    or_,
    select,
)

from spendgate.store.rollups import choose, event_measures, pusd, truncate
from spendgate.store.schema import (
    LATENCY_BUCKETS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    events,
    rollup_tables,
)
from spendgate.store.types import UTCDateTime

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
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SpendSums:
    """Sums for one group (``keys``: values in group-by order, ``None`` for missing) and time
    slot (``slot``: an hour or day start, ``None`` without a grain). ``sums`` holds every
    ``ROLLUP_MEASURES`` entry, plus ``DISTINCT_MEASURES`` when asked for."""

    keys: tuple[str | None, ...]
    slot: datetime | None
    sums: dict[str, int]


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a range and where it is read from: ``events``, or a rollup of grain
    ``hour`` or ``day`` (``table``: the one ``store.rollups.choose`` picked)."""

    source: str
    start: datetime
    end: datetime
    table: str = "events"


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return moment - (moment - epoch) % step


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


def plan(since: datetime, until: datetime, *, rollups: bool, days: bool) -> list[Part]:
    """The parts that answer ``[since, until)``: see the module docstring. ``days`` allows
    ``spend_daily``; ``rollups`` allows either rollup."""
    if not rollups:
        return [Part("events", since, until)]
    first_hour, last_hour = _ceil(since, _HOUR), _floor(until, _HOUR)
    if first_hour >= last_hour:
        return [Part("events", since, until)]
    parts = [Part("events", since, first_hour)] if since < first_hour else []
    first_day, last_day = _ceil(first_hour, _DAY), _floor(last_hour, _DAY)
    if days and first_day < last_day:
        if first_hour < first_day:
            parts.append(Part("hour", first_hour, first_day))
        parts.append(Part("day", first_day, last_day))
        if last_day < last_hour:
            parts.append(Part("hour", last_day, last_hour))
    else:
        parts.append(Part("hour", first_hour, last_hour))
    if last_hour < until:
        parts.append(Part("events", last_hour, until))
    return parts


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
) -> list[SpendSums]:
    """Additive spend sums per group and ``grain`` slot, one entry per group, slot and part
    (see ``plan``): the caller merges equal keys. ``grain`` (``hour``, ``day``, ``week``,
    ``month`` or ``None``) is exact for raw events; rollup parts answer per hour or day (each
    inside one slot of any coarser grain), so re-bucket the slots. Distinct counts are exact
    for the ``grain`` given (do not merge them across slots). ``latency=False`` leaves out the
    latency sums and histogram (about half the columns: faster).
    Fields must be in ``DIMENSIONS``; a filter value ``""`` matches a missing value."""
    filters = dict(filters or {})
    unknown = sorted((set(group_by) | set(filters)) - set(DIMENSIONS))
    if unknown or (grain is not None and grain not in GRAINS):
        raise ValueError(f"not a spend field or grain: {unknown or grain}")
    ask = Ask(tuple(group_by), tuple(sorted(filters.items())), grain, distinct, latency)
    fields = set(group_by) | set(filters)
    rolled = not distinct and fields <= set(ROLLUP_DIMENSIONS)
    parts = [
        _with_table(p, fields) for p in plan(since, until, rollups=rolled, days=grain != "hour")
    ]
    out: list[SpendSums] = []
    with engine.connect() as connection:
        for part in parts:
            out.extend(_run(connection, part, ask))
    return out


def _with_table(part: Part, fields: set[str]) -> Part:
    if part.source == "events":
        return part
    spec = choose(part.source, fields)
    assert spec is not None  # the full rollups hold every ROLLUP_DIMENSIONS field
    return Part(part.source, part.start, part.end, spec.name)


def _run(connection: Connection, part: Part, ask: Ask) -> list[SpendSums]:
    if part.source == "events":
        query = _events_query(connection.dialect.name, part, ask)
    else:
        query = _rollup_query(rollup_tables[part.table], part, ask)
    names = ask.measures
    width = len(ask.group_by)
    out = []
    offset = 0 if ask.grain is None else 1
    for row in connection.execute(query):
        slot = row[0] if offset else None
        keys = tuple(value or None for value in row[offset : offset + width])
        out.append(SpendSums(keys, slot, dict(zip(names, row[offset + width :], strict=True))))
    return out


def _rollup_query(table: Table, part: Part, ask: Ask) -> Select[Any]:
    slot = [table.c.bucket] if ask.grain is not None else []
    dims = [table.c[name] for name in ask.group_by]
    sums = [_int(func.sum(table.c[m])).label(m) for m in ask.measures]
    query = select(*slot, *dims, *sums).where(
        table.c.bucket >= part.start, table.c.bucket < part.end
    )
    for name, value in ask.filters:
        query = query.where(table.c[name] == value)
    return query.group_by(*slot, *dims) if slot or dims else query


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
    query = select(*slot, *dims, *measures)
    query = query.where(events.c.ts >= part.start, events.c.ts < part.end)
    for name, value in ask.filters:
        column = events.c[name]
        query = query.where(or_(column.is_(None), column == "") if value == "" else column == value)
    return query.group_by(*slot, *dims) if slot or dims else query


def _distinct_measures() -> list[ColumnElement[Any]]:
    out: list[ColumnElement[Any]] = []
    cost = pusd()
    for name, plural in (("session", "sessions"), ("workflow", "workflows")):
        column = events.c[f"{name}_id"]
        carried = column.is_not(None)
        out.append(_int(func.count(column.distinct())).label(plural))
        micro = _int(func.sum(func.coalesce(_when(carried, cost // 1_000_000), 0)))
        pico = _int(func.sum(func.coalesce(_when(carried, cost % 1_000_000), 0)))
        out += [micro.label(f"{name}_cost_micro"), pico.label(f"{name}_cost_pico")]
    return out


def _int(total: ColumnElement[Any]) -> ColumnElement[int]:
    """A sum as a plain BIGINT, never NULL (PostgreSQL's SUM(bigint) is numeric: slower to
    fetch and convert; every sum here is far below the BIGINT limit by construction)."""
    return cast(func.coalesce(total, 0), BigInteger)


def _when(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((condition, value), else_=None)
