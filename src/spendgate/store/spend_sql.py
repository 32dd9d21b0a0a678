"""The SQL of one part of a spend question (``store.spend``): what the part is asked
(``Ask``), and the ``SELECT … GROUP BY`` that sums it from a rollup, from ``spend_pending`` or
from raw events, using the same aggregate expressions as the rollups
(``store.rollup_sql.event_measures``), so every source gives the same sums.

A facet or pair rollup keeps a field's values in ``value`` (``value_2``) of the rows whose
``dimension`` names it (``layout``); ``store.rollup_cache`` reads its copies of them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Table,
    bindparam,
    cast,
    exists,
    func,
    or_,
    select,
)

from spendgate.store.rollup_sql import event_measures, money_sums, truncate
from spendgate.store.schema import (
    ID_FIELDS,
    ID_MEASURES,
    LATENCY_BUCKETS,
    ROLLUP_MEASURES,
    SPECS,
    events,
    pair_of,
    rollup_tables,
    spend_marks,
    spend_pending,
)
from spendgate.store.spend_ids import id_measures
from spendgate.store.types import UTCDateTime

# The additive measures without the latency ones (``latency=False``).
ADDITIVE_WITHOUT_LATENCY = tuple(
    m for m in ROLLUP_MEASURES if m not in ("latency_count", "latency_sum_ms", *LATENCY_BUCKETS)
)


# Extra sums a ``distinct`` query returns.
DISTINCT_MEASURES = tuple(name for field in ID_FIELDS for name in id_measures(field))


@dataclass(frozen=True, slots=True)
class Ask:
    """What each part's query groups by, filters on and returns. ``ids``: some of
    ``ID_FIELDS``: the part's requests and spend per group and id (of the id rollups: of one
    field; of the raw edges and pending rows, ``split``: of each, ``''`` for none; the rows
    with any), not its measures. ``through``: of a question, the ``ID_FIELDS`` it names
    (grouped by, or filtered to no id), whose rollup parts are read through the id rollups'
    sheets (``store.spend._reads``). ``sheet``: of a part read from an id rollup, the sheet
    (``ID_SHEETS``: the rows that carry these ids); ``()``: from another rollup. ``among``:
    a field and the values (``''``: missing) whose rows are kept. ``narrow``: only the requests
    and spend (``ID_MEASURES``): what ranks groups by cost or requests."""

    group_by: tuple[str, ...]
    filters: tuple[tuple[str, str], ...]
    grain: str | None
    distinct: bool
    latency: bool
    ids: tuple[str, ...] = ()
    through: tuple[str, ...] = ()
    sheet: tuple[str, ...] = ()
    among: tuple[str, tuple[str, ...]] | None = None
    narrow: bool = False

    @property
    def named(self) -> set[str]:
        """The fields it groups or filters by."""
        among = () if self.among is None else (self.among[0],)
        return {*self.group_by, *(name for name, _ in self.filters), *among}

    @property
    def keys(self) -> tuple[str, ...]:
        """The fields a part's sums are keyed by (with the grain's slot)."""
        return (*self.group_by, *(field for field in self.ids if field not in self.group_by))

    @property
    def grouping(self) -> list[str]:
        """The columns of the answer's groups: ``group_by``, and ``slot`` with a grain."""
        return [*self.group_by, *(["slot"] if self.grain is not None else [])]

    @property
    def measures(self) -> tuple[str, ...]:
        if self.ids or self.narrow:
            return ID_MEASURES
        names = ROLLUP_MEASURES if self.latency else ADDITIVE_WITHOUT_LATENCY
        return (*names, *(DISTINCT_MEASURES if self.distinct else ()))


@lru_cache(maxsize=1)
def hour_state() -> Select[Any]:
    """An hour's token (of the hourly facet rollup: every fold that moves an event's rows
    changes its slot) and whether any pending row is of that hour, over the parameter
    ``hour``."""
    hour = bindparam("hour", type_=UTCDateTime())
    marked = spend_marks.c.name == "spend_facets_hourly"
    token = select(spend_marks.c.token).where(marked, spend_marks.c.bucket == hour)
    pending = select(spend_pending.c.bucket).where(spend_pending.c.bucket == hour)
    return select(token.scalar_subquery(), exists(pending))


@lru_cache(maxsize=256)
def part_query(dialect: str, source: str, table: str, ask: Ask) -> Select[Any]:
    """The SQL that sums a part read from ``source`` (``table``) for ``ask``, over the
    parameters ``start`` and ``end`` (built once per shape: building the expressions costs
    more than running the statement on a short raw edge)."""
    if source == "events":
        return _events_query(dialect, ask)
    return _rollup_query(source, table, ask, dialect)


def _start_end(column: Any) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """``column`` in ``[:start, :end)``."""
    start, end = (bindparam(name, type_=UTCDateTime()) for name in ("start", "end"))
    return column >= start, column < end


