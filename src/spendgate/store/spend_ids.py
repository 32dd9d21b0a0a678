"""Distinct counts of a spend question the rollups answer (``store.spend``, ``distinct=True``):
per group and slot, how many sessions (workflows) had requests, and their spend.

Every part of the range gives its requests and spend per group, slot and id: the id rollups'
parts (their sheets, signed: ``store.spend._sheet_reads``), the raw edges and pending rows one
query for both fields (``split`` makes them one table per field). The parts are added up per
group and id, and the ids left with requests are counted (``count``): a subtracted part
cancels exactly what it removes. With the cache's codes, that is done mostly without hashing
(``_net_counts``: in passes, each id's rows of one group summed by array adds at the id).

The biggest part (a month of days: a million rows and more) of a question that names no id is
not regrouped. Its own counts per group are taken once: from the rollup cache, straight from
its day slots' rows (``distinct``: an id has a row per day and combination of fields; in a
helper thread, mostly by array writes at each id's code rather than hashing each group and
id), kept with them (``RollupCache.derive``). Only its rows whose id another part also has
are taken back out and counted again with the others'. So a repeated question counts again
only the ids the edges touch. (When the question names the other id, the sheet of both ids
takes most ids back out: every part is counted together.)

With a cache, key columns are its ``int32`` codes (counting groups by integers, not strings);
the group's fields are decoded once counted, its ids once every part is added up.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from spendgate.store.rollup_cache import RollupCache
from spendgate.store.schema import ID_FIELDS, ID_MEASURES
from spendgate.store.slot_sums import negated, slot_runs, sum_by, sums_schema

_COUNTED = ("ids", "cost_micro", "cost_pico")  # ``count``'s sums before they are renamed
# ``_scattered`` makes another pass while the last one set aside this share of the rows left.
# A pass costs ~8 ns a row, hashing ~65: a pass pays for itself from a gain of ~0.12. Ids in a
# few groups each (a month's sessions by user and model: 2-5 models a session) gain ~0.3 in
# the first pass and more in each next one (the ids in fewer groups are done), so 0.4 sent
# them all to hashing: 1.5 M rows counted in 100-150 ms, not 27 in nine passes.
_PASS_GAIN = 0.25
# ``distinct`` hashes ids whose codes go past 16 per row and this many (an array of this many
# codes is a few MB; the cache's codes are dense, up to its dictionary's size, which its id
# and facet columns share: a few rows of a big dictionary are hashed faster).
_SPARSE = 1 << 20
_Ints = npt.NDArray[Any]


def id_measures(field: str) -> tuple[str, str, str]:
    """The distinct-count sums of one of ``ID_FIELDS`` (``session_id``: ``sessions``,
    ``session_cost_micro``, ``session_cost_pico``)."""
    stem = field.removesuffix("_id")
    return f"{stem}s", f"{stem}_cost_micro", f"{stem}_cost_pico"


def coded(table: pa.Table, names: Sequence[str], cache: RollupCache) -> pa.Table:
    """A part's columns ``names`` as the codes of ``cache``'s dictionaries (the id rollups'
    columns, each named as its field), as the cache's id parts give them."""
    for name in names:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, cache.encode(name, table[name].combine_chunks()))
    return table


def split(
    table: pa.Table,
    group_by: Sequence[str],
    slotted: bool,
    cache: RollupCache | None,
    fields: Sequence[str] = ID_FIELDS,
) -> dict[str, pa.Table]:
    """A raw or pending part's ``ID_MEASURES`` per group, slot and every one of ``ID_FIELDS``
    (``''``: none) as the part's sums of each id field of ``fields`` (none of ``group_by``):
    its rows with such an id, summed per group, slot and id, laid out by ``sums_schema`` as an
    id part (``coded`` with a cache)."""
    slot = ["slot"] if slotted else []
    out = {}
    for field in fields:
        keys = [*group_by, field]
        schema = sums_schema(keys, slotted, ID_MEASURES)
        rows = table.filter(pc.not_equal(table[field], ""))
        part = sum_by(rows, [*keys, *slot], ID_MEASURES).select(schema.names).cast(schema)
        out[field] = part if cache is None else coded(part, keys, cache)
    return out


