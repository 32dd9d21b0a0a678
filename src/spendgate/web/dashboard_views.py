"""What the dashboard shows, computed from query rows: periods, comparisons, chart specs and
number formats. Pure: no I/O, the clock is passed in.

A *row* is a mapping of group fields (``project``, ``model``, ``bucket`` …) and measures
(``cost`` as ``Decimal``, ``requests``, tokens, ``cache_hit_rate`` …), as the query layer
returns it (``dashboard_data`` normalises the names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from spendgate.analytics import bucket_starts

Row = Mapping[str, Any]
RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
RANGES["90d"] = timedelta(days=90)
DEFAULT_RANGE = "7d"
OTHER = "(other)"
NONE_LABEL = "(none)"


@dataclass(frozen=True, slots=True)
class Window:
    """A time range [since, until) and the bucket its chart uses."""

    since: datetime
    until: datetime
    bucket: str

    @property
    def length(self) -> timedelta:
        return self.until - self.since


@dataclass(frozen=True, slots=True)
class Comparison:
    """A measure in the current period next to the same span of the previous one."""

    current: Decimal
    previous: Decimal

    @property
    def change(self) -> Decimal | None:
        """Relative change (0.25 = +25 %); None when there is nothing to compare with."""
        if self.previous == 0:
            return None
        return (self.current - self.previous) / self.previous


def window(range_name: str, now: datetime) -> Window:
    """The last ``range_name`` (``24h``, ``7d``, ``30d``, ``90d``) up to ``now``."""
    span = RANGES.get(range_name, RANGES[DEFAULT_RANGE])
    bucket = "hour" if span <= timedelta(days=2) else "day"
    return Window(now - span, now, bucket)


def day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def today_and_yesterday(now: datetime) -> tuple[Window, Window]:
    """Today so far, and yesterday up to the same time of day."""
    start = day_start(now)
    return Window(start, now, "hour"), Window(
        start - timedelta(days=1), now - timedelta(days=1), "hour"
    )


def month_and_previous(now: datetime) -> tuple[Window, Window]:
    """The month to date, and the same span of the previous month (cut at its end)."""
    start = month_start(now)
    previous_start = (start - timedelta(days=1)).replace(day=1)
    previous_end = min(previous_start + (now - start), start)
    return Window(start, now, "day"), Window(previous_start, previous_end, "day")


def total(rows: Iterable[Row], measure: str = "cost") -> Decimal:
    return sum((Decimal(str(r.get(measure) or 0)) for r in rows), Decimal(0))


def label(value: Any) -> str:
    return NONE_LABEL if value is None or value == "" else str(value)


def bucket_label(value: Any, bucket: str) -> str:
    """A bucket start as a short axis label: ``06-01 14:00`` for hours, ``2025-06-01`` else."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    moment = moment.astimezone(UTC)
    return moment.strftime("%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")


def series_chart(
    rows: Sequence[Row],
    win: Window,
    *,
    split: str | None = None,
    measure: str = "cost",
    top: int = 6,
) -> dict[str, Any]:
    """A stacked bar chart over time: one dataset per value of ``split`` (the ``top`` largest,
    the rest as "(other)"), or a single "total" dataset."""
    labels = [bucket_label(b, win.bucket) for b in bucket_starts(win.since, win.until, win.bucket)]
    index = {name: n for n, name in enumerate(labels)}
    keep = _largest(rows, split, measure, top) if split else set()
    sums: dict[str, list[Decimal]] = {}
    for row in rows:
        name = "total" if split is None else label(row.get(split))
        if split is not None and name not in keep:
            name = OTHER
        slot = index.get(bucket_label(row["bucket"], win.bucket))
        if slot is None:
            continue
        values = sums.setdefault(name, [Decimal(0)] * len(labels))
        values[slot] += Decimal(str(row.get(measure) or 0))
    order = sorted(sums, key=lambda n: (n == OTHER, -sum(sums[n])))
    datasets = [{"label": n, "data": [str(v) for v in sums[n]]} for n in order]
    return {
        "type": "bar",
        "stacked": True,
        "money": measure == "cost",
        "labels": labels,
        "datasets": datasets,
    }


def bar_chart(rows: Sequence[Row], field: str, measure: str = "cost") -> dict[str, Any]:
    """A horizontal bar per row (rows already ordered)."""
    return {
        "type": "bar",
        "horizontal": True,
        "money": measure == "cost",
        "labels": [label(r.get(field)) for r in rows],
        "datasets": [{"label": measure, "data": [str(r.get(measure) or 0) for r in rows]}],
    }


def _largest(rows: Iterable[Row], split: str, measure: str, top: int) -> set[str]:
    sums: dict[str, Decimal] = {}
    for row in rows:
        name = label(row.get(split))
        sums[name] = sums.get(name, Decimal(0)) + Decimal(str(row.get(measure) or 0))
    return set(sorted(sums, key=lambda n: -sums[n])[:top])


def share(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if whole == 0 else part / whole


# -- number formats (Jinja filters) ---------------------------------------------------------------


def fmt_money(value: Any) -> str:
    """``$1,234.57`` from a dollar up; ``$0.0412`` below; ``$0.000012`` below a hundredth of a
    cent (small calls are the common case); ``—`` for None."""
    if value is None:
        return "—"
    amount = Decimal(str(value))
    if abs(amount) >= 1 or amount == 0:
        return f"${amount:,.2f}"
    places = 4 if abs(amount) >= Decimal("0.0001") else 6
    return f"${amount:.{places}f}"


def fmt_cost(row: Row, measure: str = "cost") -> str:
    """A row's money measure, never a confident $0 for unpriced calls: ``unpriced`` when every
    call was, ``$0.0412 + 3 unpriced`` when some were."""
    unpriced, requests = int(row.get("unpriced") or 0), int(row.get("requests") or 0)
    if unpriced and unpriced >= requests:
        return "unpriced"
    text = fmt_money(row.get(measure))
    return f"{text} + {unpriced} unpriced" if unpriced and measure == "cost" else text


def fmt_number(value: Any) -> str:
    if value is None:
        return "—"
    number = Decimal(str(value))
    return f"{number:,.0f}" if number == number.to_integral_value() else f"{number:,.1f}"


def fmt_percent(value: Any) -> str:
    return "—" if value is None else f"{Decimal(str(value)) * 100:.1f}%"


def fmt_change(value: Any) -> str:
    """``+25.0%`` / ``−10.0%`` against the previous period; ``new`` when there was none."""
    if value is None:
        return "no previous data"
    change = Decimal(str(value)) * 100
    return f"{'+' if change >= 0 else '−'}{abs(change):.1f}% vs previous"


def filters_of(params: Mapping[str, str], fields: Sequence[str]) -> dict[str, str]:
    """The non-empty equality filters among ``fields`` in query parameters."""
    return {f: params[f] for f in fields if params.get(f)}
