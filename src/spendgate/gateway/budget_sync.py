"""Keeps the guard's budgets in step with the store and the config file, and seeds counters.

Budgets come from the store (admin API, ``spendgate budgets``) and from ``[[gateway.budgets]]``
in the config file (read-only; their id is ``cfg_<name>`` unless they give one). They are
reloaded every ``budget_refresh_s`` and at once after an admin API change.

A budget the guard has not seen before (at start-up, or created since) gets its window's usage
from the stored events, so a restart forgets no spend: the memory counter is rebuilt, and a Redis
counter is filled only when Redis has no counter for it yet (another replica, or an earlier run,
already keeps it). A rolling window's stored usage is put in its current slot, so after a restart
it ages out one window later than it would have: conservative, never lenient.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy.exc import SQLAlchemyError

from spendgate.budgets.counters import Counter, MemoryCounter, to_units
from spendgate.budgets.estimate import Rates, Use, conservative_cost
from spendgate.budgets.model import Budget, Metric, budget_from_dict
from spendgate.budgets.redis_counters import RedisCounter
from spendgate.budgets.status import BudgetStatus
from spendgate.budgets.windows import span
from spendgate.errors import ConfigError, CounterUnavailable, SpendgateError
from spendgate.gateway.guard import Guard
from spendgate.settings import GatewaySettings
from spendgate.store.budget_usage import Usage, usage_since
from spendgate.store.budgets import list_budgets
from spendgate.store.db import Store

log = logging.getLogger("spendgate.budgets")


def config_budgets(tables: list[dict[str, object]]) -> list[Budget]:
    """``[[gateway.budgets]]`` tables -> budgets with stable ids."""
    out = []
    for i, table in enumerate(tables):
        name = str(table.get("name") or "")
        stable = table.get("id") or "cfg_" + re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:60]
        try:
            out.append(budget_from_dict({**table, "id": stable}))
        except ConfigError as err:
            raise ConfigError(
                f"[[gateway.budgets]] #{i + 1} ({name or 'no name'}): {err}"
            ) from None
    ids = [b.id for b in out]
    if len(set(ids)) != len(ids):
        raise ConfigError("[[gateway.budgets]]: two budgets have the same name or id")
    return out


class BudgetSync:
    def __init__(
        self,
        guard: Guard,
        store: Store,
        *,
        configured: list[Budget],
        refresh_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.guard = guard
        self.store = store
        self.configured = configured
        self.refresh_s = refresh_s
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._unseeded: set[str] = set()

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.guard.drain()

    async def load(self) -> None:
        """Reload the definitions; seed new or changed budgets (retried at the next load when
        the counters or the store are unreachable; until then Redis is asked as it is)."""
        stored = await asyncio.to_thread(list_budgets, self.store)
        fresh = self.guard.use([*self.configured, *stored])
        self._unseeded |= {b.id for b in fresh}
        for budget in self.guard.index.budgets.values():
            if budget.id not in self._unseeded:
                continue
            try:
                await self.seed(budget)
            except CounterUnavailable as err:
                log.warning("could not seed budget %s: %s", budget.id, err)
                return
            self._unseeded.discard(budget.id)

    async def seed(self, budget: Budget) -> None:
        now = self.clock()
        where = span(budget, now)
        usage = await asyncio.to_thread(usage_since, self.store, budget.scope, where.start)
        amount = used_amount(budget.metric, usage, self.guard.rates)
        await self.guard.counter.seed(
            budget.id, where.bucket, to_units(budget.metric, amount), where.ttl_s
        )

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.load()
            except SpendgateError as err:
                log.warning("could not refresh budgets: %s", err)
            except SQLAlchemyError as err:  # the store is down: keep enforcing what we have
                log.warning("could not refresh budgets from the store: %s", err)


def used_amount(metric: Metric, usage: Usage, rates: Rates) -> Decimal:
    """A stored window's usage in ``metric`` (unpriced events at the conservative rates)."""
    if metric is Metric.REQUESTS:
        return Decimal(usage.requests)
    unpriced = conservative_cost(usage.unpriced_input_tokens, usage.unpriced_output_tokens, rates)
    use = Use(usage.input_tokens, usage.output_tokens, usage.cost + unpriced, True)
    return Decimal(use.of(metric))


async def offline_status(
    store: Store,
    budgets: list[Budget],
    now: datetime,
    *,
    settings: GatewaySettings,
) -> list[BudgetStatus]:
    """Status without a running gateway (``spendgate budgets status``): spend from the stored
    events, or from Redis (with what is reserved there) when ``settings.redis_url`` is set."""
    counter = counter_for(settings)
    guard = Guard(counter, settings, resolver=lambda _arn: None)
    sync = BudgetSync(
        guard, store, configured=[], refresh_s=settings.budget_refresh_s, clock=lambda: now
    )
    try:
        guard.use(budgets)
        for budget in budgets:
            await sync.seed(budget)
        return [await guard.status(budget, now) for budget in budgets]
    finally:
        await counter.aclose()


def counter_for(settings: GatewaySettings) -> Counter:
    """Redis when ``redis_url`` is set (replicas share limits), else this process's memory."""
    if settings.redis_url:
        return RedisCounter(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryCounter()