def _slot(table: Table, source: str, ask: Ask, dialect: str) -> list[ColumnElement[Any]]:
    """The slot column: the rollup's bucket, cut down to the asked grain when that is coarser
    (hours into days, days into weeks or months: the database groups them, not Python)."""
    if ask.grain is None:
        return []
    grain = "hour" if source in ("hour", "pending") else "day"
    if ask.grain == grain:
        return [table.c.bucket]
    return [truncate(table.c.bucket, ask.grain, dialect, type_=UTCDateTime()).label("slot")]


def _rollup_query(source: str, rollup: str, ask: Ask, dialect: str) -> Select[Any]:
    """A part read from ``spend_pending`` or a rollup: the rows in its range (of a facet or
    pair rollup, those of the field or pair named), grouped by the asked fields."""
    table = spend_pending if source == "pending" else rollup_tables[rollup]
    columns, where = _columns(table, ask)
    slot = _slot(table, source, ask, dialect)
    dims = [columns[name] for name in ask.keys]
    sums = [_int(func.sum(table.c[m])).label(m) for m in ask.measures]
    query = select(*dims, *slot, *sums).where(*where, *_start_end(table.c.bucket))
    if ask.ids and source == "pending":  # the rows that carry an id
        query = query.where(or_(*(columns[field] != "" for field in ask.ids)))
    for name, value in ask.filters:
        query = query.where(columns[name] == value)
    if ask.among is not None:
        query = query.where(columns[ask.among[0]].in_(ask.among[1]))
    return query.group_by(*slot, *dims) if slot or dims else query


def _columns(
    table: Table, ask: Ask
) -> tuple[dict[str, ColumnElement[Any]], list[ColumnElement[bool]]]:
    """Each asked field's column in ``table`` and the condition that picks its rows
    (``layout``)."""
    dimension, names = layout(table.name, ask)
    columns: dict[str, ColumnElement[Any]] = {f: table.c[n] for f, n in names.items()}
    return columns, [] if dimension is None else [table.c.dimension == dimension]


def layout(table: str, ask: Ask) -> tuple[str | None, dict[str, str]]:
    """Which rows of ``table`` hold the asked fields (the ``dimension`` of a facet, pair
    or id rollup; ``None``: every row) and the column holding each field. A facet or pair
    rollup keeps a field's values in ``value`` (``value_2``) of the rows whose ``dimension``
    names it; with no field named, the rows of ``source`` (every event has exactly one value
    of each dimension). An id rollup's sheet is ``ask.sheet``."""
    fields = ask.named
    spec = SPECS.get(table)
    if spec is not None and spec.ids:
        assert ask.sheet, "an id rollup is read by its sheet"
        return ",".join(ask.sheet), {name: name for name in (*fields, *ask.keys)}
    if spec is None or not (spec.facets or spec.pairs):
        return None, {name: name for name in (*fields, *ask.keys)}
    if len(fields) == 2:
        first, second = pair_of(fields)
        return f"{first},{second}", {first: "value", second: "value_2"}
    (dimension,) = fields or {"source"}
    return dimension, {dimension: "value"}


def _events_query(dialect: str, ask: Ask) -> Select[Any]:
    slot: list[ColumnElement[Any]] = []
    if ask.grain is not None:
        slot = [truncate(events.c.ts, ask.grain, dialect, type_=UTCDateTime()).label("slot")]
    # A missing value (NULL or '') as the rollups keep it, '': one row per key.
    dims = [func.coalesce(events.c[name], "").label(name) for name in ask.keys]
    every = event_measures()
    measures: list[ColumnElement[Any]] = [
        _int(every[n]).label(n) for n in ask.measures if n in every
    ]
    if ask.distinct:
        measures += _distinct_measures()
    query = select(*dims, *slot, *measures)
    query = query.where(*_start_end(events.c.ts))
    if ask.ids:
        query = query.where(or_(*(_with_id(events.c[field]) for field in ask.ids)))
    for name, value in ask.filters:
        column = events.c[name]
        query = query.where(or_(column.is_(None), column == "") if value == "" else column == value)
    if ask.among is not None:
        query = query.where(func.coalesce(events.c[ask.among[0]], "").in_(ask.among[1]))
    return query.group_by(*slot, *dims) if slot or dims else query


def _with_id(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """The events that carry an id in ``column`` (an empty id is no id, as in the id
    rollups)."""
    return func.coalesce(column, "") != ""


def _distinct_measures() -> list[ColumnElement[Any]]:
    out: list[ColumnElement[Any]] = []
    for field in ID_FIELDS:
        column = events.c[field]
        plural, micro_name, pico_name = id_measures(field)
        out.append(_int(func.count(func.nullif(column, "").distinct())).label(plural))
        micro, pico = money_sums(_with_id(column))
        out += [_int(micro).label(micro_name), _int(pico).label(pico_name)]
    return out


def _int(total: ColumnElement[Any]) -> ColumnElement[int]:
    """A sum as a plain BIGINT, never NULL (PostgreSQL's SUM(bigint) is numeric: slower to
    fetch and convert; every sum here is far below the BIGINT limit by construction)."""
    return cast(func.coalesce(total, 0), BigInteger)
