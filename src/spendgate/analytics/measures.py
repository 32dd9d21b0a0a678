"""Pure arithmetic over spend sums: merge parts into buckets, money from integer parts,
percentiles from the latency histogram, ordering. No I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from operator import add
from typing import Any

from spendgate.analytics.query import SpendRow
from spendgate.store.schema import LATENCY_BOUNDS_MS, LATENCY_BUCKETS
from spendgate.store.spend import SpendSums
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


def money(micro: int, pico: int) -> Decimal:
    """Dollars from Σ whole microdollars and Σ picodollar remainders, exactly."""
    return from_pusd(micro * MICRO + pico)


def percentiles(histogram: Sequence[int], fractions: Sequence[float]) -> list[float | None]:
    """``percentile`` of each of ``fractions`` (each above 0), from one running total."""
    running = list(accumulate(histogram))
    total = running[-1] if running else 0
    if not total:
        return [None] * len(fractions)
    out: list[float | None] = []
    for fraction in fractions:
        rank = fraction * total
        index = bisect_left(running, rank)  # the first bucket whose running total reaches it
        low = _LOWS[index]
        if index == len(LATENCY_BOUNDS_MS):
            out.append(float(low))
            continue
        count = histogram[index]
        seen = running[index] - count
        out.append(round(low + (LATENCY_BOUNDS_MS[index] - low) * (rank - seen) / count, 1))
    return out


def percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """The latency (ms) below which ``fraction`` of the calls fall, by linear interpolation
    inside the histogram bucket that holds it (``None`` without calls). The open-ended last
    bucket answers its lower bound."""
    return percentiles(histogram, (fraction,))[0]


def merge(
    parts: Iterable[SpendSums], group_by: Sequence[str], bucket: str | None
) -> list[SpendRow]:
    """Add up parts with equal group values (and equal ``bucket`` after re-bucketing their
    slots) into ``SpendRow``s, in no particular order. A group whose requests add up to zero
    had events only in a subtracted part (``store.spend.plan``), so it is left out. Every
    part must hold the same measures (as ``store.spend.sum_spend`` returns them)."""
    totals: dict[tuple[Any, ...], list[int]] = {}
    starts: dict[datetime, datetime] = {}  # slot -> its bucket's start (slots repeat)
    names: tuple[str, ...] | None = None
    for part in parts:
        if names is None:
            names = part.names
        elif part.names != names:
            raise ValueError("parts hold different measures")
        slot = None if bucket is None else part.slot
        if slot is not None:
            start = starts.get(slot)
            if start is None:
                start = starts[slot] = bucket_start(slot, bucket)  # type: ignore[arg-type]
            slot = start
        key = (part.keys, slot)
        sums = totals.get(key)
        totals[key] = list(part.values) if sums is None else list(map(add, sums, part.values))
    if names is None:
        return []
    index = {name: i for i, name in enumerate(names)}
    requests = index["requests"]
    return [
        to_row(dict(zip(group_by, keys, strict=True)), slot, sums, index)
        for (keys, slot), sums in totals.items()
        if sums[requests]
    ]


def to_row(
    keys: dict[str, str | None], slot: datetime | None, sums: list[int], index: dict[str, int]
) -> SpendRow:
    """A ``SpendRow`` from additive sums (``sums[index[name]]`` for every ``ROLLUP_MEASURES``
    name; ``DISTINCT_MEASURES`` too for session counts)."""
    at = index.__getitem__
    p50 = p95 = None
    if "latency_h00" in index:
        first = at("latency_h00")
        p50, p95 = percentiles(sums[first : first + len(LATENCY_BUCKETS)], (0.50, 0.95))
    distinct = "sessions" in index
    return SpendRow(
        keys,
        slot,
        sums[at("requests")],
        sums[at("errors")],
        sums[at("unpriced")],
        sums[at("input_tokens")],
        sums[at("output_tokens")],
        sums[at("cache_read_tokens")],
        sums[at("cache_write_5m_tokens")] + sums[at("cache_write_1h_tokens")],
        money(sums[at("cost_micro")], sums[at("cost_pico")]),
        money(sums[at("error_cost_micro")], sums[at("error_cost_pico")]),
        p50,
        p95,
        sums[at("sessions")] if distinct else None,
        money(sums[at("session_cost_micro")], sums[at("session_cost_pico")]) if distinct else None,
        sums[at("workflows")] if distinct else None,
        money(sums[at("workflow_cost_micro")], sums[at("workflow_cost_pico")])
        if distinct
        else None,
    )


def ordered(rows: list[SpendRow], order: str, group_by: Sequence[str]) -> list[SpendRow]:
    """``rows`` sorted by ``order`` (a measure or field; ``-`` first: descending), missing
    values last; ties by bucket, then group values."""
    epoch = datetime.min.replace(tzinfo=UTC)
    rows = sorted(
        rows,
        key=lambda r: (r.bucket or epoch, tuple((v is None, v or "") for v in r.keys.values())),
    )
    name = order.removeprefix("-")
    present = [r for r in rows if r.measure(name) is not None]
    missing = [r for r in rows if r.measure(name) is None]
    present.sort(key=lambda r: r.measure(name), reverse=order.startswith("-"))
    return present + missing
