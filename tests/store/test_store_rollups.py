"""The rollups agree with the events they sum, on both engines, whatever the batch shapes;
and the planner splits a range into raw edges, whole hours and whole days."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from spendgate.events import Event
from spendgate.store import Store, open_store
from spendgate.store.rollups import PAIRS, choose, rebuild
from spendgate.store.schema import (
    ROLLUP_DIMENSIONS,
    ROLLUP_SPECS,
    events,
    rollup_tables,
    spend_pending,
)
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
                session_id=rng.choice(["s1", "s2", "s3", None]),
                workflow_id=rng.choice(["w1", "", None]),  # "": no id
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


def rollup_totals(
    store: Store, name: str, dimension: str | None = None
) -> tuple[tuple[int, ...], Decimal]:
    """Totals of a rollup (of a facet rollup: of one ``dimension``'s rows)."""
    table = spend_pending if name == "spend_pending" else rollup_tables[name]
    sums = [func.sum(table.c[c]) for c in ("requests", "input_tokens", "output_tokens")]
    histogram = sum(func.sum(table.c[f"latency_h{i:02d}"]) for i in range(16))  # type: ignore[misc]
    money = [func.sum(table.c.cost_micro), func.sum(table.c.cost_pico)]
    query = select(*sums, histogram, *money)
    if dimension is not None:
        query = query.where(table.c.dimension == dimension)
    with store.engine.connect() as connection:
        row = connection.execute(query).one()
    counts = tuple(int(v or 0) for v in row[:4])
    return counts, from_pusd(int(row[4] or 0) * 10**6 + int(row[5] or 0))


def every_rollup(store: Store) -> dict[str, tuple[tuple[int, ...], Decimal]]:
    """Totals of every rollup, and of every dimension of each facet rollup; and asserts that
    each id rollup holds the requests and spend of the events with each id (``id_totals``)."""
    out = {}
    for spec in ROLLUP_SPECS:
        if spec.ids:
            assert id_totals(store, spec.name) == id_totals(store, "events"), spec.name
            continue
        if spec.pairs:
            dimensions: tuple[str | None, ...] = tuple(f"{a},{b}" for a, b in spec.pairs)
        else:
            dimensions = spec.dimensions if spec.facets else (None,)
        for dimension in dimensions:
            out[f"{spec.name}:{dimension}"] = rollup_totals(store, spec.name, dimension)
    return out


def id_totals(store: Store, name: str) -> dict[str, tuple[int, Decimal]]:
    """Per id field, the requests and spend of an id rollup's rows, or (``events``) of the
    events with such an id."""
    out = {}
    for field in ("session_id", "workflow_id"):
        if name == "events":
            query = select(func.count(), func.sum(events.c.cost_pusd))
            query = query.where(func.coalesce(events.c[field], "") != "")
        else:
            table = rollup_tables[name]
            micro_pico = table.c.cost_micro * 10**6 + table.c.cost_pico
            query = select(func.sum(table.c.requests), func.sum(micro_pico))
            query = query.where(table.c.dimension == field)
        with store.engine.connect() as connection:
            requests, cost = connection.execute(query).one()
        out[field] = (
            int(requests or 0),
            Decimal(cost or 0) if name == "events" else from_pusd(int(cost or 0)),
        )
    return out


def test_every_rollup_sums_the_events_exactly(store: Store) -> None:
    made = random_events(700, seed=1)
    for start in range(0, len(made), 97):  # uneven batches
        store.insert_events(made[start : start + 97])
    store.insert_events(made[:150])  # a replay: skipped, not counted twice
    expected = (raw_totals(store), sum((e.cost_usd for e in made if e.cost_usd), Decimal(0)))
    assert rollup_totals(store, "spend_pending") == expected  # not folded yet
    store.fold()
    assert rollup_totals(store, "spend_pending") == ((0, 0, 0, 0), Decimal(0))
    totals = every_rollup(store)
    assert len(totals) == len(ROLLUP_SPECS) - 5 + 2 * len(ROLLUP_DIMENSIONS) + len(PAIRS.pairs)
    assert id_totals(store, "spend_ids_daily")["workflow_id"][0] > 0
    for name, got in totals.items():
        assert got == expected, name


def test_folds_add_up_and_the_writer_folds_by_itself(store: Store) -> None:
    made = random_events(400, seed=3)
    folding = Store(store.engine, fold_interval_s=0.0)  # folds after every batch
    for start in range(0, len(made), 50):
        folding.insert_events(made[start : start + 50])
        assert rollup_totals(store, "spend_pending")[0][0] == 0
    folding.fold()  # the writer's folds seal within a time budget: finish the sealing
    expected = (raw_totals(store), sum((e.cost_usd for e in made if e.cost_usd), Decimal(0)))
    for name, got in every_rollup(store).items():
        assert got == expected, name


def test_close_folds_what_is_pending(store: Store, db_url: str) -> None:
    writer = open_store(db_url)
    writer.insert_events(random_events(120, seed=4))
    assert rollup_totals(store, "spend_pending")[0][0] == 120
    writer.close()
    with open_store(db_url) as again:
        assert rollup_totals(again, "spend_pending")[0][0] == 0
        assert rollup_totals(again, "spend_hourly")[0][0] == 120


def test_rebuild_gives_the_same_rollups(store: Store) -> None:
    store.insert_events(random_events(300, seed=2))
    store.fold()
    before = every_rollup(store)
    days: list[datetime] = []
    with store.engine.begin() as connection:
        rebuild(connection, progress=lambda day, _last: days.append(day))
    assert every_rollup(store) == before
    assert days == [datetime(2026, 5, d, tzinfo=UTC) for d in (1, 2, 3)]  # 22:10 + up to 30 h


def test_rollup_money_beyond_the_bigint_picodollar_range(store: Store) -> None:
    big = [
        Event(ts=T0, department="eng", cost_usd=Decimal("9000000.000000000001")) for _ in range(4)
    ]
    store.insert_events(big)
    store.fold()
    for name, got in every_rollup(store).items():
        assert got[1] == Decimal("36000000.000000000004"), name


def test_plan_takes_each_end_to_the_nearest_hour_and_day() -> None:
    since = datetime(2026, 5, 1, 22, 10, tzinfo=UTC)  # 10 min past: subtract them
    until = datetime(2026, 5, 4, 3, 30, tzinfo=UTC)  # half past: add the half hour
    may = {d: datetime(2026, 5, d, tzinfo=UTC) for d in range(1, 6)}
    low, high = since.replace(minute=0), until.replace(minute=0)
    assert plan(since, until, rollups=True, days=True) == [
        Part("events", low, since, sign=-1),
        Part("pending", low, high, "spend_pending"),
        Part("hour", low, may[2]),  # 22:00 is nearer the next midnight: add two hours
        Part("day", may[2], may[4]),
        Part("hour", may[4], high),  # 03:00 is nearer the last midnight: add three hours
        Part("events", high, until),
    ]
    later = datetime(2026, 5, 4, 14, 40, tzinfo=UTC)  # nearer the next hour and midnight
    assert plan(since, later, rollups=True, days=True)[-3:] == [
        Part("day", may[2], may[5]),
        Part("hour", later + 20 * timedelta(minutes=1), may[5], sign=-1),
        Part("events", later, later + 20 * timedelta(minutes=1), sign=-1),
    ]
    assert [p.source for p in plan(since, until, rollups=True, days=False)] == [
        "events",
        "pending",
        "hour",
        "events",
    ]
    assert plan(since, since + timedelta(minutes=20), rollups=True, days=True) == [
        Part("events", since, since + timedelta(minutes=20))
    ]
    assert plan(since, until, rollups=False, days=True) == [Part("events", since, until)]


def test_the_smallest_rollup_holding_the_fields_is_chosen() -> None:
    assert choose("day", set()).name == "spend_facets_daily"  # type: ignore[union-attr]
    assert choose("day", {"user_id"}).name == "spend_facets_daily"  # type: ignore[union-attr]
    assert choose("hour", {"region"}).name == "spend_facets_hourly"  # type: ignore[union-attr]
    assert choose("day", {"department", "agent"}).name == "spend_daily_org"  # type: ignore[union-attr]
    assert choose("day", {"user_id", "project"}).name == "spend_daily_users"  # type: ignore[union-attr]
    assert choose("day", {"user_id", "region"}).name == "spend_pairs_daily"  # type: ignore[union-attr]
    assert choose("day", {"user_id", "region", "status"}).name == "spend_daily"  # type: ignore[union-attr]
    assert choose("hour", {"project", "agent"}).name == "spend_hourly_org"  # type: ignore[union-attr]
    assert choose("hour", {"region", "status"}).name == "spend_hourly"  # type: ignore[union-attr]
    assert choose("day", {"session_id"}) is None


def test_a_fold_that_fails_loses_nothing(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    made = random_events(200, seed=6)
    folding = Store(store.engine, fold_interval_s=0.0)
    with store.engine.begin() as connection:  # the fold will find a rollup missing
        connection.execute(text("ALTER TABLE spend_facets_hourly RENAME TO spend_facets_away"))
    try:
        assert folding.insert_events(made[:100]) == 100  # stored, though the fold failed
    finally:
        with store.engine.begin() as connection:
            connection.execute(text("ALTER TABLE spend_facets_away RENAME TO spend_facets_hourly"))
    assert "folding the spend rollups failed" in caplog.text
    assert rollup_totals(store, "spend_pending")[0][0] == 100  # still pending, still counted
    assert folding.insert_events(made[100:]) == 100  # this fold works and takes both
    assert rollup_totals(store, "spend_pending")[0][0] == 0
    folding.fold()  # finish sealing (the writer's folds seal within a time budget)
    expected = (raw_totals(store), sum((e.cost_usd for e in made if e.cost_usd), Decimal(0)))
    for name, got in every_rollup(store).items():
        assert got == expected, name
