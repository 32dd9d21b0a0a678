"""Pure arithmetic over spend sums: merge parts into buckets, money from integer parts,
percentiles from the latency histogram, ordering. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from spendgate.analytics.query import SpendRow
from spendgate.store.schema import LATENCY_BOUNDS_MS, LATENCY_BUCKETS
from spendgate.store.spend import SpendSums
from spendgate.store.types import from_pusd

MICRO = 1_000_000


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


def percentile(histogram: Sequence[int], fraction: float) -> float | None:
    """The latency (ms) below which ``fraction`` of the calls fall, by linear interpolation
    inside the histogram bucket that holds it (``None`` without calls). The open-ended last
    bucket answers its lower bound."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    lows = (0, *LATENCY_BOUNDS_MS)
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = lows[index]
            if index == len(LATENCY_BOUNDS_MS):
                return float(low)
            high = LATENCY_BOUNDS_MS[index]
            return round(low + (high - low) * (rank - seen) / count, 1)
        seen += count
    return float(lows[-1])


def merge(
    parts: Iterable[SpendSums], group_by: Sequence[str], bucket: str | None
) -> list[SpendRow]:
    """Add up parts with equal group values (and equal ``bucket`` after re-bucketing their
    slots) into ``SpendRow``s, in no particular order."""
    totals: dict[tuple[Any, ...], dict[str, int]] = {}
    for part in parts:
        slot = None if bucket is None or part.slot is None else bucket_start(part.slot, bucket)
        key = (part.keys, slot)
        sums = totals.get(key)
        if sums is None:
            totals[key] = dict(part.sums)
            continue
        for name, value in part.sums.items():
            sums[name] += value
    return [
        to_row(dict(zip(group_by, keys, strict=True)), slot, sums)
        for (keys, slot), sums in totals.items()
    ]


def to_row(keys: dict[str, str | None], slot: datetime | None, sums: dict[str, int]) -> SpendRow:
    """A ``SpendRow`` from additive sums (every ``ROLLUP_MEASURES`` name; ``DISTINCT_MEASURES``
    too for session counts)."""
    distinct = "sessions" in sums
    histogram = [sums[name] for name in LATENCY_BUCKETS] if "latency_h00" in sums else []
    return SpendRow(
        keys=keys,
        bucket=slot,
        requests=sums["requests"],
        errors=sums["errors"],
        unpriced=sums["unpriced"],
        input_tokens=sums["input_tokens"],
        output_tokens=sums["output_tokens"],
        cache_read_tokens=sums["cache_read_tokens"],
        cache_write_tokens=sums["cache_write_5m_tokens"] + sums["cache_write_1h_tokens"],
        cost=money(sums["cost_micro"], sums["cost_pico"]),
        error_cost=money(sums["error_cost_micro"], sums["error_cost_pico"]),
        latency_p50_ms=percentile(histogram, 0.50),
        latency_p95_ms=percentile(histogram, 0.95),
        sessions=sums["sessions"] if distinct else None,
        session_cost=_money_of(sums, "session_cost") if distinct else None,
        workflows=sums["workflows"] if distinct else None,
        workflow_cost=_money_of(sums, "workflow_cost") if distinct else None,
    )


def _money_of(sums: dict[str, int], prefix: str) -> Decimal:
    return money(sums.get(f"{prefix}_micro", 0), sums.get(f"{prefix}_pico", 0))


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
