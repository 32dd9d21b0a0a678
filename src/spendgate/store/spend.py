"""Spend sums over a time range: from the rollups where they can answer, raw events otherwise.

``sum_spend`` returns additive sums per group and time slot, as one Arrow table (every part
added up, column-wise); deriving ratios and percentiles from them is ``spendgate.analytics``'
job (pure).

How a range ``[since, until)`` is answered (``plan``):

- whole days from a daily rollup (unless hourly slots are wanted), the whole hours around
  them from an hourly one, the rows still pending a fold (``spend_pending``) for all those
  whole hours, and the partial hours at either end from ``events``. Of each grain, the
  smallest rollup that can answer is read (``store.rollups.choose``): a facet rollup when the
  question names at most one field;
- when it names id fields (``session_id``, ``workflow_id``: grouped by, or filtered to no id),
  the same parts, a rollup part through the id rollups' sheets (``_sheet_reads``: the rows
  carrying exactly some of the ids, by inclusion and exclusion over the sheets of those ids,
  the other rollups being the sheet of none);
- a question filtered to one id reads its events, through their ``(id, ts)`` index, using
  the same aggregate expressions (``store.rollup_sql.event_measures``).

Distinct counts (``distinct=True``: sessions, workflows) of a question the rollups answer come
from the same parts of the id rollups (``spend_ids_*``, ``spend_pending``'s id columns, the
raw edges): requests and spend per group, slot and id, each part signed as above, counted by
``store.spend_ids`` (the biggest cached part: its rows as they are, their ids counted
meanwhile); an id the question names counts as its groups do (``_own_ids``).

Each rollup part is summed from ``store.rollup_cache`` when one is given (its columnar copies
of the slots, checked against the writer's tokens in the same snapshot), else in SQL. The
cache also keeps a raw edge's sums by every rollup field while its hour is unchanged, and
sums any later question over that edge from them in Arrow (``_read``).

Each part is one ``SELECT … GROUP BY`` (``store.spend_sql``), all in one snapshot of the
database (SQLite's read transaction; ``REPEATABLE READ`` on PostgreSQL), so a fold running
meanwhile is seen entirely or not at all. The parts' sums are added up (they are additive) in
Arrow, not row by row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from itertools import combinations

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine

from spendgate.store.engine import snapshot
from spendgate.store.rollup_cache import RollupCache
from spendgate.store.rollup_slots import fetched
from spendgate.store.rollups import choose, held_until, sealed_until
from spendgate.store.schema import ID_FIELDS, ROLLUP_DIMENSIONS
from spendgate.store.slot_sums import negated, sum_by, sums_schema
from spendgate.store.spend_ids import coded, count, distinct, id_measures, split, summed_at_ids
from spendgate.store.spend_sql import Ask, hour_state, layout, part_query
from spendgate.store.types import bucket_start, floor_time

# Every field a spend query may group or filter by.
DIMENSIONS = (*ROLLUP_DIMENSIONS, *ID_FIELDS)
GRAINS = ("hour", "day", "week", "month")
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

    @property
    def rolled(self) -> bool:
        """Whether it is read from a rollup (not from ``events`` or ``pending``)."""
        return self.source not in ("events", "pending")


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
    rank: Callable[[pa.Table, str], Collection[str] | None] | None = None,
) -> pa.Table:
    """Additive spend sums per group and ``grain`` slot over ``[since, until)``: a table laid
    out by ``slot_sums.sums_schema`` (a string column per ``group_by`` field, null for a
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
    ``rank``: for a question grouped by an id field (read through the id rollups), ``rank(
    sums, field)`` gives the values of the field (``''``: no id) whose groups are wanted, from
    the requests and spend alone (``ID_MEASURES``: two of the thirty-odd columns) per group
    and slot, summed first in the same snapshot; the sums returned are those groups' (``None``:
    every group). A top-100 question then sums every measure for a hundred ids, not for all.
    Fields must be in ``DIMENSIONS``; a filter value ``""`` matches a missing value."""
    filters = dict(filters or {})
    unknown = sorted((set(group_by) | set(filters)) - set(DIMENSIONS))
    if unknown or (grain is not None and grain not in GRAINS):
        raise ValueError(f"not a spend field or grain: {unknown or grain}")
    through = _through(set(group_by) | set(filters), filters)
    ask = Ask(
        tuple(group_by),
        tuple(sorted(filters.items())),
        grain,
        distinct,
        latency,
        through=through or (),
    )
    rolled = through is not None
    parts = plan(since, until, rollups=rolled, days=grain != "hour")
    ranked_by = next((field for field in ask.group_by if field in ask.through), None)
    with snapshot(engine) as connection:  # one snapshot for every part
        sealed = sealed_until(connection) if any(p.source == "day" for p in parts) else {}
        if rank is not None and ranked_by is not None:
            narrow = replace(ask, narrow=True, distinct=False)
            ranked = _summed(connection, parts, narrow, sealed, cache, rolled=rolled)
            wanted = rank(ranked, ranked_by)
            if wanted is not None:
                ask = replace(ask, among=(ranked_by, tuple(sorted(set(wanted)))))
        return _summed(connection, parts, ask, sealed, cache, rolled=rolled)


def _summed(
    connection: Connection,
    parts: list[Part],
    ask: Ask,
    sealed: dict[str, datetime],
    cache: RollupCache | None,
    *,
    rolled: bool,
) -> pa.Table:
    """``sum_spend``'s sums of ``ask`` over ``parts`` (``rolled``: from the rollups where
    they answer), read in ``connection``'s snapshot."""
    # What each part is asked: its measures; with distinct counts from the rollups, also its
    # requests and spend per id of each id field the question does not name (``_own_ids``).
    asks = [replace(ask, distinct=False) if rolled else ask]
    if ask.distinct and rolled:
        asks += [replace(asks[0], ids=(f,)) for f in ID_FIELDS if f not in ask.through]
    id_asks = asks[1:]
    slotted = ask.grain is not None
    big = "hour" if ask.grain == "hour" else "day"  # an id ask's biggest part: counted as rows
    sums: dict[Ask, list[pa.Table]] = defaultdict(list)
    # Cached parts, summed meanwhile; an id ask's biggest part: its rows, their ids counted
    # meanwhile, unless the question names an id (the sheet of both ids then takes most of
    # them away again: every part is counted together, ``spend_ids.count``).
    summing: list[tuple[Future[pa.Table], Read]] = []
    bigs: dict[Ask, tuple[Future[pa.Table], Read, Future[pa.Table] | None]] = {}
    in_sql: list[Read] = []
    raw: dict[Part, None] = {}  # the id asks' raw and pending parts: one query for both
    # The cached parts first, biggest work (the id rollups') first: the helper threads sum
    # them while this one runs the SQL parts.
    for read in _reads(parts, asks, sealed):
        part, one = read.part, read.ask
        if cache is not None and cache.covers(part.table, part.start, part.end):
            rows = bool(one.ids) and one.sheet == one.ids and part.source == big
            rows = rows and read.of not in bigs
            future = _cached(connection, cache, part, one, rows=rows)
            if future is not None:
                if rows:
                    counts = None if ask.through else _distinct(cache, future, read)
                    bigs[read.of] = (future, read, counts)
                else:
                    summing.append((future, read))
                continue
        if one.ids and not part.rolled:
            raw[part] = None
        else:
            in_sql.append(read)
    for read in in_sql:
        table = _read(connection, read.part, read.ask, cache)
        if cache is not None:
            table = coded(table, _coded(read.ask), cache)
        sums[read.of] += _cells(table, read, cache)
    by_id = replace(asks[0], ids=ID_FIELDS)
    for part in raw:
        read_ids = _read(connection, part, by_id, cache)
        fields = [one.ids[0] for one in id_asks]
        split_ids = split(read_ids, ask.group_by, slotted, cache, fields)
        for one in id_asks:
            sums[one].append(split_ids[one.ids[0]])
    for future, read in summing:
        sums[read.of] += _cells(_renamed(future.result(), read.part, read.ask), read, cache)
    tables = []
    for one in id_asks:
        found = bigs.get(one)
        counting = None
        if found is not None:
            future, read, counted_rows = found
            found_rows = _renamed(future.result(), read.part, read.ask)
            counting = (_as_of(found_rows, one, cache), counted_rows)
        counted = count(sums.pop(one, []), ask.group_by, slotted, one.ids[0], cache, big=counting)
        tables.append(counted)
    tables += [table for part_sums in sums.values() for table in part_sums]
    return _own_ids(_added(tables, ask, cache), ask)


