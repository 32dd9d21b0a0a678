"""A spend answer as columns: summed spend (``store.spend.sum_spend``'s table) turned into the
answer's measures, ordered and limited, then into ``SpendRow``s or straight into the API's
JSON, without a Python object per row in between.

    answer_table(sums, query) -> pa.Table       measures, ordered by query.order, limited
    answer_rows(table, group_by) -> [SpendRow]  for the dashboard and the CLI
    answer_json(table, group_by) -> str         the JSON array of rows (``row_to_dict``'s)

Every value equals what ``SpendRow`` and ``row_to_dict`` give for the same sums: money is
exact (picodollars, as two int64 columns ``<name>_micro`` and ``<name>_pico``, 0 <= pico <
10**6), and each ratio is its exact quotient rounded half-even to the places it is shown
with (``query.rounded_quotient``), here by long division in base 1000 so no intermediate
value leaves int64. Arithmetic is checked: a sum too large for int64 raises
``pyarrow.ArrowInvalid`` instead of wrapping. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spendgate.analytics.measures import percentile_columns
from spendgate.analytics.query import (
    COUNTS,
    INTEGERS,
    MAX_ROWS,
    MONEY,
    RATE_PLACES,
    SESSION_MONEY,
    SpendQuery,
    SpendRow,
)
from spendgate.errors import ConfigError
from spendgate.store.rollup_sql import MICRO
from spendgate.store.schema import LATENCY_BUCKETS
from spendgate.store.types import PICO, from_pusd


def answer_table(sums: pa.Table, query: SpendQuery) -> pa.Table:
    """The answer to ``query`` from its summed spend: the group fields, ``bucket`` (with a
    bucket), the counts and tokens, money, ``cache_hit_rate`` (millionths), latency p50/p95
    (float ms, ``None`` without calls or latency), and with ``query.sessions`` the session
    and workflow counts and money; ordered by ``query.order`` (missing values last, ties by
    bucket then group values) and cut to ``query.limit``. ``ConfigError`` for more than
    ``MAX_ROWS`` rows without a limit (as many as a 30-day question grouped by session, or by
    user and hour: ~120 MB of JSON taking seconds), rather than some of them silently."""
    if query.limit is None and sums.num_rows > MAX_ROWS:
        raise ConfigError(
            f"the answer has {sums.num_rows:,} rows, more than {MAX_ROWS:,}: narrow it with "
            "a filter, a shorter range or a coarser bucket, or give a limit for the top rows"
        )
    if query.limit is not None and sums.num_rows > query.limit:
        # The rows kept, ordered by the order's column alone (and the ties): the ratios and
        # percentiles of a few rows, not of every group (~300 ms for 340,000 sessions).
        keyed = pa.table(_columns(sums, query, only=query.order.removeprefix("-")))
        kept = pc.sort_indices(keyed, sort_keys=_sort_keys(keyed, query))[: query.limit]
        sums = sums.take(kept)
    table = pa.table(_columns(sums, query))
    order = pc.sort_indices(table, sort_keys=_sort_keys(table, query))
    return table.take(order if query.limit is None else order[: query.limit])


# The most values ``ranked`` keeps (each a bound parameter of the SQL parts): with more (a long
# limit, or many groups tied with the last), every group is summed.
_MAX_RANKED = 5000


def ranking(query: SpendQuery) -> Callable[[pa.Table, str], list[str] | None] | None:
    """What picks the groups that can be among ``query``'s rows from their requests and spend
    alone (``store.spend.sum_spend``'s ``rank``, ``_ranked``): for a limit of at most
    ``_MAX_RANKED`` rows ordered by cost or requests; else ``None``."""
    limited = query.limit is not None and query.limit <= _MAX_RANKED
    if not limited or query.order.removeprefix("-") not in ("cost", "requests"):
        return None
    return partial(_ranked, query)


def _ranked(query: SpendQuery, sums: pa.Table, field: str) -> list[str] | None:
    """The values of ``field`` (one of ``query.group_by``; ``''`` for a missing value) whose
    groups can be among ``query``'s first ``limit`` rows, from ``sums`` of the requests and
    spend alone: those of the rows first by the order, and of every row tied with the last of
    them (``answer_table`` orders ties by the group values). ``None``, every group: no more
    rows than the limit, or more than ``_MAX_RANKED`` values."""
    assert query.limit is not None  # ``ranking``
    if sums.num_rows <= query.limit:
        return None
    if query.order.removeprefix("-") == "cost":
        keys = pa.table(_normalised(sums["cost_micro"], sums["cost_pico"]), names=["micro", "pico"])
    else:
        keys = sums.select(["requests"])
    direction = "descending" if query.order.startswith("-") else "ascending"
    order = [(key, direction) for key in keys.column_names]
    first = pc.select_k_unstable(keys, k=query.limit, sort_keys=order)
    last = keys.take(first).sort_by(order).slice(query.limit - 1)
    tied = [pc.equal(keys[key], last[key][0]) for key in keys.column_names]
    ties = tied[0] if len(tied) == 1 else pc.and_(*tied)
    picked = [sums[field].take(first), sums[field].filter(ties)]
    values = pc.unique(pa.chunked_array([*picked[0].chunks, *picked[1].chunks], pa.string()))
    if len(values) > _MAX_RANKED:
        return None
    return pc.fill_null(values, "").to_pylist()  # type: ignore[no-any-return]


def _columns(sums: pa.Table, query: SpendQuery, only: str | None = None) -> dict[str, Any]:
    """``answer_table``'s columns of ``sums`` (``only``: the sums and the derived measure
    named, if it is one)."""

    def wanted(*names: str) -> bool:
        return only is None or only in names

    columns: dict[str, Any] = {name: sums[name] for name in query.group_by}
    if "slot" in sums.column_names:
        columns["bucket"] = sums["slot"]
    for name in COUNTS:
        columns[name] = sums[name]
    writes = pc.add_checked(sums["cache_write_5m_tokens"], sums["cache_write_1h_tokens"])
    columns["cache_write_tokens"] = writes
    prompt = pc.add_checked(pc.add_checked(sums["input_tokens"], sums["cache_read_tokens"]), writes)
    tokens = pc.add_checked(prompt, sums["output_tokens"])
    columns["total_tokens"] = tokens
    cost = _money(columns, "cost", sums["cost_micro"], sums["cost_pico"])
    _money(columns, "error_cost", sums["error_cost_micro"], sums["error_cost_pico"])
    if wanted("cost_per_1k_tokens"):
        _put(columns, "cost_per_1k_tokens", *_quotient([*cost, _ZERO], tokens))
    if wanted("cost_per_request"):
        _put(columns, "cost_per_request", *_quotient(cost, sums["requests"]))
    if wanted("cache_hit_rate"):
        whole, millionths = _quotient([sums["cache_read_tokens"], _ZERO, _ZERO], prompt)
        columns["cache_hit_rate"] = pc.add(pc.multiply(whole, MICRO), millionths)  # RATE_PLACES
    if wanted("latency_p50_ms", "latency_p95_ms"):
        p50 = p95 = pa.nulls(sums.num_rows, pa.float64())
        if LATENCY_BUCKETS[0] in sums.column_names:
            p50, p95 = percentile_columns([sums[b] for b in LATENCY_BUCKETS], (0.50, 0.95))
        columns["latency_p50_ms"], columns["latency_p95_ms"] = p50, p95
    if query.sessions:
        for name, plural in (("session", "sessions"), ("workflow", "workflows")):
            columns[plural] = sums[plural]
            spent = _money(
                columns, f"{name}_cost", sums[f"{name}_cost_micro"], sums[f"{name}_cost_pico"]
            )
            if wanted(f"cost_per_{name}"):
                _put(columns, f"cost_per_{name}", *_quotient(spent, sums[plural]))
    return columns


# A digit of the long division that is always 0: ``_quotient`` broadcasts the scalar.
_ZERO = pa.scalar(0, pa.int64())


def _money(
    columns: dict[str, Any], name: str, micro: pa.ChunkedArray, pico: pa.ChunkedArray
) -> list[Any]:
    """Σ micro and Σ pico remainders normalised (pico below 10**6) into ``columns``; returns
    the value's base-1000 digits (``_quotient``'s numerator: micro, pico's two halves)."""
    if len(micro) and min(pc.min(micro).as_py(), pc.min(pico).as_py()) < 0:
        raise ValueError(f"negative {name} sums: spend sums are never negative")
    micro, pico = _normalised(micro, pico)
    _put(columns, name, micro, pico)
    high = pc.divide(pico, 1000)
    return [micro, high, pc.subtract(pico, pc.multiply(high, 1000))]


