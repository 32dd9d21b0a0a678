"""Spend sums over rollup slots held as Arrow tables (``store.rollup_cache``'s copies), in
Arrow's vectorised kernels: the layout of sums (``sums_schema``), the rows matching a
question's filters (``selected``), grouped by its keys and slot (``summed``), and the measures
of a slot narrowed to the smallest integer type that holds them (``measures_narrowed``). Pure:
no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import accumulate
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spendgate.store.schema import LATENCY_BUCKETS

# The integer types a slot's measure columns are narrowed to (``narrowed``), with the bound
# of each. Slots of different types are cast to one when summed together (~30 ms more over a
# month of hourly slots), so a column should rarely switch types from slot to slot: calls are
# counted in ``int16`` (not ``int8``), tokens, money and milliseconds in ``int32`` at least.
_NARROW = ((pa.int16(), 1 << 15), (pa.int32(), 1 << 31))
_COUNTS = frozenset(("requests", "errors", "unpriced", "latency_count", *LATENCY_BUCKETS))
# A key column's code to match, or codes to match one of (``None``: a value no slot holds).
_Codes: TypeAlias = int | pa.Array | None
# Slots averaging fewer rows than this are summed as one chunk (copied together first).
_SMALL_SLOT_ROWS = 2000
# More rows than this (of slots not that big) are grouped in two halves at once.
_HALVED_ROWS = 400_000
# Slots averaging more rows than this are grouped one by one (``slot_by_slot``).
_BIG_SLOT_ROWS = 20_000


def measures_narrowed(rows: pa.Table) -> pa.Table:
    """A slot's rows with each ``int64`` column (its measures) ``narrowed``: calls counted
    down to ``int16``, the others down to ``int32``."""
    for index, field in enumerate(rows.schema):
        if field.type == pa.int64():
            least = 0 if field.name in _COUNTS else 1
            rows = rows.set_column(index, field.name, narrowed(rows[index], least))
    return rows


def narrowed(column: pa.ChunkedArray, least: int = 0) -> pa.ChunkedArray:
    """An ``int64`` measure column as the narrowest of ``_NARROW[least:]`` that holds its
    values: a month of ``spend_hourly`` takes half the memory. Sums come out as ``int64`` all
    the same (Arrow sums signed integers into ``int64``)."""
    low, high = pc.min_max(column).as_py().values()
    if low is None:  # no values
        return column
    for type_, limit in _NARROW[least:]:
        if -limit <= low and high < limit:
            return column.cast(type_)
    return column


def sums_schema(keys: Sequence[str], slotted: bool, measures: Sequence[str]) -> pa.Schema:
    """The layout of spend sums: a string column per key, a ``slot`` column (the grain slot's
    UTC start) when ``slotted``, then an int64 column per measure."""
    return pa.schema(
        [
            *((key, pa.string()) for key in keys),
            *([("slot", pa.timestamp("us", tz="UTC"))] if slotted else []),
            *((measure, pa.int64()) for measure in measures),
        ]
    )


def negated(table: pa.Table, measures: Sequence[str]) -> pa.Table:
    """``table`` with its ``measures`` columns negated (sums taken away instead of added)."""
    for name in measures:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.field(index), pc.negate(table[index]))
    return table


def sum_by(table: pa.Table, keys: Sequence[str], measures: Sequence[str]) -> pa.Table:
    """The sums of ``measures`` per distinct values of ``keys`` in ``table``: the ``keys``
    columns, then one column per measure (without keys: one row of sums)."""
    if not keys:
        sums = [pa.array([pc.sum(table[m]).as_py() or 0], pa.int64()) for m in measures]
        return pa.table(sums, names=list(measures))
    grouped = table.group_by(keys, use_threads=False).aggregate([(m, "sum") for m in measures])
    return grouped.select([*keys, *(f"{m}_sum" for m in measures)]).rename_columns(
        [*keys, *measures]
    )


def summed(
    loaded: list[tuple[pa.Table, datetime | None]],
    codes: dict[str, _Codes],
    values: list[pa.Array | None],
    schema: pa.Schema,
    rows_only: bool = False,
) -> pa.Table:
    """``RollupCache.group``'s sums of the ``loaded`` slots, laid out by ``schema`` (its
    first ``len(values)`` columns are the keys): the rows matching ``codes`` (a code, or an
    array of codes to match one of; a code of ``None`` or no codes, values no slot holds,
    match none), grouped by the keys (decoded with ``values``, each key's values by code;
    ``None``: left as codes) and the slot; with ``rows_only``, those rows not grouped."""
    slotted = "slot" in schema.names
    group_by = schema.names[: len(values)]
    measures = schema.names[len(values) + slotted :]
    if any(code is None or _empty(code) for code in codes.values()):
        return schema.empty_table()
    rows, slots = selected(loaded, codes, [*group_by, *measures], slotted=slotted)
    if rows is None:
        return schema.empty_table()
    keys = [*group_by, *(["slot"] if slotted else [])]
    if rows_only:
        sums = rows.select([*keys, *measures])
    elif slotted:
        sums = slot_by_slot(rows, group_by, measures, len(slots))
    else:
        sums = sum_by(rows, keys, measures)
    columns = [
        sums[field] if known is None else known.take(sums[field])
        for field, known in zip(group_by, values, strict=True)
    ]
    if slotted:
        columns.append(pa.array(slots, schema.field("slot").type).take(sums["slot"]))
    found = sums.columns[len(keys) :]  # rows' measures are narrowed in the slots: as int64
    return pa.table([*columns, *(column.cast(pa.int64()) for column in found)], schema=schema)


def _empty(code: _Codes) -> bool:
    return isinstance(code, pa.Array) and not len(code)


def slot_by_slot(
    rows: pa.Table, group_by: list[str], measures: Sequence[str], slots: int
) -> pa.Table:
    """``sum_by`` of ``rows`` (ordered by ``slot``, of ``slots`` slots) per ``group_by`` and
    slot; when the slots are big, each slot's rows grouped alone: no key spans two slots, and
    a hash table of one slot's keys stays in the CPU's caches, which one of a month's does not
    (a month of the full daily rollup's slots holds 650,000 keys)."""
    if rows.num_rows < _BIG_SLOT_ROWS * slots:
        if rows.num_rows > _HALVED_ROWS:
            return in_halves(rows, [*group_by, "slot"], measures)
        return sum_by(rows, [*group_by, "slot"], measures)
    runs = slot_runs(rows)
    sums = []
    for run, slot in runs:
        one = sum_by(run, group_by, measures)
        sums.append(one.add_column(len(group_by), "slot", pa.repeat(slot, one.num_rows)))
    return pa.concat_tables(sums)


def in_halves(rows: pa.Table, keys: list[str], measures: Sequence[str]) -> pa.Table:
    """``sum_by`` of ``rows`` (ordered by ``slot``, one of ``keys``) cut at a slot's start
    near the middle, the halves summed at once by this thread and another (Arrow does not
    hold the GIL): no key is in both. A month of ``spend_hourly`` (1.7 M rows) by two fields
    took 185-276 ms in one, 114-147 in halves."""
    slots = rows["slot"].combine_chunks().to_numpy()
    middle = int(np.searchsorted(slots, slots[len(slots) // 2]))
    if not middle:
        return sum_by(rows, keys, measures)
    with ThreadPoolExecutor(1, thread_name_prefix="spendgate-rollup-half") as other:
        later = other.submit(sum_by, rows.slice(middle), keys, measures)
        first = sum_by(rows.slice(0, middle), keys, measures)
        return pa.concat_tables([first, later.result()])


def slot_runs(rows: pa.Table) -> list[tuple[pa.Table, pa.Scalar]]:
    """``rows`` (ordered by their ``slot`` column) cut into each slot's rows, with the slot."""
    runs = pc.run_end_encode(rows["slot"]).combine_chunks()
    ends = runs.run_ends.to_pylist()
    starts = [0, *ends][:-1]
    return [
        (rows.slice(start, end - start), slot)
        for start, end, slot in zip(starts, ends, runs.values, strict=True)
    ]


def selected(
    loaded: list[tuple[pa.Table, datetime | None]],
    codes: dict[str, _Codes],
    columns: list[str],
    *,
    slotted: bool,
) -> tuple[pa.Table | None, list[datetime | None]]:
    """The ``columns`` of the slots' rows whose dimensions have ``codes``, as one table
    (``None``: no such rows), and (``slotted``) a ``slot`` column: the index of the slot's grain
    start in the list returned with it. Done once over all the slots, not slot by slot (a
    month of hourly slots is 720 of them); many small slots are made one chunk, as Arrow's
    group-by pays per chunk."""
    kept = [(table, slot) for table, slot in loaded if table.num_rows]
    if not kept:
        return None, []
    # Only the columns wanted are put together (a month of hourly id slots is 720 tables of
    # ~45 columns: promoting every column to one type took most of the time).
    wanted = [*columns, *(field for field in codes if field not in columns)]
    tables = [table.select(wanted) for table, _ in kept]
    same = all(table.schema == tables[0].schema for table in tables)  # measures are narrowed
    promote = "none" if same else "permissive"  # slot by slot: cast to one type if they differ
    whole = pa.concat_tables(tables, promote_options=promote)
    slots: list[datetime | None] = []
    if slotted:
        indexes = []
        for _, slot in kept:
            if not slots or slots[-1] != slot:
                slots.append(slot)
            indexes.append(len(slots) - 1)
        ends = pa.array(list(accumulate(table.num_rows for table, _ in kept)), pa.int32())
        runs = pa.RunEndEncodedArray.from_arrays(ends, pa.array(indexes, pa.int32()))
        whole = whole.append_column("slot", pc.run_end_decode(runs))
    mask = None
    for field, code in codes.items():
        column = whole[field]
        one = isinstance(code, int)
        match = pc.equal(column, code) if one else pc.is_in(column, value_set=code)
        mask = match if mask is None else pc.and_(mask, match)
    if mask is not None:
        whole = whole.filter(mask)
    if not whole.num_rows:
        return None, []
    if whole.num_rows < _SMALL_SLOT_ROWS * len(kept):
        whole = whole.combine_chunks()
    return whole.select([*columns, *(["slot"] if slotted else [])]), slots