def _through(fields: set[str], filters: Mapping[str, str]) -> tuple[str, ...] | None:
    """The id fields a question names (grouped by, or filtered to no id): its rollup parts are
    read through the id rollups' sheets (``_reads``). ``None``: it is filtered to one id, whose
    spend is read from its events (the ``(id, ts)`` index: faster than any rollup for one
    id)."""
    named = tuple(field for field in ID_FIELDS if field in fields)
    return None if any(filters.get(field, "") != "" for field in named) else named


@dataclass(frozen=True, slots=True)
class Read:
    """A part read for one of a question's asks (``of``): what is read (``ask``, from
    ``part.table``), and the cells of ``of``'s sums it gives (``_reads``): each the fields its
    sums are summed over (then ``''``: no id) and its sign."""

    part: Part
    ask: Ask
    of: Ask
    cells: tuple[tuple[frozenset[str], int], ...] = ((frozenset(), 1),)


def _reads(parts: list[Part], asks: list[Ask], sealed: dict[str, datetime]) -> list[Read]:
    """Each part of each ask, with the table it is read from (``_with_table``), the id asks
    first. A rollup part is read through the id rollups' sheets (``_sheet_reads``)."""
    out: list[Read] = []
    for one in sorted(asks, key=lambda one: not one.ids):
        for planned in parts:
            if not planned.rolled:
                out.append(Read(planned, one, one))
                continue
            for read, cells in _sheet_reads(one):
                out += [Read(part, read, one, cells) for part in _with_table(planned, sealed, read)]
    return out


