"""Where a budget stands: spent, reserved, remaining, reset time and the projection (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from spendgate.budgets.model import Budget, Metric, budget_to_dict
from spendgate.pricing import decimal_text


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Amounts are in the budget's metric: dollars for ``cost_usd``, else tokens or requests."""

    budget: Budget
    spent: Decimal  # settled usage in the current window
    reserved: Decimal  # worst-case holds of calls still in flight
    window_start: datetime
    resets_at: datetime  # calendar: the next period; rolling: when the oldest usage ages out
    projected: Decimal  # end-of-window spend at the current rate
    now: datetime

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.budget.limit - self.spent - self.reserved)

    @property
    def percent(self) -> Decimal:
        return (self.spent * 100 / self.budget.limit).quantize(Decimal("0.1"))

    @property
    def thresholds_crossed(self) -> tuple[int, ...]:
        return tuple(t for t in self.budget.thresholds if self.spent * 100 >= self.budget.limit * t)


def amount_text(budget: Budget, amount: Decimal) -> str:
    """Dollars to the cent (more digits when below a cent), or a whole count."""
    if budget.metric is Metric.COST_USD:
        cents = amount.quantize(Decimal("0.01"))
        return f"${cents}" if cents == amount or amount >= 1 else f"${amount.normalize():f}"
    return f"{int(amount):,} {budget.metric.value.replace('_', ' ')}"


def status_to_dict(status: BudgetStatus) -> dict[str, Any]:
    """The JSON form (admin API, ``spendgate budgets status --json``): amounts as strings."""
    return {
        "budget": budget_to_dict(status.budget),
        "spent": decimal_text(status.spent),
        "reserved": decimal_text(status.reserved),
        "remaining": decimal_text(status.remaining),
        "limit": decimal_text(status.budget.limit),
        "percent": str(status.percent),
        "window_start": iso(status.window_start),
        "resets_at": iso(status.resets_at),
        "projected": decimal_text(status.projected),
        "thresholds_crossed": list(status.thresholds_crossed),
        "as_of": iso(status.now),
    }


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")
