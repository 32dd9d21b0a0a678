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

from collections.abc import Sequence
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

    async def level(self, budget_id: str, bucket: int, slots: int) -> Level: ...

    async def seed(self, budget_id: str, bucket: int, used: int, ttl_s: int) -> None:
        """Start a budget's window at ``used`` (rebuilt from the store). The memory counter
        replaces what it had; Redis keeps a counter that already exists (shared state wins)."""
        ...

    async def aclose(self) -> None: ...


def to_units(metric: Metric, amount: Decimal | int, *, reserve: bool = False) -> int:
    """Dollars -> nanodollars (rounded up for a reservation, to even for a settlement)."""
    if metric is not Metric.COST_USD:
        return int(amount)
    rounding = ROUND_CEILING if reserve else ROUND_HALF_EVEN
    return int((Decimal(amount) * NANO).to_integral_value(rounding))


def from_units(metric: Metric, units: int) -> Decimal:
    return Decimal(units) / NANO if metric is Metric.COST_USD else Decimal(units)


class MemoryCounter:
    """One process's counters: budget id -> bucket -> [used, reserved]."""

    def __init__(self) -> None:
        self._buckets: dict[str, dict[int, list[int]]] = {}
        self._newest: dict[str, int] = {}  # budget id -> newest bucket seen (prune when it moves)

    def _window(self, budget_id: str, bucket: int, slots: int) -> dict[int, list[int]]:
        buckets = self._buckets.setdefault(budget_id, {})
        if self._newest.get(budget_id) != bucket:
            self._newest[budget_id] = bucket
            stale = [b for b in buckets if b <= bucket - slots]
            for b in stale:
                if buckets[b][1] == 0:  # keep a bucket that still holds reservations
                    del buckets[b]
        return buckets

    def _total(self, buckets: dict[int, list[int]], bucket: int, slots: int) -> tuple[int, int]:
        if slots == 1:
            pair = buckets.get(bucket)
            return (pair[0], pair[1]) if pair else (0, 0)
        used = reserved = 0
        for b, (u, r) in buckets.items():
            if bucket - slots < b <= bucket:
                used += u
                reserved += r
        return used, reserved

    async def reserve(self, holds: Sequence[Hold]) -> list[int]:
        over = []
        for i, hold in enumerate(holds):
            if hold.limit is None:
                continue
            buckets = self._window(hold.budget_id, hold.bucket, hold.slots)
            used, reserved = self._total(buckets, hold.bucket, hold.slots)
            if used + reserved + hold.amount > hold.limit:
                over.append(i)
        if over:
            return over
        for hold in holds:
            slot = self._buckets.setdefault(hold.budget_id, {}).setdefault(hold.bucket, [0, 0])
            slot[1] += hold.amount
        return []

    async def settle(self, holds: Sequence[Hold], actual: Sequence[int]) -> list[int]:
        return self.settle_now(holds, actual)

    def settle_now(self, holds: Sequence[Hold], actual: Sequence[int]) -> list[int]:
        """``settle`` without a coroutine: the gateway calls it inline as a call finishes."""
        totals = []
        for hold, used in zip(holds, actual, strict=True):
            buckets = self._window(hold.budget_id, hold.bucket, hold.slots)
            slot = buckets.setdefault(hold.bucket, [0, 0])
            slot[0] += used
            slot[1] = max(0, slot[1] - hold.amount)
            current = self._newest.get(hold.budget_id, hold.bucket)
            totals.append(self._total(buckets, current, hold.slots)[0])
        return totals

    async def level(self, budget_id: str, bucket: int, slots: int) -> Level:
        buckets = self._window(budget_id, bucket, slots)
        used, reserved = self._total(buckets, bucket, slots)
        live = [b for b, (u, _) in buckets.items() if u and bucket - slots < b <= bucket]
        return Level(used, reserved, min(live) if live else None)

    async def seed(self, budget_id: str, bucket: int, used: int, ttl_s: int) -> None:
        held = sum(r for _, r in self._buckets.get(budget_id, {}).values())
        self._buckets[budget_id] = {bucket: [used, held]}
        self._newest[budget_id] = bucket

    async def aclose(self) -> None:
        self._buckets.clear()
        self._newest.clear()