def _sheet_reads(one: Ask) -> list[tuple[Ask, tuple[tuple[frozenset[str], int], ...]]]:
    """The reads of a rollup part of ``one`` and the cells of its sums each gives. Of the id
    fields the question names (``through``: S), the rows that carry exactly the ids P (and
    none of the others) are, by inclusion and exclusion, the sum over the sheets T with
    P <= T <= S of (-1)^|T - P| times T's rows summed over T - P. A sheet T is the id rollup's
    sheet of ``one.ids`` and T (the rows carrying all of them; without any, the other
    rollups): each is read once and its cells summed from what was read. Cells with an id of
    a field filtered to no id are left out; with ``among`` (its field in S), the rows with
    that id are read among its values, the rows without are kept only if ``''`` is one."""
    named = one.through
    filtered = {name for name, _ in one.filters if name in named}
    among = one.among  # of a field of ``through`` (``sum_spend``)
    assert among is None or among[0] in named
    out = []
    for sheet in _subsets(named):
        cells: dict[bool, list[tuple[frozenset[str], int]]] = defaultdict(list)  # by among
        for kept in _subsets(sheet):
            if filtered & set(kept):
                continue
            by_among = among is not None and among[0] in kept
            if among is not None and "" not in among[1] and not by_among:
                continue
            gone = frozenset(sheet) - set(kept)
            cells[by_among].append((gone, -1 if len(gone) % 2 else 1))
        for by_among, made in cells.items():
            # A field every cell sums over is not read at all.
            away = frozenset.intersection(*(gone for gone, _ in made))
            group_by = (f for f in one.group_by if f not in named or (f in sheet and f not in away))
            ids = None
            if by_among and among is not None:  # the ids among the values
                ids = (among[0], tuple(value for value in among[1] if value))
                if not ids[1]:
                    continue
            read = replace(
                one,
                group_by=tuple(group_by),
                filters=tuple(item for item in one.filters if item[0] not in named),
                through=(),
                sheet=tuple(f for f in ID_FIELDS if f in {*one.ids, *sheet}),
                among=ids,
            )
            out.append((read, tuple((gone - away, sign) for gone, sign in made)))
    return out