def _normalised(high: Any, low: Any) -> tuple[Any, Any]:
    """``high * 10**6 + low`` (both non-negative) with what ``low`` holds of 10**6 and more
    carried into ``high``."""
    carry = pc.divide(low, MICRO)
    return pc.add_checked(high, carry), pc.subtract(low, pc.multiply(carry, MICRO))


def _put(columns: dict[str, Any], name: str, micro: Any, pico: Any) -> None:
    columns[f"{name}_micro"], columns[f"{name}_pico"] = micro, pico


def _quotient(digits: Sequence[Any], divisor: Any) -> tuple[pa.Array, pa.Array]:
    """round-half-even(N / divisor) for each row, N = Σ digits[i] * 1000**(len - 1 - i)
    (every digit but the first below 1000, all non-negative), as (Q // 10**6, Q % 10**6);
    null where the divisor is 0. Long division: each step divides ``remainder * 1000 +
    digit`` (below ``1000 * divisor``) and gives one base-1000 digit of Q."""
    none = pc.equal(divisor, 0)
    safe = pc.if_else(none, 1, divisor)
    steps: list[Any] = []
    remainder: Any = None
    for digit in digits:
        if remainder is None:
            current = pc.if_else(none, 0, digit)
        else:
            current = pc.add_checked(pc.multiply_checked(remainder, 1000), digit)
        steps.append(pc.divide(current, safe))
        remainder = pc.subtract(current, pc.multiply(steps[-1], safe))
    twice = pc.multiply_checked(remainder, 2)
    odd = pc.equal(pc.bit_wise_and(steps[-1], 1), 1)
    up = pc.or_(pc.greater(twice, safe), pc.and_(pc.equal(twice, safe), odd))
    low = pc.add(pc.add(pc.multiply(steps[-2], 1000), steps[-1]), pc.cast(up, pa.int64()))
    high = steps[0]
    for step in steps[1:-2]:
        high = pc.add_checked(pc.multiply_checked(high, 1000), step)
    high, low = _normalised(high, low)  # a rounding up to 10**6
    nothing = pa.scalar(None, pa.int64())
    return pc.if_else(none, nothing, high), pc.if_else(none, nothing, low)


