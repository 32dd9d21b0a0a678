"""Rollup answers against sums computed in Python, for windows whose ends fall anywhere: before
or after the half hour, near midnight or noon, so every way ``plan`` can add or subtract an
edge is exercised, on SQLite and PostgreSQL, with the rows pending a fold and after it."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import import_module

import pyarrow as pa
import pytest
from sqlalchemy import func, select

from spendgate.analytics import SpendQuery, spend
from spendgate.analytics.answer import ranking
from spendgate.analytics.measures import (
    bucket_start,
    percentile,
    percentile_columns,
    percentiles,
)
from spendgate.events import Event
from spendgate.store import Store, open_store, slot_sums
from spendgate.store import spend as store_spend
from spendgate.store.engine import BEGIN_MODE
from spendgate.store.rollup_cache import DEFAULT_BYTES
from spendgate.store.rollups import PAIRS, RollupWriter, sealed_until
from spendgate.store.schema import LATENCY_BOUNDS_MS, rollup_tables
from spendgate.store.spend import plan

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
SPAN = timedelta(days=9)


def made_events(count: int = 900) -> list[Event]:
    rng = random.Random(11)
    out = []
    for _ in range(count):
        priced = rng.random() < 0.9
        out.append(
            Event(
                ts=T0 + timedelta(seconds=rng.randrange(int(SPAN.total_seconds()))),
                department=rng.choice(["eng", "sales", "ops", None]),
                project=rng.choice(["a", "b", "c", "d"]),
                user_id=rng.choice(["u1", "u2", "u3", "u4", None]),
                base_model=rng.choice(["m1", "m2", "m3"]),
                region=rng.choice(["us-east-1", "eu-west-1"]),
                status=rng.choice(["ok", "ok", "ok", "error"]),
                input_tokens=rng.randrange(0, 5000),
                output_tokens=rng.randrange(0, 900),
                latency_ms=rng.randrange(1, 9000),
                cost_usd=Decimal(rng.randrange(0, 10**10)).scaleb(-12) if priced else None,
                unpriced=not priced,
                session_id=rng.choice([*(f"s{i}" for i in range(40)), None]),
                workflow_id=rng.choice(["w1", "w2", "w3", "", None, None]),  # "": no id
            )
        )
    return out


Sums = tuple[object, ...]


def expected(made: list[Event], query: SpendQuery) -> dict[tuple[object, ...], Sums]:
    """(requests, input tokens, cost) per group (and bucket), computed here from the events;
    with ``query.sessions``, then the sessions, their spend, the workflows and theirs."""
    out: dict[tuple[object, ...], list[object]] = defaultdict(lambda: [0, 0, Decimal(0)])
    ids: dict[tuple[object, ...], list[set[str]]] = defaultdict(lambda: [set(), set()])
    spent: dict[tuple[object, ...], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 2)
    for event in made:
        if not query.since <= event.ts < query.until:
            continue
        # An empty id is no id, as a missing one.
        if any((getattr(event, name) or None) != (value or None) for name, value in query.filters):
            continue
        key: tuple[object, ...] = tuple(getattr(event, name) or None for name in query.group_by)
        if query.bucket is not None:
            key += (bucket_start(event.ts, query.bucket),)
        sums = out[key]
        sums[0] = int(sums[0]) + 1  # type: ignore[call-overload]
        sums[1] = int(sums[1]) + event.input_tokens  # type: ignore[call-overload]
        sums[2] = Decimal(sums[2]) + (event.cost_usd or 0)  # type: ignore[arg-type]
        for index, value in enumerate((event.session_id, event.workflow_id)):
            if value:
                ids[key][index].add(value)
                spent[key][index] += event.cost_usd or 0
    plain = {k: (int(v[0]), int(v[1]), Decimal(v[2])) for k, v in out.items()}  # type: ignore[call-overload]
    if not query.sessions:
        return plain
    return {
        k: (*v, len(ids[k][0]), spent[k][0], len(ids[k][1]), spent[k][1]) for k, v in plain.items()
    }


def answered(store: Store, query: SpendQuery) -> dict[tuple[object, ...], Sums]:
    out = {}
    for row in spend(store, query):
        key: tuple[object, ...] = tuple(row.keys[name] for name in query.group_by)
        if query.bucket is not None:
            key += (row.bucket,)
        out[key] = (row.requests, row.input_tokens, row.cost)
        if query.sessions:
            out[key] += (row.sessions, row.session_cost, row.workflows, row.workflow_cost)
    return out


def windows() -> list[tuple[datetime, datetime]]:
    """Ends early and late in the hour and in the day, short and long ranges."""
    rng = random.Random(5)
    minutes = (0, 7, 29, 31, 52)
    hours = (0, 3, 11, 13, 22)
    out = [(T0, T0 + SPAN)]
    for _ in range(14):
        start = T0 + timedelta(
            days=rng.randrange(0, 3), hours=rng.choice(hours), minutes=rng.choice(minutes)
        )
        length = timedelta(
            days=rng.choice((0, 1, 4, 6)),
            hours=rng.choice(hours),
            minutes=rng.choice(minutes) + 1,
        )
        out.append((start, start + length))
    return out


QUERIES = (
    {},
    {"group_by": "department"},  # a facet rollup
    {"group_by": "user_id", "bucket": "hour"},
    {"group_by": "project,base_model", "bucket": "day"},  # the org rollups
    {"group_by": "user_id,region"},  # the full rollups
    {"group_by": "base_model", "filters": {"department": "eng"}},
    {"filters": {"user_id": ""}, "bucket": "week"},
    # three fields from different families: only the full rollups hold them (the cache)
    {"group_by": "department,region,status", "bucket": "day"},
    {"group_by": "user_id,region,status", "filters": {"project": "a"}, "bucket": "week"},
    # hourly series the full rollups answer: over more than 72 hours, from projected slots
    {"group_by": "department,region", "bucket": "hour"},
    {"group_by": "project,base_model", "filters": {"region": "eu-west-1"}, "bucket": "hour"},
    # distinct counts: from the id rollups
    {"sessions": True},
    {"group_by": "department", "sessions": True},
    {"group_by": "user_id,region", "filters": {"project": "b"}, "bucket": "day", "sessions": True},
    {"group_by": "base_model", "bucket": "hour", "sessions": True},
    # grouped by an id, or filtered to no id: through the id rollups (the rows with no id: the
    # other rollups' less theirs)
    {"group_by": "session_id"},
    {"group_by": "project,session_id", "bucket": "day"},
    {"group_by": "workflow_id,region", "filters": {"department": "eng"}},
    {"group_by": "user_id,workflow_id", "filters": {"project": "a"}, "bucket": "week"},
    {"group_by": "department", "filters": {"workflow_id": ""}},
    {"group_by": "session_id", "filters": {"session_id": "", "base_model": "m2"}},
    {"group_by": "workflow_id", "filters": {"department": "eng"}, "bucket": "hour"},
    # both ids, or an id and distinct counts: the sheet of the rows that carry both ids too
    {"group_by": "session_id,workflow_id"},
    {"group_by": "workflow_id,session_id", "filters": {"region": "eu-west-1"}, "bucket": "day"},
    {"group_by": "session_id", "filters": {"workflow_id": ""}},
    {"group_by": "department", "filters": {"workflow_id": "", "session_id": ""}},
    {"group_by": "session_id", "sessions": True},
    {"group_by": "workflow_id", "filters": {"project": "b"}, "sessions": True},
    {"group_by": "department", "filters": {"workflow_id": ""}, "sessions": True},
    {"group_by": "workflow_id,base_model", "bucket": "hour", "sessions": True},
    {"group_by": "session_id,workflow_id", "bucket": "day", "sessions": True},
    {"filters": {"session_id": ""}, "bucket": "week", "sessions": True},
    # one id: raw events (its index)
    {"filters": {"session_id": "s3"}, "bucket": "day"},
    {"group_by": "project", "filters": {"workflow_id": "w2"}, "sessions": True},
)


@pytest.mark.parametrize("folded", [False, True], ids=["pending", "folded"])
@pytest.mark.parametrize("cache_bytes", [DEFAULT_BYTES, 0], ids=["cache", "sql"])
def test_windows_anywhere_match_sums_of_the_events(
    store: Store, db_url: str, folded: bool, cache_bytes: int
) -> None:
    check_windows(store, db_url, folded=folded, cache_bytes=cache_bytes)


def test_slots_summed_one_by_one_match_sums_of_the_events(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache sums big slots one by one (a month of id rollup slots); every slot is
    summed so here, small as they are."""
    monkeypatch.setattr(slot_sums, "_BIG_SLOT_ROWS", 0)
    check_windows(store, db_url, folded=True, cache_bytes=DEFAULT_BYTES)


