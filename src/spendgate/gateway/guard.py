"""Budgets in the gateway: reserve a call's worst case before forwarding it, settle it after.

    reserve(call, doc)   match budgets (``budgets.matching``), price the worst case
                         (``budgets.estimate``) and hold it on every matching budget at once
                         (``budgets.counters``). A blocking budget that would cross its limit
                         denies the call; a ``downgrade`` budget reroutes it to its cheaper
                         model (then the cheaper call is checked again, and denied if it still
                         does not fit).
    settle(call, event)  swap each hold for what the call really used (nothing when it failed
                         before the model ran; the worst case when the answer stated no usage)
                         and fire threshold alerts the settlement crosses.
    status(budget)       spent, reserved, remaining, reset and projection.

Denials: a rate limit (``Budget.is_rate_limit``) is a ``ThrottlingException`` (429) with
``Retry-After``; an exhausted budget is a ``ServiceQuotaExceededException`` (400), which boto3
does not retry in either retry mode, naming the budget, its limit, its spend and its reset.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from spendgate.bedrock.operations import CONVERSE
from spendgate.budgets.counters import Counter, Hold, from_units, to_units
from spendgate.budgets.estimate import (
    DEFAULT_MAX_OUTPUT,
    Rates,
    Tokens,
    Use,
    actual_use,
    requested_max_output,
    worst_case,
)
from spendgate.budgets.matching import BudgetIndex, Subject
from spendgate.budgets.model import Action, Budget, Metric
from spendgate.budgets.status import BudgetStatus, amount_text, iso
from spendgate.budgets.windows import Spans, span
from spendgate.errors import AwsError, CounterUnavailable
from spendgate.events import ATTRIBUTION_FIELDS, Event
from spendgate.gateway.metering import Call, call_price
from spendgate.gateway.resolution import resolve
from spendgate.pricing import Price, decimal_text, default_catalog
from spendgate.settings import GatewaySettings

log = logging.getLogger("spendgate.budgets")
MAX_REMEMBERED = 8192  # distinct (attribution, key, model) match results kept


class BudgetDenied(AwsError):
    """A call a budget or rate limit stops; ``retry_after`` (seconds) for a throttle."""

    def __init__(self, code: str, message: str, retry_after: int | None, **extra: Any) -> None:
        super().__init__(code, message, **extra)
        self.retry_after = retry_after


@dataclass(slots=True)
class Reservation:
    budgets: list[Budget]
    holds: list[Hold]
    worst: Use


class Guard:
    def __init__(
        self,
        counter: Counter,
        settings: GatewaySettings,
        *,
        resolver: Callable[[str], str | None],
    ) -> None:
        self.counter = counter
        self.settings = settings
        self.resolver = resolver
        self.index = BudgetIndex(())
        self.rates = Rates(
            Decimal(settings.unpriced_input_usd_per_mtok),
            Decimal(settings.unpriced_output_usd_per_mtok),
        )
        # budget id -> (limit in counter units, or None when it never blocks; limit in units)
        self._limits: dict[str, tuple[int | None, int]] = {}
        self._matched: dict[tuple[Any, ...], list[Budget]] = {}
        self._spans = Spans()

    def use(self, budgets: list[Budget]) -> list[Budget]:
        """Enforce ``budgets`` from now on; returns the ones that are new or changed."""
        before = self.index.budgets
        index = BudgetIndex(budgets)
        self._limits = {b.id: _limits(b) for b in index.budgets.values()}
        self.index = index
        self._matched = {}
        self._spans = Spans()  # a changed budget may have a new window
        return [b for b in index.budgets.values() if before.get(b.id) != b]

    def _match(self, call: Call) -> list[Budget]:
        """The budgets a call matches, remembered per (attribution, key, model): the same
        callers and models come back call after call."""
        resolved = call.resolved
        key = (
            tuple(call.attribution.values.items()),
            call.key_id,
            resolved.requested if resolved else None,
            resolved.model_id if resolved else None,
        )
        found = self._matched.get(key)
        if found is None:
            if len(self._matched) >= MAX_REMEMBERED:
                self._matched.clear()
            found = self._matched[key] = self.index.match(subject(call))
        return found

    # -- before forwarding -------------------------------------------------------------------

    async def reserve(self, call: Call, doc: Mapping[str, Any] | None) -> None:
        if not self.index.budgets:
            return
        for attempt in (0, 1):
            budgets = self._match(call)
            if not budgets:
                return
            worst = self._worst_case(call, doc)
            holds = self._holds(budgets, worst, call.started)
            try:
                over = await self.counter.reserve(holds)
            except CounterUnavailable as err:  # fail closed: a budget is never silently off
                raise AwsError(
                    "ServiceUnavailableException", f"spendgate cannot check budgets now: {err}"
                ) from None
            if not over:
                call.reservation = Reservation(budgets, holds, worst)
                if call.budget_decision is None:
                    call.budget_decision = "approved"
                return
            failing = [budgets[i] for i in over]
            blocking = [b for b in failing if b.action is Action.BLOCK]
            stop = (blocking or failing)[0]
            if blocking or attempt or not self._downgrade(call, stop):
                call.budget_decision = f"denied:{stop.id}"
                raise await self._denial(stop, holds[budgets.index(stop)], call, worst)

    def _holds(self, budgets: list[Budget], worst: Use, now: datetime) -> list[Hold]:
        amounts: dict[Metric, int] = {}
        holds = []
        ts = int(now.timestamp())
        for b in budgets:
            amount = amounts.get(b.metric)
            if amount is None:
                amount = amounts[b.metric] = _amount(b.metric, worst, reserve=True)
            where = self._spans(b, now, ts)
            limit = self._limits[b.id][0]
            holds.append(Hold(b.id, where.bucket, where.slots, amount, limit, where.ttl_s))
        return holds

    def _worst_case(self, call: Call, doc: Mapping[str, Any] | None) -> Use:
        assert call.resolved is not None
        result = call_price(call, self.resolver)
        most = requested_max_output(doc) or _catalog_max(result.price, call) or DEFAULT_MAX_OUTPUT
        return worst_case(
            call.prompt_tokens, most, result.price, self.rates, cache_points=call.cache_points
        )

    def _downgrade(self, call: Call, budget: Budget) -> bool:
        assert call.resolved is not None and budget.downgrade_to
        target = resolve(
            self.settings, budget.downgrade_to, call.region, call.attribution.get("cost_center")
        )
        family = target.family
        if call.operation not in CONVERSE and family != call.family:
            return False  # an InvokeModel body only fits models of its own format
        call.routed_from = call.routed_from or call.resolved.requested
        call.resolved, call.family, call.price = target, family, None
        call.budget_decision = f"downgraded:{budget.id}"
        return True

    async def _denial(self, budget: Budget, hold: Hold, call: Call, worst: Use) -> BudgetDenied:
        status = await self.status(budget, call.started)
        need = amount_text(budget, from_units(budget.metric, hold.amount))
        used = amount_text(budget, status.spent)
        held = amount_text(budget, status.reserved)
        limit = f"{amount_text(budget, budget.limit)} per {_window_text(budget)}"
        extra = {"budgetId": budget.id, "budgetName": budget.name, "limit": str(budget.limit)}
        extra |= {"spent": decimal_text(status.spent), "resetsAt": iso(status.resets_at)}
        if budget.is_rate_limit:
            wait = max(1, math.ceil((status.resets_at - call.started).total_seconds()))
            message = (
                f"spendgate: rate limit '{budget.name}' ({budget.id}) reached: {limit}; used "
                f"{used}, in flight {held}, this call needs up to {need}. Retry after {wait} s."
            )
            return BudgetDenied("ThrottlingException", message, wait, **extra)
        message = (
            f"spendgate: budget '{budget.name}' ({budget.id}, {budget.describe_scope()}) is "
            f"exhausted: limit {limit}, spent {used}, reserved {held}; this call could use up "
            f"to {need}. It resets at {iso(status.resets_at)}."
        )
        return BudgetDenied("ServiceQuotaExceededException", message, None, **extra)

    # -- after the answer --------------------------------------------------------------------

    def settle(self, call: Call, event: Event) -> None:
        reservation = call.reservation
        if not isinstance(reservation, Reservation):
            return
        call.reservation = None
        use = self._actual(event, reservation.worst)
        amounts: dict[Metric, int] = {}
        actual = []
        for b in reservation.budgets:
            amount = amounts.get(b.metric)
            if amount is None:
                amount = amounts[b.metric] = _amount(b.metric, use, reserve=False)
            actual.append(amount)
        self.counter.settle_soon(
            reservation.holds, actual, functools.partial(self._alerts, reservation, actual)
        )

    def _actual(self, event: Event, worst: Use) -> Use:
        if event.status in ("error", "rejected") and not event.usage_known:
            return Use(0, 0, Decimal(0), True)  # failed before the model ran
        if not event.usage_known:
            return worst  # ran, but the answer stated no usage: keep the worst case
        tokens = Tokens(
            event.input_tokens,
            event.output_tokens,
            event.cache_read_tokens,
            event.cache_write_5m_tokens,
            event.cache_write_1h_tokens,
        )
        return actual_use(tokens, event.cost_usd, self.rates)

    def _alerts(self, reservation: Reservation, actual: list[int], totals: list[int]) -> None:
        for budget, used, total in zip(reservation.budgets, actual, totals, strict=True):
            limit = self._limits[budget.id][1]
            if not budget.thresholds or total * 100 < limit * budget.thresholds[0]:
                continue  # below the first threshold: the common case
            for threshold in budget.thresholds:
                mark = limit * threshold / 100
                if total - used < mark <= total:
                    spent = from_units(budget.metric, total)
                    log.warning(
                        "budget %s (%s) crossed %d%% of its limit: %s of %s",
                        budget.name,
                        budget.id,
                        threshold,
                        amount_text(budget, spent),
                        amount_text(budget, budget.limit),
                        extra={"budget_id": budget.id, "threshold": threshold},
                    )

    # -- reading -----------------------------------------------------------------------------

    async def status(self, budget: Budget, now: datetime) -> BudgetStatus:
        where = span(budget, now)
        level = await self.counter.level(budget.id, where.bucket, where.slots)
        spent = from_units(budget.metric, level.used)
        if where.slots == 1:
            resets = where.end
            elapsed = (now - where.start).total_seconds()
            whole = (where.end - where.start).total_seconds()
            projected = spent * Decimal(whole / elapsed) if elapsed > 0 else spent
        else:
            resets = now if level.oldest is None else where.slot_end(level.oldest, budget)
            projected = spent  # a rolling window at a steady rate holds what it holds now
        return BudgetStatus(
            budget,
            spent,
            from_units(budget.metric, level.reserved),
            where.start,
            resets,
            _round(budget, projected),
            now,
        )

    async def drain(self) -> None:
        """Wait for settlements in flight and close the counters (shutdown)."""
        await self.counter.aclose()


def subject(call: Call) -> Subject:
    values: dict[str, str | None] = {f: call.attribution.get(f) for f in ATTRIBUTION_FIELDS}
    resolved = call.resolved
    ref = resolved.ref if resolved else None
    values["key_id"] = call.key_id
    values["provider"] = ref.provider if ref else None
    models = (resolved.requested, resolved.model_id) if resolved else ()
    if ref and ref.base_model:
        models = (*models, ref.base_model)
    return Subject(values, models)


def _catalog_max(price: Price | None, call: Call) -> int | None:
    catalog = default_catalog()
    base = call.resolved.ref.base_model if call.resolved else None
    key = price.key if price else (catalog.key_for(base) if base else None)
    info = catalog.models.get(key) if key else None
    return info.max_output_tokens if info else None


def _limits(budget: Budget) -> tuple[int | None, int]:
    units = to_units(budget.metric, budget.limit)
    return (units if budget.blocks else None), units


def _amount(metric: Metric, use: Use, *, reserve: bool) -> int:
    return to_units(metric, use.of(metric), reserve=reserve)


def _round(budget: Budget, amount: Decimal) -> Decimal:
    quantum = Decimal("0.000001") if budget.metric is Metric.COST_USD else Decimal(1)
    return amount.quantize(quantum)


def _window_text(budget: Budget) -> str:
    text = budget.window.value.replace("_", " ")
    return f"{text} ({budget.timezone})" if not budget.window.rolling else f"rolling {text}"