def _sort_keys(table: pa.Table, query: SpendQuery) -> list[tuple[str, str, str]]:
    """``query.order`` (a measure, ``bucket`` or a group field; ``-``: descending; missing
    values last), then the ties: bucket, then each group field (missing values last)."""
    name = query.order.removeprefix("-")
    direction = "descending" if query.order.startswith("-") else "ascending"
    if name in (*MONEY, *SESSION_MONEY):
        first = [f"{name}_micro", f"{name}_pico"]
    else:
        first = [name] if name in table.column_names else []  # "bucket" without a bucket
    ties = [*(["bucket"] if "bucket" in table.column_names else []), *query.group_by]
    keys = [(column, direction, "at_end") for column in first]
    return keys + [(column, "ascending", "at_end") for column in ties]


def answer_rows(table: pa.Table, group_by: Sequence[str]) -> list[SpendRow]:
    """``SpendRow``s from ``answer_table``'s table, in its order."""
    count = table.num_rows
    names = set(table.column_names)

    def column(name: str) -> list[Any]:
        values: list[Any] = table[name].to_pylist()
        return values

    def dollars(name: str) -> list[Any]:
        micro, pico = column(f"{name}_micro"), column(f"{name}_pico")
        return [from_pusd(m * MICRO + p) for m, p in zip(micro, pico, strict=True)]

    if group_by:
        values = zip(*map(column, group_by), strict=True)
        keys = [dict(zip(group_by, row, strict=True)) for row in values]
    else:
        keys = [{} for _ in range(count)]
    nothing: list[Any] = [None] * count
    distinct: list[list[Any]] = [nothing] * 4
    if "sessions" in names:
        distinct = [
            column("sessions"),
            dollars("session_cost"),
            column("workflows"),
            dollars("workflow_cost"),
        ]
    return [
        SpendRow(*fields)
        for fields in zip(
            keys,
            _repeated(table["bucket"]) if "bucket" in names else nothing,
            *map(column, (*COUNTS, "cache_write_tokens")),
            dollars("cost"),
            dollars("error_cost"),
            column("latency_p50_ms"),
            column("latency_p95_ms"),
            *distinct,
            strict=True,
        )
    ]


