"""The counter contract, on the memory backend and on a real Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from spendgate.budgets.counters import Counter, Hold, MemoryCounter, from_units, to_units
from spendgate.budgets.model import Metric
from spendgate.budgets.redis_counters import RedisCounter
from spendgate.errors import ConfigError

from helpers import require_service

REDIS_URL = "redis://127.0.0.1:6379/0"


Scenario = Callable[[Counter], Awaitable[None]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """Runs a scenario on a fresh counter of the parametrised backend."""
    if request.param == "redis":
        require_service("Redis", "127.0.0.1", 6379)

    def runner(scenario: Scenario) -> None:
        async def main() -> None:
            counter: Counter = MemoryCounter()
            if request.param == "redis":
                counter = RedisCounter(REDIS_URL, prefix=f"sgtest-{secrets.token_hex(4)}")
            try:
                await scenario(counter)
            finally:
                await counter.aclose()

        asyncio.run(main())

    return runner


def hold(amount: int, limit: int | None = 100, *, bucket: int = 1000, slots: int = 1) -> Hold:
    return Hold("b1", bucket, slots, amount, limit, 600)


def test_reserve_is_all_or_nothing(run: Callable[[Scenario], None]) -> None:
    async def scenario(counter: Counter) -> None:
        other = Hold("b2", 1000, 1, 50, 60, 600)
        assert await counter.reserve([hold(40), other]) == []
        assert await counter.reserve([hold(40), other]) == [1]  # b2 would reach 100 > 60
        level = await counter.level("b1", 1000, 1)
        assert (level.used, level.reserved) == (0, 40)  # b1's second hold was not taken either

    run(scenario)


def test_settle_swaps_the_hold_for_the_actual_use(run: Callable[[Scenario], None]) -> None:
    async def scenario(counter: Counter) -> None:
        assert await counter.reserve([hold(60)]) == []
        assert await counter.reserve([hold(60)]) == [0]
        assert await counter.settle([hold(60)], [25]) == [25]
        assert await counter.reserve([hold(60)]) == []  # 25 used + 60 held <= 100
        level = await counter.level("b1", 1000, 1)
        assert (level.used, level.reserved, level.oldest) == (25, 60, 1000)

    run(scenario)


def test_an_alert_hold_is_counted_but_never_refused(run: Callable[[Scenario], None]) -> None:
    async def scenario(counter: Counter) -> None:
        assert await counter.reserve([hold(500, None)]) == []
        assert (await counter.level("b1", 1000, 1)).reserved == 500

    run(scenario)


def test_rolling_usage_ages_out_slot_by_slot(run: Callable[[Scenario], None]) -> None:
    async def scenario(counter: Counter) -> None:
        first = hold(70, bucket=1000, slots=60)
        assert await counter.reserve([first]) == []
        await counter.settle([first], [70])
        later = hold(40, bucket=1059, slots=60)
        assert await counter.reserve([later]) == [0]  # slot 1000 is still inside the window
        moved = hold(40, bucket=1060, slots=60)
        assert await counter.reserve([moved]) == []  # slot 1000 has left it
        assert (await counter.level("b1", 1060, 60)).used == 0

    run(scenario)


def test_seed_starts_a_window(run: Callable[[Scenario], None]) -> None:
    async def scenario(counter: Counter) -> None:
        await counter.seed("b1", 1000, 90, 600)
        assert await counter.reserve([hold(20)]) == [0]
        assert (await counter.level("b1", 1000, 1)).used == 90

    run(scenario)


def test_concurrent_reservations_never_pass_the_limit(run: Callable[[Scenario], None]) -> None:
    async def scenario(counter: Counter) -> None:
        results = await asyncio.gather(*(counter.reserve([hold(7)]) for _ in range(200)))
        granted = sum(1 for over in results if not over)
        assert granted == 100 // 7
        assert (await counter.level("b1", 1000, 1)).reserved == granted * 7

    run(scenario)


@pytest.mark.redis
def test_two_redis_clients_share_one_limit() -> None:
    require_service("Redis", "127.0.0.1", 6379)
    asyncio.run(_two_clients())


async def _two_clients() -> None:
    prefix = f"sgtest-{secrets.token_hex(4)}"
    a, b = RedisCounter(REDIS_URL, prefix=prefix), RedisCounter(REDIS_URL, prefix=prefix)
    try:
        results = await asyncio.gather(*(c.reserve([hold(10)]) for _ in range(30) for c in (a, b)))
        assert sum(1 for over in results if not over) == 10
        seeded = RedisCounter(REDIS_URL, prefix=prefix)
        await seeded.seed("b1", 1000, 0, 600)  # Redis already counts b1: a seed keeps it
        assert (await seeded.level("b1", 1000, 1)).reserved == 100
        await seeded.aclose()
    finally:
        await a.aclose()
        await b.aclose()


def test_money_units_are_nanodollars_rounded_up_for_a_hold() -> None:
    assert to_units(Metric.COST_USD, Decimal("0.0000000001"), reserve=True) == 1
    assert to_units(Metric.COST_USD, Decimal("0.0000000001")) == 0
    assert to_units(Metric.COST_USD, Decimal("1.5")) == 1_500_000_000
    assert from_units(Metric.COST_USD, 1_500_000_000) == Decimal("1.5")
    assert to_units(Metric.REQUESTS, 3) == 3


def test_a_bad_redis_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a Redis URL"):
        RedisCounter("http://nope")
