"""Pure arithmetic over spend sums: merge parts into buckets, money from integer parts,
percentiles from the latency histogram, ordering. No I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from operator import add, itemgetter
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


def merge(parts: Iterable[SpendSums], group_by: Sequence[str]) -> list[SpendRow]:
    """Add up parts with equal group values and slot (each part's slots are already the
    asked buckets: ``store.spend.sum_spend`` cuts them in SQL) into ``SpendRow``s, in no
    particular order. A group whose requests add up to zero had events only in a subtracted
    part (``store.spend.plan``), so it is left out. Every part must hold the same measures
    (as ``sum_spend`` returns them)."""
    totals: dict[tuple[Any, ...], list[int]] = {}
    names: tuple[str, ...] | None = None
    for part in parts:
        if names is None:
            names = part.names
        elif part.names != names:
            raise ValueError("parts hold different measures")
        key = (part.keys, part.slot)
        sums = totals.get(key)
        totals[key] = list(part.values) if sums is None else list(map(add, sums, part.values))
    if names is None:
        return []
    index = {name: i for i, name in enumerate(names)}
    requests = index["requests"]
    build = row_builder(index)
    return [
        build(dict(zip(group_by, keys, strict=True)), slot, sums)
        for (keys, slot), sums in totals.items()
        if sums[requests]
    ]


def row_builder(
    index: dict[str, int],
) -> Callable[[dict[str, str | None], datetime | None, list[int]], SpendRow]:
    """A function making a ``SpendRow`` from group keys, a slot and additive sums laid out as
    ``index`` says (``sums[index[name]]`` for every ``ROLLUP_MEASURES`` name;
    ``DISTINCT_MEASURES`` too for session counts). Positions are looked up once, not per row."""
    at = index.__getitem__
    requests, errors, unpriced = at("requests"), at("errors"), at("unpriced")
    tokens_in, tokens_out, cache_read = (
        at("input_tokens"),
        at("output_tokens"),
        at("cache_read_tokens"),
    )
    write_5m, write_1h = at("cache_write_5m_tokens"), at("cache_write_1h_tokens")
    cost, cost_pico, error, error_pico = (
        at(n) for n in ("cost_micro", "cost_pico", "error_cost_micro", "error_cost_pico")
    )
    first = index.get("latency_h00")
    last = None if first is None else first + len(LATENCY_BUCKETS)
    distinct = "sessions" in index

    def build(keys: dict[str, str | None], slot: datetime | None, sums: list[int]) -> SpendRow:
        p50 = p95 = None
        if first is not None:
            p50, p95 = percentiles(sums[first:last], (0.50, 0.95))
        return SpendRow(
            keys,
            slot,
            sums[requests],
            sums[errors],
            sums[unpriced],
            sums[tokens_in],
            sums[tokens_out],
            sums[cache_read],
            sums[write_5m] + sums[write_1h],
            money(sums[cost], sums[cost_pico]),
            money(sums[error], sums[error_pico]),
            p50,
            p95,
            *(_distinct(sums, index) if distinct else (None, None, None, None)),
        )

    return build


def _distinct(sums: list[int], index: dict[str, int]) -> tuple[Any, ...]:
    """sessions, session cost, workflows, workflow cost."""

    def cost(prefix: str) -> Decimal:
        return money(sums[index[f"{prefix}_micro"]], sums[index[f"{prefix}_pico"]])

    return (
        sums[index["sessions"]],
        cost("session_cost"),
        sums[index["workflows"]],
        cost("workflow_cost"),
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
    keyed = [(row.measure(name), row) for row in rows]  # each value computed once
    present = [pair for pair in keyed if pair[0] is not None]
    present.sort(key=itemgetter(0), reverse=order.startswith("-"))  # stable: ties keep order
    return [row for _, row in present] + [row for value, row in keyed if value is None]