def _repeated(values: pa.ChunkedArray) -> list[Any]:
    """A column with few distinct values (the buckets) as Python objects: each distinct one
    made once (an aware datetime costs ~5 µs to make: 50 ms for 10,000 rows)."""
    coded = pc.dictionary_encode(values.combine_chunks())
    distinct = coded.dictionary.to_pylist()
    return [distinct[index] for index in coded.indices.to_pylist()]


def answer_json(table: pa.Table, group_by: Sequence[str]) -> str:
    """``answer_table``'s table as a JSON array of the objects ``row_to_dict`` makes (same
    keys, same values), each value turned to JSON text column-wise; a big table's halves at
    once, in this thread and another (Arrow's kernels do not hold the GIL)."""
    if not table.num_rows:
        return "[]"
    if table.num_rows < _HALVED_ROWS:
        return f"[{_json_rows(table, group_by)}]"
    half = table.num_rows // 2
    with ThreadPoolExecutor(1, thread_name_prefix="spendgate-json-half") as other:
        later = other.submit(_json_rows, table.slice(half), group_by)
        first = _json_rows(table.slice(0, half), group_by)
        return f"[{first},{later.result()}]"


# Answers with more rows than this are written in two halves at once (``answer_json``).
_HALVED_ROWS = 4000


def _json_rows(table: pa.Table, group_by: Sequence[str]) -> str:
    """The rows of ``table`` (at least one) as JSON objects, comma-separated."""
    names = set(table.column_names)
    fields: list[tuple[str, pa.Array]] = [(name, _text(table[name])) for name in group_by]
    if "bucket" in names:
        fields.append(("bucket", _stamps(table["bucket"])))
    fields += [(name, pc.cast(table[name], pa.string())) for name in INTEGERS]
    fields += [(name, _dollars(table, name)) for name in MONEY]
    fields.append(("cache_hit_rate", _decimal(table["cache_hit_rate"], RATE_PLACES)))
    fields += [(name, _floats(table[name])) for name in ("latency_p50_ms", "latency_p95_ms")]
    if "sessions" in names:
        fields += [(name, pc.cast(table[name], pa.string())) for name in ("sessions", "workflows")]
        fields += [(name, _dollars(table, name)) for name in SESSION_MONEY]
    pieces: list[Any] = []
    for index, (name, text) in enumerate(fields):
        pieces += [("{" if not index else ",") + json.dumps(name) + ":", pc.fill_null(text, "null")]
    return _concatenated(_joined(*pieces, "},"))[:-1]


def _joined(*pieces: Any) -> pa.Array:
    """Strings (scalars and string columns) joined row by row."""
    columns = (pa.scalar(p) if isinstance(p, str) else p for p in pieces)
    return pc.binary_join_element_wise(*columns, "")