def count(
    parts: Sequence[pa.Table],
    group_by: Sequence[str],
    slotted: bool,
    field: str,
    cache: RollupCache | None,
    *,
    big: tuple[pa.Table, Future[pa.Table] | None] | None = None,
) -> pa.Table:
    """The ids of ``field`` with requests, per group and slot: how many, and their spend
    (named by ``id_measures``), keys as values (ids as the cache's codes: ``store.spend``
    decodes them). ``parts``: each part's requests and spend per group, slot and id (with a
    ``cache``, keys as its codes). ``big``: the biggest part's rows, not summed by id (a
    cached day part: an id has a row per day), and their ``distinct`` counts (being taken in
    a helper thread, kept by the cache), then only the ids other parts have are counted
    again (see the module docstring); without the counts (the other parts have most ids),
    or without ``big``, every part's rows are counted together (``_net_counts``)."""
    grouping = [*group_by, *(["slot"] if slotted else [])]
    names = [*grouping, *id_measures(field)]
    if big is None or big[1] is None:
        empty = sums_schema([*group_by, field], slotted, ID_MEASURES).empty_table()
        tables = [*([] if big is None else [big[0].select(empty.column_names)]), *parts]
        whole = pa.concat_tables(tables, promote_options="permissive") if tables else empty
        counted = _net_counts(whole, grouping, field)
    else:
        rows, counted = big[0], big[1].result()
        rest = pa.concat_tables(parts) if parts else None
        if rest is not None and rest.num_rows:
            shared = rows.filter(_among(rows[field], rest[field]))
            shared = shared.select(rest.column_names).cast(rest.schema)
            both = pa.concat_tables([shared, rest])
            pieces = [negated(_net_counts(shared, grouping, field), _COUNTED)]
            pieces += [counted, _net_counts(both, grouping, field)]
            counted = sum_by(pa.concat_tables(pieces), grouping, _COUNTED)
    if cache is not None:  # ids stay codes until every part is added up (``store.spend``)
        for index, name in enumerate(group_by):
            if name not in ID_FIELDS:
                counted = counted.set_column(index, name, cache.decode(name, counted[name]))
    return counted.rename_columns(names)


def _among(ids: pa.ChunkedArray, others: pa.ChunkedArray) -> pa.Array:
    """Which of ``ids`` are among ``others`` (a mask): array writes at the cache's codes, or
    Arrow's hash lookup."""
    numbers, wanted = _codes(ids), _codes(others)
    if numbers is None or wanted is None or not len(numbers) or not len(wanted):
        return pc.is_in(ids, value_set=pc.unique(others))
    seen = np.zeros(max(int(numbers.max()), int(wanted.max())) + 1, np.bool_)
    seen[wanted] = True
    return pa.array(seen[numbers])


def _exact(values: _Ints) -> bool:
    """Whether any sum of some of ``values`` (int64) is exact in a float64: the sum of their
    magnitudes is below 2**52 (every partial sum is then an integer a double holds, with a
    margin for the rounding of that sum itself; a month's money is far below)."""
    return float(np.abs(values.astype(np.float64)).sum()) < 1 << 52


def _summed_at(at: _Ints, values: _Ints, size: int, *, exact: bool) -> _Ints:
    """``values`` (int64) summed at their places ``at`` in an array of ``size``: by
    ``bincount``'s float64 sums when they are ``exact``, else by integer adds."""
    if exact:
        return np.bincount(at, weights=values, minlength=size).astype(np.int64)
    total = np.zeros(size, np.int64)
    np.add.at(total, at, values)
    return total


