"""The rollups agree with the events they sum, on both engines, whatever the batch shapes;
and the planner splits a range into raw edges, whole hours and whole days."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from spendgate.events import Event
from spendgate.store import Store
from spendgate.store.rollups import choose, rebuild
from spendgate.store.schema import ROLLUP_SPECS, events, rollup_tables
from spendgate.store.spend import Part, plan
from spendgate.store.types import from_pusd

T0 = datetime(2026, 5, 1, 22, 10, tzinfo=UTC)


def random_events(count: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        unpriced = rng.random() < 0.1
        made.append(
            Event(
                ts=T0 + timedelta(minutes=rng.randrange(0, 60 * 30)),
                department=rng.choice(["eng", "sales", None]),
                project=rng.choice(["a", "b", "c"]),
                user_id=rng.choice(["u1", "u2", "u3", None]),
                base_model=rng.choice(["m1", "m2"]),
                region=rng.choice(["us-east-1", "eu-west-1"]),
                status=rng.choice(["ok", "ok", "ok", "error", "partial"]),
                input_tokens=rng.randrange(0, 5000),
                output_tokens=rng.randrange(0, 900),
                cache_read_tokens=rng.randrange(0, 3000),
                latency_ms=rng.choice([None, rng.randrange(1, 60_000)]),
                cost_usd=None if unpriced else Decimal(rng.randrange(0, 10**15)).scaleb(-12),
                unpriced=unpriced,
            )
        )
    return made


def raw_totals(store: Store) -> tuple[int, ...]:
    query = select(
        func.count(),
        func.sum(events.c.input_tokens),
        func.sum(events.c.output_tokens),
        func.count(events.c.latency_ms),
    )
    with store.engine.connect() as connection:
        return tuple(int(v) for v in connection.execute(query).one())


def rollup_totals(store: Store, name: str) -> tuple[tuple[int, ...], Decimal]:
    table = rollup_tables[name]
    sums = [func.sum(table.c[c]) for c in ("requests", "input_tokens", "output_tokens")]
    histogram = sum(func.sum(table.c[f"latency_h{i:02d}"]) for i in range(16))  # type: ignore[misc]
    money = [func.sum(table.c.cost_micro), func.sum(table.c.cost_pico)]
    with store.engine.connect() as connection:
        row = connection.execute(select(*sums, histogram, *money)).one()
    counts = tuple(int(v) for v in row[:4])
    return counts, from_pusd(int(row[4]) * 10**6 + int(row[5]))


def test_every_rollup_sums_the_events_exactly(store: Store) -> None:
    made = random_events(700, seed=1)
    for start in range(0, len(made), 97):  # uneven batches
        store.insert_events(made[start : start + 97])
    store.insert_events(made[:150])  # a replay: skipped, not counted twice
    expected_cost = sum((e.cost_usd for e in made if e.cost_usd is not None), Decimal(0))
    for spec in ROLLUP_SPECS:
        assert rollup_totals(store, spec.name) == (raw_totals(store), expected_cost), spec.name


def test_rebuild_gives_the_same_rollups(store: Store) -> None:
    store.insert_events(random_events(300, seed=2))
    before = {spec.name: rollup_totals(store, spec.name) for spec in ROLLUP_SPECS}
    with store.engine.begin() as connection:
        rebuild(connection)
    assert {spec.name: rollup_totals(store, spec.name) for spec in ROLLUP_SPECS} == before


def test_rollup_money_beyond_the_bigint_picodollar_range(store: Store) -> None:
    big = [
        Event(ts=T0, department="eng", cost_usd=Decimal("9000000.000000000001")) for _ in range(4)
    ]
    store.insert_events(big)
    for spec in ROLLUP_SPECS:
        assert rollup_totals(store, spec.name)[1] == Decimal("36000000.000000000004")


def test_plan_splits_edges_hours_and_days() -> None:
    since = datetime(2026, 5, 1, 22, 10, tzinfo=UTC)
    until = datetime(2026, 5, 4, 3, 30, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert plan(since, until, rollups=True, days=True) == [
        Part("events", since, since.replace(minute=0) + hour),
        Part("hour", since.replace(minute=0) + hour, datetime(2026, 5, 2, tzinfo=UTC)),
        Part("day", datetime(2026, 5, 2, tzinfo=UTC), datetime(2026, 5, 4, tzinfo=UTC)),
        Part("hour", datetime(2026, 5, 4, tzinfo=UTC), until.replace(minute=0)),
        Part("events", until.replace(minute=0), until),
    ]
    assert [p.source for p in plan(since, until, rollups=True, days=False)] == [
        "events",
        "hour",
        "events",
    ]
    assert plan(since, since + timedelta(minutes=20), rollups=True, days=True) == [
        Part("events", since, since + timedelta(minutes=20))
    ]
    assert plan(since, until, rollups=False, days=True) == [Part("events", since, until)]


def test_the_smallest_rollup_holding_the_fields_is_chosen() -> None:
    assert choose("day", set()).name == "spend_daily_models"  # type: ignore[union-attr]
    assert choose("day", {"department"}).name == "spend_daily_org"  # type: ignore[union-attr]
    assert choose("day", {"user_id"}).name == "spend_daily_users"  # type: ignore[union-attr]
    assert choose("day", {"user_id", "region"}).name == "spend_daily"  # type: ignore[union-attr]
    assert choose("hour", {"project"}).name == "spend_hourly_org"  # type: ignore[union-attr]
    assert choose("hour", {"region"}).name == "spend_hourly"  # type: ignore[union-attr]
    assert choose("day", {"session_id"}) is None