def test_parts_added_up_at_the_ids_codes_match_sums_of_the_events(
    store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month's parts of a question by an id or by both are added up at the ids' codes
    (``spend_ids.summed_at_ids``); every such question's are here, few as their rows are."""
    monkeypatch.setattr(store_spend, "_AT_IDS", 0)
    check_windows(store, db_url, folded=True, cache_bytes=DEFAULT_BYTES)


def check_windows(store: Store, db_url: str, *, folded: bool, cache_bytes: int) -> None:
    made = made_events()
    store.insert_events(made)
    if folded:
        store.fold()
    reader = open_store(db_url, cache_bytes=cache_bytes)  # the rollup cache, or SQL only
    subtracted = 0
    try:
        for since, until in windows():
            subtracted += sum(p.sign < 0 for p in plan(since, until, rollups=True, days=True))
            for args in QUERIES:
                query = SpendQuery.of(since, until, **args)  # type: ignore[arg-type]
                assert answered(reader, query) == expected(made, query), (since, until, args)
            reader.rollup_cache.wait()  # the slots the worker loads answer the next window
        cache = reader.rollup_cache.stats
    finally:
        reader.close()
    assert subtracted >= 5  # the windows do exercise subtracted edges
    used = folded and cache_bytes > 0
    assert (cache.loads > 0 and cache.hits > 0) if used else cache.loads == 0


# Top rows by cost or by requests: the groups are picked from their requests and spend alone
# (``answer.ranking``), then every measure is summed for those groups only.
RANKED = (
    {"group_by": "session_id", "limit": 5},
    {"group_by": "workflow_id", "limit": 2},  # the rows with no workflow cost most
    {"group_by": "workflow_id", "limit": 2, "order": "cost"},
    {"group_by": "session_id", "limit": 7, "order": "-requests"},  # ties with the seventh
    {"group_by": "project,session_id", "bucket": "day", "limit": 10},
    {"group_by": "workflow_id,region", "filters": {"department": "eng"}, "limit": 3},
    {"group_by": "session_id", "filters": {"base_model": "m2"}, "order": "requests", "limit": 4},
    {"group_by": "workflow_id", "sessions": True, "limit": 2},
    {"group_by": "session_id,workflow_id", "filters": {"project": "c"}, "limit": 6},
)


@pytest.mark.parametrize("folded", [False, True], ids=["pending", "folded"])
@pytest.mark.parametrize("cache_bytes", [DEFAULT_BYTES, 0], ids=["cache", "sql"])
def test_top_rows_of_the_groups_ranked_first_are_the_top_rows_of_all(
    store: Store, db_url: str, folded: bool, cache_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = made_events()
    store.insert_events(made)
    if folded:
        store.fold()
    picked: list[list[str] | None] = []

    def recorded(query: SpendQuery) -> Callable[[pa.Table, str], list[str] | None] | None:
        rank = ranking(query)
        if rank is None:
            return None

        def recording(sums: pa.Table, field: str) -> list[str] | None:
            picked.append(rank(sums, field))
            return picked[-1]

        return recording

    # the module (the package's ``spend`` is the function)
    monkeypatch.setattr(import_module("spendgate.analytics.spend"), "ranking", recorded)
    reader = open_store(db_url, cache_bytes=cache_bytes)
    try:
        for since, until in windows()[:5]:
            for args in RANKED:
                query = SpendQuery.of(since, until, **args)  # type: ignore[arg-type]
                every = replace(query, limit=None)
                assert spend(reader, query) == spend(reader, every)[: query.limit], args
            reader.rollup_cache.wait()
    finally:
        reader.close()
    narrowed = [values for values in picked if values is not None]
    assert len(narrowed) >= 20  # most questions were answered for the groups picked
    assert any("" in values for values in narrowed)  # with the rows with no id
    assert any("" not in values for values in narrowed)  # without


def fold(store: Store, now: datetime) -> None:
    connection = store.engine.connect().execution_options(**{BEGIN_MODE: "IMMEDIATE"})
    with connection, connection.begin():
        RollupWriter(store.engine.dialect).fold(connection, now=now, seal_budget_s=None)


def pair_rows(store: Store, *, since: datetime) -> int:
    table = rollup_tables["spend_pairs_daily"]
    query = select(func.count()).select_from(table).where(table.c.bucket >= since)
    with store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def test_pair_rollup_holds_sealed_days_and_late_events(store: Store) -> None:
    made = made_events()
    store.insert_events(made[:600])
    now = T0 + timedelta(days=5, minutes=50)  # day 4 ended less than SEAL_AFTER ago
    fold(store, now)
    with store.engine.connect() as connection:
        sealed = sealed_until(connection)
    assert set(sealed.values()) == {T0 + timedelta(days=4)}
    assert len(sealed) == 6 + len(PAIRS.pairs)  # six rollups, and each pair on its own
    assert pair_rows(store, since=T0) > 0
    assert pair_rows(store, since=T0 + timedelta(days=4)) == 0
    queries = [
        SpendQuery.of(T0, T0 + SPAN, "user_id,region"),  # sealed days, then spend_daily
        SpendQuery.of(T0 + timedelta(hours=30), T0 + timedelta(days=3), "department,status"),
        SpendQuery.of(T0, T0 + SPAN, "region", filters={"user_id": "u2"}, bucket="day"),
        SpendQuery.of(T0, T0 + SPAN, "department", bucket="day", sessions=True),  # id rollups
    ]
    for query in queries:
        assert answered(store, query) == expected(made[:600], query)
    store.insert_events(made[600:])  # late events for sealed days, and more for open ones
    fold(store, now)
    assert pair_rows(store, since=T0 + timedelta(days=4)) == 0  # still only sealed days
    for query in queries:
        assert answered(store, query) == expected(made, query)
    fold(store, T0 + timedelta(days=12))  # every day has ended: all sealed
    assert pair_rows(store, since=T0 + timedelta(days=4)) > 0
    for query in queries:
        assert answered(store, query) == expected(made, query)


def test_percentiles_from_a_histogram() -> None:
    empty = [0] * 16
    assert percentiles(empty, (0.5, 0.95)) == [None, None]
    one = [0] * 16
    one[2] = 4  # four calls in [200, 350)
    assert percentiles(one, (0.5, 0.95)) == [275.0, 342.5]
    tail = [0] * 16
    tail[0], tail[15] = 1, 9  # most calls in the open last bucket (>= 45 s)
    assert percentiles(tail, (0.05, 0.5, 0.95)) == [50.0, 45000.0, 45000.0]
    rng = random.Random(3)
    for _ in range(200):
        histogram = [rng.choice((0, 0, 1, 5, 40)) for _ in range(16)]
        expected = [by_walking(histogram, 0.5), by_walking(histogram, 0.95)]
        assert percentiles(histogram, (0.5, 0.95)) == expected
        assert percentile(histogram, 0.95) == expected[1]


def test_percentiles_of_many_histograms_at_once() -> None:
    """The column-wise path (one Arrow column per bucket, a row per histogram) gives each
    row exactly what the walk gives it, empty rows and very large counts included."""
    rng = random.Random(5)
    rows = [[0] * 16]
    for _ in range(500):
        scale = rng.choice((1, 1000, 10**12))
        rows.append([rng.choice((0, 0, 1, 7)) * scale + rng.randrange(2) for _ in range(16)])
    columns = [pa.array([row[i] for row in rows], pa.int64()) for i in range(16)]
    p50, p95, p99 = (c.to_pylist() for c in percentile_columns(columns, (0.5, 0.95, 0.99)))
    assert p50[0] is None and p95[0] is None
    for row, *answers in zip(rows, p50, p95, p99, strict=True):
        assert answers == [by_walking(row, f) for f in (0.5, 0.95, 0.99)], row


def by_walking(histogram: list[int], fraction: float) -> float | None:
    """The interpolated percentile, walked bucket by bucket (a separate reference)."""
    lows = (0, *LATENCY_BOUNDS_MS)
    rank, seen = fraction * sum(histogram), 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            if index == len(LATENCY_BOUNDS_MS):
                return float(lows[index])
            high = LATENCY_BOUNDS_MS[index]
            return round(lows[index] + (high - lows[index]) * (rank - seen) / count, 1)
        seen += count
    return None


def test_the_garbage_collector_is_left_as_it_was(store: Store) -> None:
    import gc

    store.insert_events(made_events(50))
    query = SpendQuery.of(T0, T0 + SPAN, "department")
    assert gc.isenabled()
    assert spend(store, query)
    assert gc.isenabled()  # paused while answering, on again after
    gc.disable()
    try:
        assert spend(store, query)
        assert not gc.isenabled()  # someone else turned it off: not ours to turn on
    finally:
        gc.enable()


def test_models_are_named_from_the_foundation_ids_the_gateway_records(store: Store) -> None:
    from spendgate import analytics

    haiku = "anthropic.claude-haiku-4-5-20251001-v1:0"  # as the gateway stores base_model
    store.insert_events(
        [Event(ts=T0, base_model=haiku, model_id=f"us.{haiku}", provider="anthropic")]
    )
    (row,) = analytics.models(store, T0, T0 + SPAN)
    assert row.base_model == haiku
    assert row.name is not None and "Haiku" in row.name


def test_sealing_a_unit_per_fold_keeps_every_answer_right(store: Store) -> None:
    made = made_events(400)
    store.insert_events(made)
    now = T0 + timedelta(days=12)
    writer = RollupWriter(store.engine.dialect)
    queries = [
        SpendQuery.of(T0, T0 + SPAN, "user_id,region"),  # its own pair unit
        SpendQuery.of(T0, T0 + SPAN, "department", bucket="day"),  # the daily facets
        SpendQuery.of(T0, T0 + SPAN, "project,agent"),  # spend_daily_org
        SpendQuery.of(T0 + timedelta(hours=5), T0 + SPAN, "user_id,region,status"),  # full
        SpendQuery.of(T0, T0 + SPAN, "project", sessions=True),  # the daily id rollup
    ]
    counts = []
    for _ in range(70):
        connection = store.engine.connect().execution_options(**{BEGIN_MODE: "IMMEDIATE"})
        with connection, connection.begin():
            writer.fold(connection, now=now, seal_budget_s=0.0)  # one unit per fold
            counts.append(len(sealed_until(connection)))
        if counts[-1] in (1, 6, 30, 58):
            for query in queries:
                assert answered(store, query) == expected(made, query), (counts[-1], query)
    assert counts[:3] == [1, 2, 3] and counts[-1] == 6 + len(PAIRS.pairs) == 58