def _net_counts(table: pa.Table, grouping: Sequence[str], field: str) -> pa.Table:
    """``_counts`` of ``table``'s requests and spend summed per ``grouping`` key and id (its
    parts, each signed: an id whose requests add up to 0 in a group is not counted there).
    With the cache's integer codes, mostly without hashing, in passes as ``distinct``'s: each
    pass sums every id's rows of one of its keys (whichever write at the id's place in an
    array landed last) by array adds at the id, counts those that are not 0 for that key, and
    sets the rows aside; passes repeat while they set aside ``_PASS_GAIN`` of the rows left.
    The rows left are summed and counted by Arrow's hash group-by."""
    numbers = _codes(table[field]) if table.num_rows else None
    width = 0 if numbers is None else int(numbers.max()) + 1
    packed = None
    if numbers is not None and width <= 16 * len(numbers) + _SPARSE:
        packed = _Packed.of(table, grouping)
    if numbers is None or packed is None:
        return _counts(sum_by(table, [*grouping, field], ID_MEASURES), grouping)
    ids, keys = numbers, packed.keys
    requests, *money = (table[name].combine_chunks().to_numpy() for name in ID_MEASURES)
    exact = all(_exact(values) for values in (requests, *money))
    totals = [np.zeros(packed.size, np.int64) for _ in ID_MEASURES]  # ids, micro, pico
    picked = np.empty(width, keys.dtype)
    left = np.arange(len(ids))  # the rows not counted yet (their indexes in ``table``)
    while len(ids):
        picked.fill(-1)
        picked[ids] = keys
        match = picked[ids] == keys
        chosen = ids[match]
        net = _summed_at(chosen, requests[match], width, exact=exact)  # per id, in its key
        counted = np.flatnonzero(net)
        totals[0] += np.bincount(picked[counted], minlength=packed.size)
        # The spend of the ids counted: their rows' (the rows chosen whose id's net is not 0).
        rows = np.flatnonzero(match)[net[chosen] != 0]
        for index, values in enumerate(money, start=1):
            totals[index] += _summed_at(keys[rows], values[rows], packed.size, exact=exact)
        before, other = len(ids), ~match
        ids, keys, left = ids[other], keys[other], left[other]
        requests, money = requests[other], [values[other] for values in money]
        if before - len(ids) < _PASS_GAIN * before:
            break
    present = np.flatnonzero(totals[0])
    out = pa.table(
        [*packed.columns(present), *(total[present] for total in totals)],
        names=[*grouping, *_COUNTED],
    )
    if not len(ids):
        return out
    rest = _counts(sum_by(table.take(left), [*grouping, field], ID_MEASURES), grouping)
    rest = rest.select(out.column_names).cast(out.schema)
    return sum_by(pa.concat_tables([out, rest]), grouping, _COUNTED)


