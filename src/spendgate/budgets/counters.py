"""Budget counters: the ``Counter`` protocol and the in-memory backend.

Amounts are integers in the metric's unit: nanodollars for cost (``to_units``), tokens, requests.
A counter keeps, per budget and bucket (``spendgate.budgets.windows``), what was *used* (settled)
and what is *reserved* (held by calls in flight). ``reserve`` is all-or-nothing: either every
hold is added, or none is and the answer lists the holds that would cross their limit.

The memory backend is exact and atomic because the gateway runs on one event loop: nothing
awaits between its check and its increment. The Redis backend (``redis_counters``) does the same
in one Lua script, so replicas share one limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import NamedTuple, Protocol

from spendgate.budgets.model import Metric

NANO = Decimal("1e9")


class Hold(NamedTuple):
    """One budget's share of a call: ``amount`` units in ``bucket`` of ``budget_id``'s window.
    (A NamedTuple: several are built per call on the gateway's hot path.)"""

    budget_id: str
    bucket: int
    slots: int  # the window sums buckets (bucket - slots, bucket]
    amount: int
    limit: int | None  # None: this budget never blocks (alert)
    ttl_s: int


@dataclass(frozen=True, slots=True)
class Level:
    used: int
    reserved: int
    oldest: int | None  # the oldest bucket holding usage (rolling windows: when it ages out)


class Counter(Protocol):
    async def reserve(self, holds: Sequence[Hold]) -> list[int]:
        """Add every hold, or none: the indexes of the holds that would cross their limit."""
        ...

    async def settle(self, holds: Sequence[Hold], actual: Sequence[int]) -> list[int]:
        """Release each hold and count its actual use instead; the window totals after it."""
        ...

    def settle_soon(
        self, holds: Sequence[Hold], actual: Sequence[int], then: Callable[[list[int]], None]
    ) -> None:
        """``settle`` without waiting (a call has finished): ``then(totals)`` once it is done
        (at once in memory; after the round trip with Redis, not at all if that failed)."""
        ...

    async def level(self, budget_id: str, bucket: int, slots: int) -> Level: ...

    async def seed(self, budget_id: str, bucket: int, used: int, ttl_s: int) -> None:
        """Start a budget's window at ``used`` (rebuilt from the store). The memory counter
        replaces what it had; Redis keeps a counter that already exists (shared state wins)."""
        ...

    async def aclose(self) -> None:
        """Finish the settlements in flight and let go of connections."""
        ...


def to_units(metric: Metric, amount: Decimal | int, *, reserve: bool = False) -> int:
    """Dollars -> nanodollars (rounded up for a reservation, to even for a settlement)."""
    if metric is not Metric.COST_USD:
        return int(amount)
    rounding = ROUND_CEILING if reserve else ROUND_HALF_EVEN
    return int((amount * NANO).to_integral_value(rounding))


def from_units(metric: Metric, units: int) -> Decimal:
    return Decimal(units) / NANO if metric is Metric.COST_USD else Decimal(units)


class _Window:
    """One budget's buckets in memory: bucket -> [used, reserved]."""

    __slots__ = ("buckets", "newest")

    def __init__(self) -> None:
        self.buckets: dict[int, list[int]] = {}
        self.newest = -1  # the newest bucket seen; older ones are pruned when it moves

    def at(self, bucket: int, slots: int) -> _Window:
        if bucket > self.newest:
            self.newest = bucket
            buckets = self.buckets
            for b in [b for b in buckets if b <= bucket - slots]:
                if buckets[b][1] == 0:  # keep a bucket that still holds reservations
                    del buckets[b]
        return self

    def total(self, bucket: int, slots: int) -> tuple[int, int]:
        if slots == 1:
            pair = self.buckets.get(bucket)
            return (pair[0], pair[1]) if pair else (0, 0)
        used = reserved = 0
        for b, (u, r) in self.buckets.items():
            if bucket - slots < b <= bucket:
                used += u
                reserved += r
        return used, reserved


class MemoryCounter:
    """One process's counters: budget id -> its window's buckets."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def _window(self, budget_id: str, bucket: int, slots: int) -> _Window:
        window = self._windows.get(budget_id)
        if window is None:
            window = self._windows[budget_id] = _Window()
        return window.at(bucket, slots)

    async def reserve(self, holds: Sequence[Hold]) -> list[int]:
        over = []
        windows = [self._window(h.budget_id, h.bucket, h.slots) for h in holds]
        for i, (hold, window) in enumerate(zip(holds, windows, strict=True)):
            if hold.limit is not None:
                used, reserved = window.total(hold.bucket, hold.slots)
                if used + reserved + hold.amount > hold.limit:
                    over.append(i)
        if over:
            return over
        for hold, window in zip(holds, windows, strict=True):
            slot = window.buckets.get(hold.bucket)
            if slot is None:
                slot = window.buckets[hold.bucket] = [0, 0]
            slot[1] += hold.amount
        return []

    async def settle(self, holds: Sequence[Hold], actual: Sequence[int]) -> list[int]:
        return self._settle(holds, actual)

    def settle_soon(
        self, holds: Sequence[Hold], actual: Sequence[int], then: Callable[[list[int]], None]
    ) -> None:
        then(self._settle(holds, actual))

    def _settle(self, holds: Sequence[Hold], actual: Sequence[int]) -> list[int]:
        totals = []
        for hold, used in zip(holds, actual, strict=True):
            window = self._window(hold.budget_id, hold.bucket, hold.slots)
            slot = window.buckets.setdefault(hold.bucket, [0, 0])
            slot[0] += used
            slot[1] = max(0, slot[1] - hold.amount)
            totals.append(window.total(window.newest, hold.slots)[0])
        return totals

    async def level(self, budget_id: str, bucket: int, slots: int) -> Level:
        window = self._window(budget_id, bucket, slots)
        used, reserved = window.total(bucket, slots)
        live = [b for b, (u, _) in window.buckets.items() if u and bucket - slots < b <= bucket]
        return Level(used, reserved, min(live) if live else None)

    async def seed(self, budget_id: str, bucket: int, used: int, ttl_s: int) -> None:
        old = self._windows.get(budget_id)
        held = sum(r for _, r in old.buckets.values()) if old else 0
        window = self._windows[budget_id] = _Window()
        window.buckets[bucket] = [used, held]
        window.newest = bucket

    async def aclose(self) -> None:
        self._windows.clear()
