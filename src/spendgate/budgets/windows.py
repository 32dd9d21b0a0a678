"""Window arithmetic (pure: ``now`` is passed in).

Counters keep usage in *buckets* identified by an integer:

- a calendar window has one bucket per period, identified by the period's start (Unix seconds);
  a call counts in the period it started in;
- a rolling window is split into ``SLOTS`` slots (1 s for a minute, 1 min for an hour, 24 min for a
  day); a bucket is a slot number (Unix seconds // slot length) and the window's usage is the
  sum of the last ``SLOTS`` slots, the current one included. Usage therefore ages out slot by slot:
  the window is exact to one slot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from spendgate.budgets.model import ROLLING_SECONDS, Budget, Window, zone

SLOTS = 60


@dataclass(frozen=True, slots=True)
class Span:
    """Where ``now`` falls in a budget's window."""

    bucket: int  # the bucket a call starting now counts in
    slots: int  # buckets the window sums: SLOTS (rolling) or 1 (calendar)
    start: datetime  # the window's start (UTC)
    end: datetime  # calendar: the next period's start; rolling: now
    ttl_s: int  # how long the current bucket stays relevant (a counter may forget it after)

    def slot_end(self, bucket: int, budget: Budget) -> datetime:
        """When usage counted in ``bucket`` leaves the window."""
        if self.slots == 1:
            return self.end
        slot = ROLLING_SECONDS[budget.window] // SLOTS
        return datetime.fromtimestamp((bucket + 1) * slot + slot * (SLOTS - 1), UTC)


def span(budget: Budget, now: datetime) -> Span:
    if budget.window.rolling:
        length = ROLLING_SECONDS[budget.window]
        slot = length // SLOTS
        bucket = int(now.timestamp()) // slot
        start = datetime.fromtimestamp((bucket - SLOTS + 1) * slot, UTC)
        return Span(bucket, SLOTS, start, now, length + slot)
    start, end = calendar_period(budget.window, budget.timezone, now)
    ttl = math.ceil((end - now).total_seconds()) + 3600
    return Span(int(start.timestamp()), 1, start, end, ttl)


class Spans:
    """``span`` with a memory: a calendar period is worked out once (then reused until it
    ends), a rolling slot once per slot. The gateway asks for every matching budget of every
    call, so this keeps time-zone arithmetic off the hot path."""

    def __init__(self) -> None:
        self._how: dict[str, tuple[int, tuple[Window, str]]] = {}  # budget id -> slot s, period
        self._known: dict[object, Span] = {}  # slot seconds or (window, zone) -> latest span

    def __call__(self, budget: Budget, now: datetime, ts: int | None = None) -> Span:
        how = self._how.get(budget.id)
        if how is None:
            slot = ROLLING_SECONDS[budget.window] // SLOTS if budget.window.rolling else 0
            how = self._how[budget.id] = (slot, (budget.window, budget.timezone))
        slot, period = how
        if slot:
            known = self._known.get(slot)
            if known is None or known.bucket != (ts or int(now.timestamp())) // slot:
                known = self._known[slot] = span(budget, now)
            return known
        known = self._known.get(period)
        if known is None or not known.start <= now < known.end:
            known = self._known[period] = span(budget, now)
        return known


def calendar_period(window: Window, timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """(start, end) of the calendar day, week (from Monday) or month containing ``now``,
    in ``timezone``, as UTC datetimes. DST days are 23 or 25 hours long, as on a wall clock."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if window is Window.CALENDAR_DAY:
        first, after = day, day + timedelta(days=1)
    elif window is Window.CALENDAR_WEEK:
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    return _utc(first, tz), _utc(after, tz)


def _utc(wall: datetime, tz: tzinfo) -> datetime:
    return wall.replace(tzinfo=tz).astimezone(UTC)