def summed_at_ids(table: pa.Table, keys: Sequence[str], measures: Sequence[str]) -> pa.Table | None:
    """``sum_by(table, keys, measures)`` (its rows in another order) for one or two ``keys``
    that are the cache's codes (the parts of a question by an id or by both, signed), mostly
    without hashing. In passes, as ``_net_counts`` counts: each pass sums, per code of the
    first key, the rows with whichever second key's write at that code landed last, by array
    adds at the code; a group is summed whole in one pass. Then the rows left, the keys'
    roles swapped (the rows with no first id share its one code ``''``). The rest by Arrow's
    hash group-by. ``None``: not such keys."""
    codes = [_codes(table[key]) for key in keys] if table.num_rows else [None]
    known = [c.astype(np.int64, copy=False) for c in codes if c is not None]
    if not 1 <= len(keys) <= 2 or len(known) != len(keys):
        return None
    places, others = known[0], known[1] if len(known) == 2 else np.zeros(len(known[0]), np.int64)
    if max(int(places.max()), int(others.max())) >= 16 * len(places) + _SPARSE:
        return None
    values = [table[m].combine_chunks().to_numpy().astype(np.int64, copy=False) for m in measures]
    exact = all(_exact(column) for column in values)
    found: list[tuple[_Ints, _Ints, list[_Ints]]] = []  # first keys, second keys, sums
    left = np.arange(len(places))
    for swapped in (False, True):
        at, other = (others, places) if swapped else (places, others)
        at, other = at[left], other[left]
        width = int(at.max()) + 1 if len(at) else 0
        picked = np.empty(width, other.dtype)
        # A code with many of the rows (``''``: the rows with no such id) leaves a pass one
        # of its groups: its rows are left to the next round (or to hashing).
        held = _held_back(at, width)
        aside, left, at, other = left[held], left[~held], at[~held], other[~held]
        while len(left):
            picked.fill(-1)
            picked[at] = other
            match = picked[at] == other
            chosen, rows = at[match], left[match]
            summed = np.flatnonzero(np.bincount(chosen, minlength=width))
            sums = [_summed_at(chosen, v[rows], width, exact=exact)[summed] for v in values]
            pair = (picked[summed], summed) if swapped else (summed, picked[summed])
            found.append((*pair, sums))
            before, rest = len(left), ~match
            left, at, other = left[rest], at[rest], other[rest]
            if before - len(left) < _PASS_GAIN * before:
                break
        left = np.concatenate([left, aside])
    if not found:  # every row at one code of each key
        return sum_by(table, keys, measures)
    columns = [
        *(np.concatenate([f[i] for f in found]) for i in range(len(keys))),
        *(np.concatenate([f[2][i] for f in found]) for i in range(len(measures))),
    ]
    schema = pa.schema(
        [*(pa.field(k, table.schema.field(k).type) for k in keys)]
        + [pa.field(m, pa.int64()) for m in measures]
    )
    out = pa.Table.from_arrays(
        [pa.array(c).cast(f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )
    if not len(left):
        return out
    rest = sum_by(table.take(left), keys, measures).cast(schema)
    return pa.concat_tables([out, rest])


def _held_back(at: _Ints, width: int) -> npt.NDArray[np.bool_]:
    """The rows at the code most rows are at, if that is more than an eighth of them."""
    counts = np.bincount(at, minlength=width) if len(at) else np.zeros(1, np.int64)
    heavy = int(counts.argmax())
    return at == heavy if counts[heavy] * 8 > len(at) else np.zeros(len(at), np.bool_)


def distinct(rows: pa.Table, grouping: Sequence[str], field: str) -> pa.Table:
    """``_counts`` of a part's rows not summed by id (an id may have several: one per day
    of it and combination of the other fields), every row with requests (a rollup's: only
    ever added to): its distinct ids per ``grouping`` key, counted straight from the rows.

    With the cache's integer codes, most ids are counted without hashing (group, id) pairs:
    a total is a bitmap of the ids; per group, ``_scattered`` counts in a few passes of
    array writes the pairs it can, and the rows left are hashed by Arrow (``_hashed``),
    as are all of them when the ids are spread over many groups."""
    numbers = _codes(rows[field]) if rows.num_rows else None
    width = 0 if numbers is None else int(numbers.max()) + 1
    if numbers is None or width > 16 * len(numbers) + _SPARSE:  # not codes, or sparse ones
        return _hashed(rows, grouping, field)
    if not grouping:
        seen = np.zeros(width, np.bool_)
        seen[numbers] = True
        return _total(int(np.count_nonzero(seen)), rows)
    packed = _Packed.of(rows, grouping)
    if packed is None:
        return _hashed(rows, grouping, field)
    scattered = _scattered(numbers, width, packed.keys, packed.size)
    if scattered is None:
        return _hashed(rows, grouping, field)
    counts, left = scattered
    sums = []
    for name in ID_MEASURES[1:]:
        total = np.zeros(packed.size, np.int64)
        np.add.at(total, packed.keys, rows[name].combine_chunks().to_numpy())
        sums.append(total)
    present = np.flatnonzero(np.bincount(packed.keys, minlength=packed.size))
    found = [counts[present], *(total[present] for total in sums)]
    counted = pa.table([*packed.columns(present), *found], names=[*grouping, *_COUNTED])
    if not len(left):
        return counted
    rest = _hashed(rows.take(left), grouping, field)  # its spend is in ``sums`` already
    zeros = pa.repeat(pa.scalar(0, pa.int64()), rest.num_rows)
    rest = pa.table([*rest.columns[: len(grouping) + 1], zeros, zeros], names=counted.column_names)
    return sum_by(pa.concat_tables([counted, rest]), grouping, _COUNTED)


def _hashed(rows: pa.Table, grouping: Sequence[str], field: str) -> pa.Table:
    """``distinct`` by Arrow's distinct count per group (hashing each group and id). With a
    ``slot`` key, the rows (ordered by slot, as the cache gives them) are counted a slot at
    a time: no key spans two slots, and one slot's keys stay in the CPU's caches."""
    runs = [run for run, _ in slot_runs(rows)] if "slot" in grouping else []
    pieces = [_tally(run, grouping, field, "count_distinct") for run in runs or [rows]]
    return pa.concat_tables(pieces)  # ``runs or [rows]``: no slot, or no rows


def _scattered(ids: _Ints, width: int, keys: _Ints, size: int) -> tuple[_Ints, _Ints] | None:
    """Distinct (key, id) pairs per key (``keys`` in ``[0, size)``, one per row, with the
    row's id, in ``[0, width)``), counted without hashing, in passes (``_passed``) while
    each sets aside at least ``_PASS_GAIN`` of the rows left. Returns the counts per key
    and the indexes of the rows left, none of whose pairs is counted yet; ``None`` if a
    first pass over the rows of one id in eight sets aside less than that (ids spread over
    many groups: hash them all)."""
    picked = np.empty(width, keys.dtype)
    counts = np.zeros(size, np.int64)
    sample = ids % 8 == 0
    other = _passed(ids[sample], keys[sample], picked, counts)
    if np.count_nonzero(other) > (1 - _PASS_GAIN) * len(other):
        return None
    counts.fill(0)
    left = np.flatnonzero(_passed(ids, keys, picked, counts))  # the first pass: every row
    before = len(ids)
    while len(left) and before - len(left) >= _PASS_GAIN * before:
        before = len(left)
        left = left[_passed(ids[left], keys[left], picked, counts)]
    return counts, left


def _passed(ids: _Ints, keys: _Ints, picked: _Ints, counts: _Ints) -> _Ints:
    """One pass over rows (their ids and keys): every row's key is written at its id in
    ``picked``, so each id ends up with one of its keys (whichever write landed last). That
    pair is counted in ``counts``, and all its rows are set aside. Returns which rows are
    not (a mask). Pairs counted in different passes differ, so the counts stay exact."""
    picked.fill(-1)
    picked[ids] = keys
    counts += np.bincount(picked[picked >= 0], minlength=len(counts))
    other: _Ints = picked[ids] != keys
    return other


@dataclass(frozen=True, slots=True)
class _Packed:
    """A part's ``grouping`` columns packed into one integer key per row, in ``[0, size)``
    (mixed radix over each column's codes; made dense when that would be sparse), and how
    to unpack a key."""

    keys: _Ints
    size: int
    radixes: tuple[tuple[int, pa.Array | None, pa.DataType], ...]  # values: if encoded here
    dense: _Ints | None  # the mixed-radix key of each dense key

    @classmethod
    def of(cls, rows: pa.Table, grouping: Sequence[str]) -> _Packed | None:
        """``None``: the keys would not fit in 63 bits, or a column is not codes (nulls,
        negative numbers)."""
        keys = np.zeros(rows.num_rows, np.int64)
        radixes = []
        size = 1
        for name in grouping:
            column = rows[name].combine_chunks()
            values: pa.Array | None = None
            if pa.types.is_integer(column.type):
                codes = _codes(column)
                if codes is None:
                    return None
            else:  # the slot
                encoded = pc.dictionary_encode(column)
                codes, values = encoded.indices.to_numpy(), encoded.dictionary
            radix = int(codes.max()) + 1
            size *= radix
            if size >= 1 << 62:
                return None
            keys = keys * radix + codes
            radixes.append((radix, values, column.type))
        dense = None
        if size > 4 * rows.num_rows:  # arrays of ``size`` would be mostly empty
            encoded = pc.dictionary_encode(pa.array(keys))
            keys, dense = encoded.indices.to_numpy(), encoded.dictionary.to_numpy()
            size = len(dense)
        # Half the memory to write and read: a dense key fits ``int32`` (``size`` <= 4 rows).
        keys = keys.astype(np.int32 if size < 1 << 31 else np.int64)
        return cls(keys, size, tuple(radixes), dense)

    def columns(self, keys: _Ints) -> list[pa.Array]:
        """The grouping columns of ``keys`` (of ``self.keys``' values), as the part holds
        them."""
        packed = keys if self.dense is None else self.dense[keys]
        out = []
        for radix, values, kind in reversed(self.radixes):
            packed, codes = np.divmod(packed, radix)
            out.append(pa.array(codes).cast(kind) if values is None else values.take(codes))
        return out[::-1]


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
        return _total(pc.call_function(how, [table[column]]).as_py(), table)
    aggregates = [(column, how), ("cost_micro", "sum"), ("cost_pico", "sum")]
    counted = table.group_by(list(grouping), use_threads=False).aggregate(aggregates)
    sums = [f"{column}_{how}", "cost_micro_sum", "cost_pico_sum"]
    return counted.select([*grouping, *sums]).rename_columns([*grouping, *_COUNTED])


def _total(ids: int, table: pa.Table) -> pa.Table:
    """One row of ``_COUNTED``: ``ids``, and the spend of ``table``'s rows."""
    micro, pico = (pc.sum(table[m]).as_py() or 0 for m in ID_MEASURES[1:])
    return pa.table([[ids], [micro], [pico]], names=list(_COUNTED))


def _codes(column: pa.ChunkedArray | pa.Array) -> _Ints | None:
    """``column``'s values as a numpy array if they can be the cache's codes (integers, none
    null or negative), else ``None``."""
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_integer(values.type) or values.null_count:
        return None
    numbers: _Ints = values.to_numpy()
    return numbers if not len(numbers) or numbers.min() >= 0 else None
