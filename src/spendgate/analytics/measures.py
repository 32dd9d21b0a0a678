"""Pure arithmetic over spend sums: answer rows from summed columns, money from integer parts,
percentiles from the latency histogram, ordering. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import reduce
from itertools import accumulate

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spendgate.store.schema import LATENCY_BOUNDS_MS
from spendgate.store.types import bucket_start

_LOWS = (0, *LATENCY_BOUNDS_MS)  # each histogram bucket's lower bound (ms)


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
    return [values[0].as_py() for values in columns]


def percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """The latency (ms) below which ``fraction`` of the calls fall, by linear interpolation
    inside the histogram bucket that holds it (``None`` without calls). The open-ended last
    bucket answers its lower bound."""
    return percentiles(histogram, (fraction,))[0]


def percentile_columns(
    histogram: Sequence[pa.Array | pa.ChunkedArray], fractions: Sequence[float]
) -> list[pa.Array]:
    """``percentile`` of each of ``fractions`` for many histograms at once: ``histogram``
    holds one int64 column per bucket (a row per histogram), and each answer is one float64
    column, a value per row. Column-wise (Arrow), with the same float operations in the same
    order as the formula for one row, then ``tenths`` (Python's ``round``: so each value is
    what that formula gives)."""
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
        out.append(tenths(pc.if_else(pc.greater(total, 0), value, None)))
    return out


def tenths(values: pa.Array) -> pa.Array:
    """Each float rounded to one decimal exactly as Python's ``round(v, 1)`` does, column-wise:
    ``rint(10 v) / 10`` (both steps correctly rounded) where ``10 v`` is no nearer than 1e-5
    to a half (its own rounding error is under 1e-6 below 1e9); elsewhere, and from 1e9 up,
    by ``round`` itself."""
    v = values.to_numpy(zero_copy_only=False)  # nulls as NaN
    with np.errstate(invalid="ignore"):
        scaled = v * 10
        out = np.rint(scaled) / 10
        doubtful = ~(np.abs(scaled - np.floor(scaled) - 0.5) >= 1e-5) | ~(np.abs(v) < 1e9)
    for i in np.flatnonzero(doubtful & ~np.isnan(v)):
        out[i] = round(float(v[i]), 1)
    return pa.array(out, pa.float64(), mask=values.is_null().to_numpy(zero_copy_only=False))
