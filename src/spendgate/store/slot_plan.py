"""Which slots the rollup cache holds and warms (``store.rollup_cache``): the longest part of
each rollup it answers (``MAX_SPAN``), which hourly rollups are answered from projected slots
over more than ``HOURS`` (``projects``), what warming loads (``warm_requests``) and which slots
are read in one statement (``load_runs``). Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from spendgate.store.schema import ID_SHEETS, ROLLUP_DIMENSIONS, ROLLUP_SPECS, RollupSpec
from spendgate.store.types import floor_time

# The longest part the cache answers, by rollup (longer ones go to SQL): every slot of it is
# held at once. An hourly facet slot is small (one field's values in an hour), so a month of
# them is held. The other hourly rollups' slots hold every combination of their fields: a part
# of up to ``HOURS`` is summed from them whole; a longer part from their projections
# (``projects``), which are small too, or from the whole slots while those are held and the
# projections not yet (``RollupCache._projection``). The id rollups' hourly slots are never
# projected (an id is a key of every question they answer, so a projection would keep most
# rows): a month of them is held whole, for hourly series with distinct counts or by an id.
_DAYS = timedelta(days=92)  # of a daily rollup (and the most days warming loads)
_SERIES_HOURS = timedelta(days=32)  # of the hourly facet and id rollups, and of projections
HOURS = timedelta(hours=72)  # of whole hourly slots summed as such (warming loads these hours)
# The most consecutive slots read in one statement, by grain (a statement costs more than a
# small slot's rows; a day of the full hourly rollup is ~85,000 rows at 10 M events, a week of
# the full daily one ~150,000).
_RUN_SLOTS = {"hour": 24, "day": 7}


def projects(spec: RollupSpec) -> bool:
    """Whether a long part of this rollup is answered from projected slots: its slot's rows,
    summed by the fields a question names (an hourly rollup keyed by its dimensions)."""
    return spec.grain == "hour" and not (spec.facets or spec.pairs or spec.ids)


def _series(spec: RollupSpec) -> bool:
    """Whether the cache answers a month of this hourly rollup (an hourly series)."""
    return spec.grain == "hour" and (spec.facets or spec.ids or projects(spec))


def _max_span(spec: RollupSpec) -> timedelta:
    if spec.grain == "day":
        return _DAYS
    return _SERIES_HOURS if _series(spec) else HOURS


MAX_SPAN = {spec.name: _max_span(spec) for spec in ROLLUP_SPECS}


@dataclass(frozen=True, slots=True)
class SlotRange:
    """Slots for the worker to load: those of ``table`` in ``[start, end)`` (of a facet or
    pair rollup: of dimension ``sheet``). A ``warm`` request (``RollupCache.warm``) is loaded
    only while the copies take under ``rollup_cache.WARM_SHARE`` of the cache."""

    table: str
    sheet: str
    start: datetime
    end: datetime
    warm: bool = False


def _sheets(spec: RollupSpec) -> list[str]:
    """The dimensions a rollup's slots are split by (``''``: one, unsplit)."""
    if spec.ids:
        return [",".join(sheet) for sheet in ID_SHEETS]
    if spec.facets:
        return list(spec.dimensions)
    if spec.pairs:
        return [f"{first},{second}" for first, second in spec.pairs]
    return [""]


def _warm_order(spec: RollupSpec) -> tuple[int, int]:
    """Facet rollups first, then the others, the full rollups (every dimension) and then the
    id rollups last; daily before hourly."""
    full = not spec.facets and not spec.pairs and len(spec.dimensions) == len(ROLLUP_DIMENSIONS)
    size = 0 if spec.facets else 3 if spec.ids else 2 if full else 1
    return size, spec.grain == "hour"


def warm_requests(now: datetime, days: int) -> list[SlotRange]:
    """What ``RollupCache.warm`` asks its worker to load, in order, so that questions over
    the last ``days`` days up to ``now`` are answered from memory: of a daily rollup, the
    last ``days`` + 1 days (up to ``MAX_SPAN``); of an hourly one, the last ``HOURS`` and the
    two days around that start (the edges of such a window); each facet dimension, pair and
    id field apart; smallest rollups first. Then, for hourly series, every hour of those
    days (up to ``MAX_SPAN``) of each field of the hourly facet rollup, then whole of the
    rollups that ``projects``, then of each id field of the hourly id rollup."""
    first: list[SlotRange] = []
    series: list[SlotRange] = []
    for spec in sorted(ROLLUP_SPECS, key=_warm_order):
        step = timedelta(hours=1) if spec.grain == "hour" else timedelta(days=1)
        end = floor_time(now, step) + step
        start = end - min(timedelta(days=days + 1), _DAYS)
        if spec.grain == "hour":  # the last hours, and the hours around that start
            ranges = [(end - HOURS, end), (start, start + timedelta(days=2))]
        else:
            ranges = [(start, end)]
        for sheet in _sheets(spec):
            for low, high in ranges:
                first.append(SlotRange(spec.name, sheet, low, high, warm=True))
            if _series(spec):
                low = max(start, end - _SERIES_HOURS)
                series.append(SlotRange(spec.name, sheet, low, end, warm=True))
    return first + series


def load_runs(
    marks: Iterable[tuple[datetime, str, object]], held: Callable[[datetime, str], bool], grain: str
) -> list[list[tuple[datetime, str]]]:
    """The slots of ``marks`` (bucket, token, …; in bucket order) to read, as runs of
    consecutive ones (bucket, token) to read in one statement each: a slot ``held`` (bucket,
    token) is skipped and ends a run; a run holds at most ``_RUN_SLOTS`` of ``grain``."""
    runs: list[list[tuple[datetime, str]]] = [[]]
    for bucket, token, _ in marks:
        if held(bucket, token):
            runs.append([])
        elif len(runs[-1]) < _RUN_SLOTS[grain]:
            runs[-1].append((bucket, token))
        else:
            runs.append([(bucket, token)])
    return [run for run in runs if run]
