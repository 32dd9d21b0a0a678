"""Pure arithmetic over spend sums: answer rows from summed columns, money from integer parts,
percentiles from the latency histogram, ordering. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import reduce
from itertools import accumulate
from operator import itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spendgate.analytics.query import COUNTS, SpendRow
from spendgate.store.schema import LATENCY_BOUNDS_MS, LATENCY_BUCKETS
from spendgate.store.types import from_pusd

MICRO = 1_000_000
_LOWS = (0, *LATENCY_BOUNDS_MS)  # each histogram bucket's lower bound (ms)


def bucket_start(moment: datetime, bucket: str) -> datetime:
    """The start (UTC) of the ``hour`` / ``day`` / ``week`` (ISO: Monday) / ``month`` holding
    ``moment``."""
    moment = moment.astimezone(UTC)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "day":
        return day
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown bucket {bucket!r}")


def next_bucket(start: datetime, bucket: str) -> datetime:
    """The start of the bucket after the one starting at ``start``."""
    if bucket == "month":
        year, month = divmod(start.month, 12)
        return start.replace(year=start.year + year, month=month + 1)
    step = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
    return start + step[bucket]


def bucket_starts(since: datetime, until: datetime, bucket: str) -> list[datetime]:
    """Every bucket start that overlaps ``[since, until)``, in order."""
    starts = []
    current = bucket_start(since, bucket)
    while current < until:
        starts.append(current)
        current = next_bucket(current, bucket)
    return starts


def percentiles(histogram: Sequence[int], fractions: Sequence[float]) -> list[float | None]:
    """``percentile`` of each of ``fractions`` (each above 0) for one histogram."""
    columns = percentile_columns([pa.array([count], pa.int64()) for count in histogram], fractions)
    return [values[0] for values in columns]


def percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """The latency (ms) below which ``fraction`` of the calls fall, by linear interpolation
    inside the histogram bucket that holds it (``None`` without calls). The open-ended last
    bucket answers its lower bound."""
    return percentiles(histogram, (fraction,))[0]


def percentile_columns(
    histogram: Sequence[pa.Array | pa.ChunkedArray], fractions: Sequence[float]
) -> list[list[float | None]]:
    """``percentile`` of each of ``fractions`` for many histograms at once: ``histogram``
    holds one int64 column per bucket (a row per histogram), and each answer is one value
    per row. Column-wise (Arrow), with the same float operations in the same order as the
    formula for one row, then Python's ``round`` (so each value is what that formula gives)."""
    running = list(accumulate(histogram, pc.add))
    total = pc.cast(running[-1], pa.float64())
    lows, highs = pa.array(_LOWS, pa.int64()), pa.array((*LATENCY_BOUNDS_MS, 0), pa.int64())
    out: list[list[float | None]] = []
    for fraction in fractions:
        rank = pc.multiply(total, fraction)
        # the first bucket whose running total reaches the rank: how many stay below it
        below = [pc.cast(pc.less(pc.cast(r, pa.float64()), rank), pa.int32()) for r in running]
        index = reduce(pc.add, below)
        low = pc.take(lows, index)
        count = pc.choose(index, *histogram)
        seen = pc.subtract(pc.choose(index, *running), count)
        share = pc.divide(
            pc.multiply(pc.subtract(pc.take(highs, index), low), pc.subtract(rank, seen)),
            pc.cast(count, pa.float64()),
        )
        value = pc.add(pc.cast(low, pa.float64()), share)
        value = pc.if_else(
            pc.equal(index, len(LATENCY_BOUNDS_MS)), pc.cast(low, pa.float64()), value
        )
        value = pc.if_else(pc.greater(total, 0), value, None)
        out.append([None if v is None else round(v, 1) for v in value.to_pylist()])
    return out


def rows_of(table: pa.Table, group_by: Sequence[str]) -> list[SpendRow]:
    """``SpendRow``s from summed spend (``store.spend.sum_spend``'s table: a column per
    group-by field, ``slot`` when bucketed, the additive measures), in its order. Each
    measure is converted column by column; latency p50/p95 when the latency histogram is
    there, session and workflow counts when the distinct measures are."""
    count = table.num_rows
    names = set(table.column_names)

    def column(name: str) -> list[Any]:
        values: list[Any] = table[name].to_pylist()
        return values

    def dollars(prefix: str) -> list[Decimal]:  # from Σ microdollars and Σ pico remainders
        micro, pico = column(f"{prefix}_micro"), column(f"{prefix}_pico")
        return [from_pusd(m * MICRO + p) for m, p in zip(micro, pico, strict=True)]

    if group_by:
        values = zip(*map(column, group_by), strict=True)
        keys = [dict(zip(group_by, row, strict=True)) for row in values]
    else:
        keys = [{} for _ in range(count)]
    nothing: list[Any] = [None] * count
    p50 = p95 = nothing
    if LATENCY_BUCKETS[0] in names:
        p50, p95 = percentile_columns([table[b] for b in LATENCY_BUCKETS], (0.50, 0.95))
    distinct: list[list[Any]] = [nothing] * 4
    if "sessions" in names:
        distinct = [
            column("sessions"),
            dollars("session_cost"),
            column("workflows"),
            dollars("workflow_cost"),
        ]
    writes = pc.add(table["cache_write_5m_tokens"], table["cache_write_1h_tokens"]).to_pylist()
    return [
        SpendRow(*fields)
        for fields in zip(
            keys,
            column("slot") if "slot" in names else nothing,
            *map(column, COUNTS),
            writes,
            dollars("cost"),
            dollars("error_cost"),
            p50,
            p95,
            *distinct,
            strict=True,
        )
    ]


def tie_ordered(table: pa.Table, group_by: Sequence[str]) -> pa.Table:
    """``table`` (summed spend) sorted by slot, then by the group values in order (missing
    values last): the order ``ordered`` keeps among equal values. Sorted in Arrow (UTF-8
    byte order is code point order: Python's order of ``str``)."""
    names = [*(["slot"] if "slot" in table.column_names else []), *group_by]
    if not names:
        return table
    keys = [(name, "ascending", "at_end") for name in names]
    return table.take(pc.sort_indices(table, sort_keys=keys))


def ordered(rows: list[SpendRow], order: str) -> list[SpendRow]:
    """``rows`` (in ``tie_ordered`` order) sorted by ``order`` (a measure or field; ``-``
    first: descending), missing values last; equal values keep their order."""
    name = order.removeprefix("-")
    keyed = [(row.measure(name), row) for row in rows]  # each value computed once
    present = [pair for pair in keyed if pair[0] is not None]
    present.sort(key=itemgetter(0), reverse=order.startswith("-"))  # stable: ties keep order
    return [row for _, row in present] + [row for value, row in keyed if value is None]
