"""Distinct counts of a spend question the rollups answer (``store.spend``, ``distinct=True``):
per group and slot, how many sessions (workflows) had requests, and their spend.

Every part of the range gives its requests and spend per group, slot and id: the id rollups'
parts one id field at a time, the raw edges and pending rows one query for both fields
(``split`` makes them one table per field). The parts are added up per id and the ids left
with requests are counted (``count``): a subtracted edge cancels exactly what it removes.

The biggest part (a month of days: a million rows and more) is not regrouped. Its own counts
per group are taken once: from the rollup cache, straight from its day slots' rows (``distinct``:
an id has a row per day; one pass of Arrow's distinct count in a helper thread, instead of
summing each id's days first and counting those), kept with them (``RollupCache.derive``);
else from the biggest part's sums. Only its rows whose id another part also has are taken
back out, summed and counted again with the others'. So a repeated question counts again
only the ids the edges touch.

With a cache, key columns are its ``int32`` codes (counting groups by integers, not strings)
and are decoded once counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

import pyarrow as pa
import pyarrow.compute as pc

from spendgate.store.rollup_cache import RollupCache, negated, slot_runs, sum_by, sums_schema
from spendgate.store.schema import ID_FIELDS, ID_MEASURES

_COUNTED = ("ids", "cost_micro", "cost_pico")  # ``count``'s sums before they are renamed


def id_measures(field: str) -> tuple[str, str, str]:
    """The distinct-count sums of one of ``ID_FIELDS`` (``session_id``: ``sessions``,
    ``session_cost_micro``, ``session_cost_pico``)."""
    stem = field.removesuffix("_id")
    return f"{stem}s", f"{stem}_cost_micro", f"{stem}_cost_pico"


def coded(table: pa.Table, keys: Sequence[str], field: str, cache: RollupCache) -> pa.Table:
    """An id part's ``keys`` columns (its first ones) as the codes of ``cache``'s dictionaries
    (the id rollups' columns: each field's own, ``value`` for the id ``field``), as the
    cache's id parts give them."""
    for index, name in enumerate(keys):
        column = "value" if name == field else name
        table = table.set_column(index, name, cache.encode(column, table[name].combine_chunks()))
    return table


def split(
    table: pa.Table, group_by: Sequence[str], slotted: bool, cache: RollupCache | None
) -> dict[str, pa.Table]:
    """A raw or pending part's ``ID_MEASURES`` per group, slot and every one of ``ID_FIELDS``
    (``''``: none) as the part's sums of each id field: its rows with such an id, summed per
    group, slot and id, laid out by ``sums_schema`` as an id part (``coded`` with a cache)."""
    slot = ["slot"] if slotted else []
    out = {}
    for field in ID_FIELDS:
        keys = [*group_by, field]
        schema = sums_schema(keys, slotted, ID_MEASURES)
        rows = table.filter(pc.not_equal(table[field], ""))
        part = sum_by(rows, [*keys, *slot], ID_MEASURES).select(schema.names).cast(schema)
        out[field] = part if cache is None else coded(part, keys, field, cache)
    return out


def count(
    parts: Sequence[pa.Table],
    group_by: Sequence[str],
    slotted: bool,
    field: str,
    cache: RollupCache | None,
    *,
    big: tuple[pa.Table, Future[pa.Table]] | None = None,
) -> pa.Table:
    """The ids of ``field`` with requests, per group and slot: how many, and their spend
    (named by ``id_measures``), keys as values. ``parts``: each part's requests and spend per
    group, slot and id (one row per key; with a ``cache``, keys as its codes). ``big``: the
    biggest part's rows, not summed by id (a cached day part: an id has a row per day), and
    their ``distinct`` counts (being taken in a helper thread, kept by the cache); without
    it, the biggest of ``parts`` is counted here (see the module docstring)."""
    grouping = [*group_by, *(["slot"] if slotted else [])]
    names = [*grouping, *id_measures(field)]
    others = list(parts)
    if big is not None:
        rows, whole = big[0], big[1].result()
    elif others:
        rows = others.pop(max(range(len(others)), key=lambda index: others[index].num_rows))
        whole = _counts(rows, grouping)
    else:
        empty = sums_schema([*group_by, field], slotted, ID_MEASURES).empty_table()
        return _counts(empty, grouping).rename_columns(names)
    pieces = [whole]
    keys = [*grouping, field]
    rest = sum_by(pa.concat_tables(others), keys, ID_MEASURES) if others else None
    if rest is not None and rest.num_rows:
        shared = rows.filter(pc.is_in(rows[field], value_set=pc.unique(rest[field])))
        shared = sum_by(shared.select(rest.column_names), keys, ID_MEASURES)
        both = sum_by(pa.concat_tables([shared, rest]), keys, ID_MEASURES)
        pieces += [negated(_counts(shared, grouping), _COUNTED), _counts(both, grouping)]
    counted = sum_by(pa.concat_tables(pieces), grouping, _COUNTED) if len(pieces) > 1 else whole
    if cache is not None:
        for index, name in enumerate(group_by):
            counted = counted.set_column(index, name, cache.decode(name, counted[name]))
    return counted.rename_columns(names)


def distinct(rows: pa.Table, grouping: Sequence[str], field: str) -> pa.Table:
    """``_counts`` of a part's rows not summed by id (an id may have several: one per day
    of it), every row with requests (a rollup's: only ever added to): its distinct ids per
    ``grouping`` key, counted straight from the rows (one pass, not summing each id first).
    With a ``slot`` key, the rows (ordered by slot, as the cache gives them) are counted a
    slot at a time: no key spans two slots, and one slot's keys stay in the CPU's caches."""
    runs = [run for run, _ in slot_runs(rows)] if "slot" in grouping else []
    pieces = [_tally(run, grouping, field, "count_distinct") for run in runs or [rows]]
    return pa.concat_tables(pieces)  # ``runs or [rows]``: no slot, or no rows


def _counts(table: pa.Table, grouping: Sequence[str]) -> pa.Table:
    """Per ``grouping`` key of ``table`` (one row per key and id): its rows with requests
    (``ids``) and their spend, as the ``grouping`` columns then ``_COUNTED``."""
    with_requests = pc.not_equal(table["requests"], 0)
    if not pc.all(with_requests).as_py():
        table = table.filter(with_requests)
    return _tally(table, grouping, "requests", "count")


def _tally(table: pa.Table, grouping: Sequence[str], column: str, how: str) -> pa.Table:
    """Per ``grouping`` key of ``table``: ``how`` (``count`` or ``count_distinct``) of
    ``column`` as ``ids``, and the spend, as the ``grouping`` columns then ``_COUNTED``."""
    if not grouping:
        ids = pc.call_function(how, [table[column]]).as_py()
        micro, pico = (pc.sum(table[m]).as_py() or 0 for m in ID_MEASURES[1:])
        return pa.table([[ids], [micro], [pico]], names=list(_COUNTED))
    aggregates = [(column, how), ("cost_micro", "sum"), ("cost_pico", "sum")]
    counted = table.group_by(list(grouping), use_threads=False).aggregate(aggregates)
    sums = [f"{column}_{how}", "cost_micro_sum", "cost_pico_sum"]
    return counted.select([*grouping, *sums]).rename_columns([*grouping, *_COUNTED])