def _concatenated(text: pa.Array | pa.ChunkedArray) -> str:
    """The strings of ``text`` back to back, read from its buffers (no Python string per
    row: ~0.5 µs a row)."""
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    parts = []
    for chunk in chunks:
        if len(chunk):
            _, offsets, data = chunk.buffers()
            ends = np.frombuffer(offsets, np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
            parts.append(str(memoryview(data)[ends[0] : ends[-1]], "utf-8"))
    return "".join(parts)


def _per_distinct(values: pa.ChunkedArray, text: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``text`` of each distinct value of ``values`` (made once per value), row by row."""
    coded = pc.dictionary_encode(values.combine_chunks())
    return pc.take(text(coded.dictionary), coded.indices)


def _text(values: pa.ChunkedArray) -> pa.Array:
    """A string column as JSON strings: each distinct value quoted, and escaped by
    ``json.dumps`` if it holds a quote, a backslash or a control character."""
    return _per_distinct(values, _quoted)


def _quoted(distinct: pa.Array) -> pa.Array:
    literals = _joined('"', distinct, '"')
    escaped = pc.match_substring_regex(distinct, r'["\\\x00-\x1f]')
    if pc.any(escaped).as_py():
        written = [json.dumps(v, ensure_ascii=False) for v in distinct.filter(escaped).to_pylist()]
        literals = pc.replace_with_mask(literals, escaped, pa.array(written, pa.string()))
    return literals


def _stamps(buckets: pa.ChunkedArray) -> pa.Array:
    """The buckets as JSON strings, ISO 8601 in UTC (each distinct one formatted once:
    Arrow's ``strftime`` takes ~4 µs a value)."""
    return _per_distinct(
        buckets, lambda starts: _joined('"', pc.strftime(starts, "%Y-%m-%dT%H:%M"), ':00Z"')
    )


def _dollars(table: pa.Table, name: str) -> pa.Array:
    """A money column's JSON text (``money_text``: a decimal string, trailing zeros gone)."""
    micro, pico = table[f"{name}_micro"], table[f"{name}_pico"]
    whole = pc.divide(micro, MICRO)
    fraction = pc.add(pc.multiply(pc.subtract(micro, pc.multiply(whole, MICRO)), MICRO), pico)
    return _decimal_text(whole, fraction, PICO)


def _decimal(scaled: pa.ChunkedArray, places: int) -> pa.Array:
    """Non-negative integers counting 10**-places as JSON decimal strings."""
    unit = 10**places
    whole = pc.divide(scaled, unit)
    return _decimal_text(whole, pc.subtract(scaled, pc.multiply(whole, unit)), places)


def _decimal_text(whole: Any, fraction: Any, places: int) -> pa.Array:
    digits = pc.ascii_rtrim(pc.ascii_lpad(pc.cast(fraction, pa.string()), places, "0"), "0")
    point = pc.if_else(pc.equal(pc.binary_length(digits), 0), "", ".")
    return _joined('"', pc.cast(whole, pa.string()), point, digits, '"')


def _floats(values: pa.ChunkedArray) -> pa.Array:
    """Floats as JSON numbers, exactly as ``json.dumps`` writes them (``repr``). A value of
    tenths (``measures.tenths``: the percentiles) from 0 to 1e14 is written column-wise as
    its tenths ``q``: ``q // 10``, a point and ``q % 10`` (the shortest text that reads back
    as it, which is what ``repr`` writes); any other value by ``repr``."""
    v, null = values.to_numpy(), values.is_null().to_numpy()  # nulls as NaN
    with np.errstate(invalid="ignore"):
        q = np.rint(v * 10)
        plain = (q / 10 == v) & ~np.signbit(v) & (v < 1e14)
    parts = np.divmod(np.where(plain, q, 0).astype(np.int64), 10)
    whole, digit = (pa.array(part).cast(pa.string()) for part in parts)
    text = _joined(whole, ".", digit)
    other = ~plain & ~null
    if other.any():
        written = pa.array([repr(float(x)) for x in v[other]], pa.string())
        text = pc.replace_with_mask(text, pa.array(other), written)
    return pc.if_else(pa.array(null), pa.scalar(None, pa.string()), text)