def _subsets(fields: Sequence[str]) -> list[tuple[str, ...]]:
    """Every subset of ``fields`` (in their order), the smallest first."""
    return [c for size in range(len(fields) + 1) for c in combinations(fields, size)]


def _cells(table: pa.Table, read: Read, cache: RollupCache | None) -> list[pa.Table]:
    """A read's sums as the cells of ``read.of``'s sums (``_sheet_reads``): each summed over
    its fields and signed, laid out by ``read.of``'s keys (``_as_of``)."""
    out = []
    for gone, sign in read.cells:
        cell = table
        if gone:
            keys = [k for k in read.ask.keys if k not in gone]
            keys += ["slot"] if read.ask.grain is not None else []
            cell = sum_by(table, keys, read.ask.measures)
        out.append(_as_of(cell if sign > 0 else negated(cell, read.ask.measures), read.of, cache))
    return out


def _coded(ask: Ask) -> tuple[str, ...]:
    """The keys of ``ask``'s parts kept as the rollup cache's codes until they are added up
    (with a cache): every key of an id ask, the id fields of another (their columns are named
    as the fields wherever they are read: the id rollups' sheets and the SQL parts, so one
    dictionary codes each; a month of ids is added up far faster as integers than as
    strings). The other keys are values (a facet rollup keeps a field in ``value``)."""
    return ask.keys if ask.ids else tuple(name for name in ask.keys if name in ID_FIELDS)


def _as_of(table: pa.Table, of: Ask, cache: RollupCache | None) -> pa.Table:
    """A read's sums (keys, slot, measures) laid out by ``of``'s keys: a key it lacks (an id of
    a sheet that does not carry it, or summed over) is ``''``, no id (for a key kept as the
    cache's codes, ``_coded``, the code of ``''``)."""
    if len(of.keys) == sum(name in table.column_names for name in of.keys):
        return table
    rows = table.num_rows
    columns, names = [], []
    for name in of.keys:
        if name in table.column_names:
            columns.append(table[name])
        elif cache is not None and name in _coded(of):
            columns.append(pa.repeat(cache.encode(name, pa.array([""]))[0], rows))
        else:
            columns.append(pa.repeat(pa.scalar("", pa.string()), rows))
        names.append(name)
    rest = [name for name in table.column_names if name not in of.keys]
    return pa.table([*columns, *(table[name] for name in rest)], names=[*names, *rest])


def _own_ids(sums: pa.Table, ask: Ask) -> pa.Table:
    """``sums`` with the distinct counts of the id fields the question names (``through``),
    which no id ask counts: grouped by such a field, each group with an id has one (its
    spend: the group's); filtered to no id, none."""
    if not ask.distinct:
        return sums
    for field in ask.through:
        if field not in ask.group_by:
            continue  # filtered to no id: none (zeros)
        has = pc.is_valid(sums[field])
        zero = pa.scalar(0, pa.int64())
        count, micro, pico = id_measures(field)
        values = {
            count: pc.cast(has, pa.int64()),
            micro: pc.if_else(has, sums["cost_micro"], zero),
            pico: pc.if_else(has, sums["cost_pico"], zero),
        }
        for name, column in values.items():
            sums = sums.set_column(sums.schema.get_field_index(name), name, column)
    return sums


# Parts of a question by ids (``_coded``) with this many rows are added up at the ids' codes
# (``spend_ids.summed_at_ids``): 1.7 M rows of a month's top 100 by both ids in ~200 ms by
# Arrow's hash group-by.
_AT_IDS = 1 << 16


def _added(tables: list[pa.Table], ask: Ask, cache: RollupCache | None) -> pa.Table:
    """The parts' sums added up per group and slot, laid out by ``sums_schema`` (a missing
    value, ``''`` in every part, as a null key; the keys kept as the cache's codes,
    ``_coded``, decoded), groups without requests dropped. A part lacking a measure has
    zeros."""
    keys = ask.grouping
    coded_ids = set(_coded(ask)) if cache is not None else set()
    schema = sums_schema(ask.group_by, ask.grain is not None, ask.measures)
    for index, name in enumerate(ask.group_by):
        if name in coded_ids:
            schema = schema.set(index, pa.field(name, pa.int32()))
    whole = (
        pa.concat_tables([_padded(t, schema) for t in tables]) if tables else schema.empty_table()
    )
    summed = None
    if whole.num_rows >= _AT_IDS and ask.grain is None and set(keys) <= coded_ids:
        summed = summed_at_ids(whole, keys, ask.measures)  # by an id or both: codes
    if summed is None:
        summed = sum_by(whole, keys, ask.measures)
    whole = pa.Table.from_arrays(summed.columns, schema=schema)
    whole = whole.filter(pc.not_equal(whole["requests"], 0))
    for index, field in enumerate(ask.group_by):
        column = whole[field]
        if field in coded_ids and cache is not None:
            column = cache.decode(field, column)
        column = pc.if_else(pc.equal(column, ""), None, column)
        whole = whole.set_column(index, pa.field(field, pa.string()), column)
    return whole


def _padded(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table``'s columns laid out by ``schema``, zeros for the measures it lacks."""
    zeros = pa.repeat(pa.scalar(0, pa.int64()), table.num_rows)
    columns = [table[f.name] if f.name in table.column_names else zeros for f in schema]
    return pa.Table.from_arrays(
        [c.cast(f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )


def _cached(
    connection: Connection, cache: RollupCache, part: Part, ask: Ask, *, rows: bool = False
) -> Future[pa.Table] | None:
    """``part`` summed by ``cache`` (``RollupCache.group``: ``_renamed`` makes the result a
    part's sums; ``rows``: its rows, not summed); ``None`` if the cache is still loading its
    slots."""
    dimension, columns = layout(part.table, ask)
    return cache.group(
        connection,
        part.table,
        part.start,
        part.end,
        dimension=dimension,
        group_by=[columns[name] for name in ask.keys],
        filters=[(columns[name], value) for name, value in ask.filters],
        grain=ask.grain,
        measures=ask.measures,
        coded=[columns[name] for name in _coded(ask)],  # decoded once added up
        rows=rows,
        among=None if ask.among is None else (columns[ask.among[0]], ask.among[1]),
    )


def _distinct(cache: RollupCache, rows: Future[pa.Table], read: Read) -> Future[pa.Table]:
    """The distinct ids per group and slot of an id ask's part (``spend_ids.distinct``),
    taken from its cached ``rows`` (``read``) in a helper thread and kept with them."""
    of = read.of
    field, grouping = of.ids[0], of.grouping

    def counted(found: pa.Table) -> pa.Table:
        return distinct(_as_of(_renamed(found, read.part, read.ask), of, cache), grouping, field)

    return cache.derive(rows, (tuple(grouping), field), counted)


def _renamed(found: pa.Table, part: Part, ask: Ask) -> pa.Table:
    """The cache's sums of ``part`` (columns named as in its table) as the part's sums."""
    names = [*ask.keys, *found.column_names[len(ask.keys) :]]
    return _signed(found.rename_columns(names), part, ask)


def _with_table(part: Part, sealed: dict[str, datetime], ask: Ask) -> list[Part]:
    """``part`` with the rollup that answers ``ask`` (an id rollup for a sheet). A daily
    rollup holds only sealed days, so a day part is split there: the days after it come from
    the hourly rollup."""
    if not part.rolled:
        return [part]
    fields = ask.named - set(ID_FIELDS)
    ids = bool(ask.sheet)
    spec = choose(part.source, fields, ids=ids)
    assert spec is not None  # the full rollups hold every ROLLUP_DIMENSIONS field
    if spec.sealed_from is None:
        return [replace(part, table=spec.name)]
    until = held_until(sealed, spec, fields)
    hourly = choose("hour", fields, ids=ids)
    assert hourly is not None
    if part.end <= until:
        return [replace(part, table=spec.name)]
    if part.start >= until:
        return [replace(part, source="hour", table=hourly.name)]
    return [
        replace(part, end=until, table=spec.name),
        replace(part, source="hour", start=until, table=hourly.name),
    ]


def _read(connection: Connection, part: Part, ask: Ask, cache: RollupCache | None) -> pa.Table:
    """``part``'s sums (``_run``). A raw edge within one hour is kept by ``cache`` for a
    repeated question, under its hour's token, while no pending row is of that hour: an event
    added to the hour stays pending until the fold that gives the hour a new token. The
    cache's worker also reads the edge summed by every field (``_by_every_field``), from
    which any later question over it is summed in Arrow, without SQL."""
    if cache is None or part.source != "events" or part.end > floor_time(part.start, _HOUR) + _HOUR:
        return _run(connection, part, ask)
    token, pending = _edge_state(connection, part)
    if pending:
        return _run(connection, part, ask)
    every = _by_every_field(ask)
    if every is None:
        return cache.kept(("events", part, ask, token), lambda: _run(connection, part, ask))
    whole_key = ("events", part, every, token)

    def make() -> pa.Table:
        whole = cache.kept_only(whole_key)
        if whole is not None:
            return _regrouped(whole, part, ask)
        cache.keep_later(whole_key, partial(_edge_rows, connection.engine, part, every, token))
        return _run(connection, part, ask)

    return cache.kept(("events", part, ask, token), make)


def _edge_state(connection: Connection, part: Part) -> tuple[str | None, bool]:
    """The token of the hour a raw edge lies in, and whether a pending row is of that hour
    (if not, the hour's events are as its token says)."""
    token, pending = connection.execute(hour_state(), {"hour": floor_time(part.start, _HOUR)}).one()
    return token, bool(pending)


def _edge_rows(engine: Engine, part: Part, every: Ask, token: str | None) -> pa.Table | None:
    """A raw edge summed by every field (``every``), read in a snapshot of its own
    where its hour still has ``token`` and nothing pending; else ``None``."""
    with snapshot(engine) as connection:
        now, pending = _edge_state(connection, part)
        return None if pending or now != token else _run(connection, part, every)


# What a raw edge is kept summed by (``_by_every_field``): every field a question may name.
_EVERY = Ask(DIMENSIONS, (), None, distinct=False, latency=True)


def _by_every_field(ask: Ask) -> Ask | None:
    """The sums of a raw edge by every field, ids included, not filtered, with no grain and
    every measure, from which any question over it, with or without latency, is summed in
    Arrow (``_regrouped``), so a new question over the same edge runs no SQL. ``None`` for a
    question that counts distinct ids in SQL (not additive)."""
    return None if ask.distinct else _EVERY


def _regrouped(rows: pa.Table, part: Part, ask: Ask) -> pa.Table:
    """``_by_every_field``'s sums of a raw edge as ``ask``'s: its filters applied (``''``
    matches a missing value, kept as ``''``), its ``among`` and its ids' rows (those with
    any), summed by its keys, in the grain's slot that holds the edge (an edge lies within
    one hour: in one slot of every grain)."""
    for name, value in ask.filters:
        rows = rows.filter(pc.equal(rows[name], value))
    if ask.among is not None:
        field, values = ask.among
        rows = rows.filter(pc.is_in(rows[field], value_set=pa.array(values, pa.string())))
    if ask.ids:
        with_id = [pc.not_equal(rows[field], "") for field in ask.ids]
        rows = rows.filter(with_id[0] if len(with_id) == 1 else pc.or_(*with_id))
    sums = sum_by(rows, ask.keys, ask.measures)
    if ask.grain is not None:
        slot = pa.scalar(bucket_start(part.start, ask.grain), pa.timestamp("us", tz="UTC"))
        sums = sums.add_column(len(ask.keys), "slot", pa.repeat(slot, sums.num_rows))
    return sums


def _run(connection: Connection, part: Part, ask: Ask) -> pa.Table:
    query = part_query(connection.dialect.name, part.source, part.table, ask)
    schema = sums_schema(ask.keys, ask.grain is not None, ask.measures)
    table = fetched(connection, query, {"start": part.start, "end": part.end}, schema)
    return _signed(table, part, ask)


def _signed(table: pa.Table, part: Part, ask: Ask) -> pa.Table:
    """``part``'s sums, negated for a subtracted part."""
    return table if part.sign > 0 else negated(table, ask.measures)
