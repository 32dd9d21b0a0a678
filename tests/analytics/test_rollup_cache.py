"""The in-memory rollup cache (``store.rollup_cache``) on SQLite and PostgreSQL: its answers
match sums computed here from the events, and it never answers a slot that another store (a
replica, a process) has changed since it was loaded."""

from __future__ import annotations

import json
import os
import platform
import random
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from functools import partial

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import event, func, select
from test_spend_windows import SPAN, T0, answered, expected, made_events

from spendgate.analytics import SpendQuery, rehearse
from spendgate.events import Event
from spendgate.store import Store, open_store, spend, spend_ids
from spendgate.store.engine import BEGIN_MODE
from spendgate.store.rollup_cache import EAGER_SLOTS
from spendgate.store.rollup_slots import PROJECTED, load_run
from spendgate.store.rollups import PAIRS, rebuild
from spendgate.store.schema import rollup_tables
from spendgate.store.slot_sums import in_halves, narrowed, sum_by

from helpers import marked_slots

WIDE = "department,region,status"  # only the full rollups hold these three together


def late_events(count: int, day: int) -> list[Event]:
    rng = random.Random(day)
    return [
        Event(
            ts=T0 + timedelta(days=day, hours=3, minutes=rng.randrange(60)),
            department="late-dept",
            region="us-east-1",
            status="ok",
            input_tokens=100,
            cost_usd=Decimal("0.25"),
        )
        for _ in range(count)
    ]


def check(store: Store, made: list[Event], query: SpendQuery) -> None:
    """The answer is what the events say (with a limit: the first rows of them, by cost)."""
    if query.limit is None:
        assert answered(store, query) == expected(made, query), query
        return
    every = expected(made, replace(query, limit=None))
    ranked = sorted(every.items(), key=lambda item: (-item[1][2], *map(str, item[0])))
    got = list(answered(store, query).items())
    assert len(got) == min(query.limit, len(every)), query
    assert [sums for _, sums in got] == [sums for _, sums in ranked[: query.limit]], query


def test_a_change_made_by_another_store_is_seen(store: Store, db_url: str) -> None:
    made = made_events()
    store.insert_events(made)
    store.fold()
    days = SpendQuery.of(T0, T0 + timedelta(days=4), group_by=WIDE)
    edges = SpendQuery.of(T0 + timedelta(hours=2), T0 + timedelta(days=2, hours=5), group_by=WIDE)
    for query in (days, edges):
        check(store, made, query)  # in SQL, while the worker loads the slots
    store.rollup_cache.wait()
    stats = store.rollup_cache.stats
    loads, hits = stats.loads, stats.hits
    assert loads > 0
    check(store, made, days)
    assert stats.loads == loads  # nothing changed: every slot from memory
    assert stats.hits == hits + 4

    other = open_store(db_url)  # another replica: its writes reach this store's cache only
    try:  # through the tokens in the database
        late = late_events(5, day=2)
        other.insert_events(late)
        other.fold()  # day 2 is sealed: the late rows go into its daily and hourly slots
    finally:
        other.close()
    made += late
    check(store, made, days)
    assert stats.loads == loads + 1  # only day 2 was read again, by the query itself
    check(store, made, edges)  # its hours up to 05:00 are the edge query's hourly part
    assert stats.loads == loads + 2  # and only the changed hour of them
    assert answered(store, days)[("late-dept", "us-east-1", "ok")] == (5, 500, Decimal("1.25"))


def test_a_rebuild_is_seen(store: Store) -> None:
    made = made_events()
    store.insert_events(made)
    store.fold()
    query = SpendQuery.of(T0, T0 + timedelta(days=5), group_by=WIDE, bucket="day")
    check(store, made, query)
    store.rollup_cache.wait()
    loads = store.rollup_cache.stats.loads
    connection = store.engine.connect().execution_options(**{BEGIN_MODE: "IMMEDIATE"})
    with connection, connection.begin():
        rebuild(connection)
    check(store, made, query)
    store.rollup_cache.wait()
    assert store.rollup_cache.stats.loads == 2 * loads  # every slot has a new token


def test_every_slot_has_a_token(store: Store) -> None:
    store.insert_events(made_events())
    store.fold()
    slots = marked_slots(store.engine)
    assert slots["spend_daily"] == slots["spend_pairs_daily"] == 9
    assert slots["spend_hourly"] == slots["spend_facets_hourly"] > 100


def test_a_small_cache_drops_slots_and_stays_right(db_url: str, store: Store) -> None:
    made = made_events()
    store.insert_events(made)
    store.fold()
    query = SpendQuery.of(T0, T0 + timedelta(days=9), group_by=WIDE, bucket="day")
    small = open_store(db_url, cache_bytes=50_000)  # two or three days
    try:
        cache = small.rollup_cache
        for _ in range(2):
            check(small, made, query)
            cache.wait()
        assert 0 < cache.size_bytes <= 50_000
        assert cache.stats.loads > 9  # days were dropped, then loaded again
    finally:
        small.close()
    off = open_store(db_url, cache_bytes=0)
    try:
        check(off, made, query)
        assert off.rollup_cache.stats.loads == off.rollup_cache.stats.hits == 0
    finally:
        off.close()


def test_filters_and_unknown_values(store: Store) -> None:
    """In SQL while the worker loads the slots, then from memory; with sessions by day too
    (counted from the days' rows: none at all for a value no event has)."""
    made = made_events()
    store.insert_events(made)
    store.fold()
    queries = [
        SpendQuery.of(T0, T0 + timedelta(days=6), group_by=WIDE, filters=filters, **more)
        for filters in ({"project": "a", "user_id": ""}, {"project": "no-such-project"})
        for more in ({}, {"bucket": "day", "sessions": True})
    ]
    for _ in range(2):
        for query in queries:
            check(store, made, query)
        store.rollup_cache.wait()
    assert answered(store, queries[-1]) == answered(store, queries[-2]) == {}


def test_a_long_hourly_series_is_summed_from_projected_slots(store: Store, db_url: str) -> None:
    """Over more than 72 hours, an hourly series by fields only the full rollups hold is
    answered from each hour's rows summed by those fields (a sheet per set of fields), kept
    as exact as the whole slots: a late event reloads only its hour."""
    made = made_events()
    store.insert_events(made)
    store.fold()
    series = SpendQuery.of(T0, T0 + timedelta(days=6), group_by="department,region", bucket="hour")
    reader = open_store(db_url)
    try:
        cache = reader.rollup_cache
        check(reader, made, series)  # in SQL, while the worker loads the projected hours
        cache.wait()
        hours = cache.stats.loads
        assert 100 < hours <= 6 * 24  # an hour with no event has no slot
        check(reader, made, series)
        assert cache.stats.loads == hours and cache.stats.hits == hours  # all from memory
        check(reader, made, series)  # asked again: the same slots, their sums kept
        assert cache.stats.reused == 1 and cache.stats.loads == hours

        filtered = replace(series, filters=(("status", "ok"),))  # another set of fields
        check(reader, made, filtered)
        cache.wait()
        assert cache.stats.loads == 2 * hours

        other = open_store(db_url)  # a late event in one hour, written by another store
        try:
            late = late_events(1, day=2)
            other.insert_events(late)
            other.fold()
        finally:
            other.close()
        made += late
        check(reader, made, series)
        assert cache.stats.loads == 2 * hours + 1  # only that hour, by the query itself
        assert cache.stats.reused == 1  # the kept sums were of the hour before it changed
    finally:
        reader.close()


def test_a_new_hourly_series_is_summed_from_warm_whole_slots(db_url: str, store: Store) -> None:
    """Warming loads a month of the full hourly rollups whole, so an hourly series by a set of
    fields not asked before is summed from them at its first asking, and the worker projects
    them in memory for the next one: no SQL reads ``spend_hourly`` at all."""
    series = SpendQuery.of(
        T0 + timedelta(days=1), T0 + timedelta(days=7), group_by="department,region", bucket="hour"
    )
    reads: list[str] = []

    def seen(*args: object) -> None:
        reads.append(str(args[2]))

    with stored_and_read(db_url, store) as (reader, made):
        cache = reader.rollup_cache
        cache.warm(NOW, 8)
        cache.wait()
        assert "spend_hourly" in cache.tables()
        loads = cache.stats.loads
        event.listen(reader.engine, "before_cursor_execute", seen)
        try:
            check(reader, made, series)  # from the whole slots
            cache.wait()  # the worker projects them
            projected = cache.stats.loads - loads
            assert 100 < projected <= 6 * 24
            check(reader, made, series)  # from the projections
            assert cache.stats.loads == loads + projected
        finally:
            event.remove(reader.engine, "before_cursor_execute", seen)
        assert not [sql for sql in reads if re.search(r"\bspend_hourly\b", sql)]


def test_sums_exact_over_slots_narrowed_to_different_types(store: Store) -> None:
    """A slot keeps each measure in the narrowest of int16 (counts of calls only), int32 and
    int64 that holds its values, so slots of one rollup differ; summed together (days, an
    hourly series, the id rollups' rows of a session question) they are exact."""
    made = made_events()
    for day, tokens in ((1, 40_000), (3, 2_000_000_000)):  # two of them: past int16; int32
        made += [
            Event(
                ts=T0 + timedelta(days=day, hours=5, minutes=minute),
                department="eng",
                region="us-east-1",
                status="ok",
                input_tokens=tokens,
                cost_usd=Decimal(tokens).scaleb(-6),  # 2e9 micro-dollars: past int32 too
                session_id="big",
            )
            for minute in (1, 2)
        ]
    store.insert_events(made)
    store.fold()
    days = SpendQuery.of(T0, T0 + SPAN, group_by=WIDE)
    for query in (
        days,
        replace(days, group_by=("department",), sessions=True),
        SpendQuery.of(T0, T0 + timedelta(days=3, hours=12), group_by=WIDE, bucket="hour"),
    ):
        for _ in range(2):  # in SQL while the worker loads, then from memory
            check(store, made, query)
            store.rollup_cache.wait()
    daily = [
        slot.table
        for (table, _, _), slot in store.rollup_cache._slots.items()
        if table == "spend_daily"
    ]
    assert {table.schema.field("input_tokens").type for table in daily} == {
        pa.int32(),  # tokens: int32 at least
        pa.int64(),
    }
    assert {table.schema.field("requests").type for table in daily} == {pa.int16()}


@pytest.mark.parametrize(
    ("values", "narrow"),
    [
        ([0, -(1 << 15), (1 << 15) - 1], pa.int16()),
        ([0, 1 << 15], pa.int32()),
        ([-(1 << 15) - 1], pa.int32()),
        ([(1 << 31) - 1, -(1 << 31)], pa.int32()),
        ([1 << 31], pa.int64()),
        ([-(1 << 31) - 1, 5], pa.int64()),
        ([], pa.int64()),
        ([None, None], pa.int64()),
    ],
)
def test_a_measure_column_is_narrowed_to_the_type_that_holds_it(
    values: list[int | None], narrow: pa.DataType
) -> None:
    column = pa.chunked_array([pa.array(values, pa.int64())])
    kept = narrowed(column)
    assert kept.type == narrow
    assert kept.to_pylist() == values
    wide = narrowed(column, least=1)  # not int16 (tokens, money)
    assert wide.type == (pa.int32() if narrow == pa.int16() else narrow)
    assert wide.to_pylist() == values


@pytest.mark.parametrize("slots", [40, 1])
def test_rows_summed_in_halves_as_in_one(slots: int) -> None:
    """A big part's rows are cut at a slot's start near the middle and the halves summed by
    two threads at once: the same sums as in one (with one slot, it is not cut)."""
    rng = np.random.default_rng(slots)
    count = 60_000
    table = pa.table(
        {
            "department": pa.array(rng.integers(0, 5, count), pa.int32()),
            "slot": pa.array(np.sort(rng.integers(0, slots, count)), pa.int32()),
            "requests": pa.array(rng.integers(0, 30_000, count), pa.int16()),
            "cost_micro": pa.array(rng.integers(0, 1 << 40, count), pa.int64()),
        }
    )
    keys, measures = ["department", "slot"], ["requests", "cost_micro"]
    order = [("slot", "ascending"), ("department", "ascending")]
    halves = in_halves(table, keys, measures).sort_by(order)
    assert halves.equals(sum_by(table, keys, measures).sort_by(order))
    pairs = zip(table["department"].to_pylist(), table["slot"].to_pylist(), strict=True)
    assert halves.num_rows == len(set(pairs))


def test_a_repeated_sessions_question_counts_only_what_the_edges_touch(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The days' sessions are counted once, straight from their cached rows, and kept with
    them; asked again after new events in the raw edge (of sessions the days hold, and a new
    one), only the edge's sessions are counted again, and the counts stay exact."""
    from_rows: list[int] = []  # the rows of each table counted by distinct id
    summed: list[int] = []  # the rows of each table of per-id sums counted

    def distinct(rows: pa.Table, grouping: Sequence[str], field: str) -> pa.Table:
        from_rows.append(rows.num_rows)
        return real_distinct(rows, grouping, field)

    def counts(table: pa.Table, grouping: Sequence[str]) -> pa.Table:
        summed.append(table.num_rows)
        return real_counts(table, grouping)

    real_distinct, real_counts = spend_ids.distinct, spend_ids._counts
    monkeypatch.setattr(spend, "distinct", distinct)
    monkeypatch.setattr(spend_ids, "_counts", counts)
    made = made_events()
    store.insert_events(made)
    store.fold()
    until = T0 + timedelta(days=8, hours=5, minutes=20)  # ends in 20 raw minutes
    query = SpendQuery.of(T0 + timedelta(hours=1), until, group_by="department", sessions=True)
    check(store, made, query)
    assert not from_rows  # in SQL while the worker loads the slots
    store.rollup_cache.wait()
    check(store, made, query)  # from the loaded slots: the days' counts are taken now
    assert len(from_rows) == 2  # sessions and workflows
    days = min(from_rows)
    assert days > max(summed)  # more rows than any other part's sums
    from_rows.clear()
    summed.clear()
    late = [
        Event(ts=until - timedelta(minutes=5), department=d, session_id=s, workflow_id=w)
        for d, s, w in [("eng", "s1", "w1"), ("ops", "s2", None), ("eng", "s-new", "w-new")]
    ]
    store.insert_events(late)  # not folded: read from events
    made += late
    reused = store.rollup_cache.stats.reused
    check(store, made, query)
    assert store.rollup_cache.stats.reused > reused  # the days' rows were kept
    assert not from_rows  # and their counts too
    assert summed and max(summed) < days  # only what the edges touch is counted again


def test_a_raw_edge_is_kept_until_an_event_reaches_its_hour(store: Store) -> None:
    """A repeated question, or another over the same range, reads no raw edge again while
    its hour is unchanged; an event added to that hour is counted at once (pending), and
    after the fold that moves it."""
    reads: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        reads.append(statement)

    made = made_events()
    made += [  # sessions in both edges' minutes
        Event(ts=T0 + timedelta(hours=h, minutes=m), department="eng", session_id=f"e{h}")
        for h, m in ((1, 5), (1, 15), (8 * 24 + 5, 10))
    ]
    store.insert_events(made)
    store.fold()
    since, until = T0 + timedelta(hours=1, minutes=20), T0 + timedelta(days=8, hours=5, minutes=20)
    query = SpendQuery.of(since, until, group_by="department", sessions=True)

    def asked(query: SpendQuery = query) -> int:
        """Check the answer; how many statements read ``events``."""
        reads.clear()
        check(store, made, query)
        return sum("FROM events" in statement for statement in reads)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        # each edge: its measures, its requests per session and workflow (the worker reads
        # them by every field meanwhile: counted too if it is quick)
        assert asked() >= 4
        store.rollup_cache.wait()
        assert asked() == 0  # both edges kept (the rest from the loaded slots)
        # other questions over the same edges: summed from the worker's sums by every field
        # (and their slots, loaded by the worker after the first asking of each)
        for other in (
            SpendQuery.of(since, until, group_by="project,region", bucket="day", sessions=True),
            SpendQuery.of(since, until, filters={"department": "eng"}, bucket="week"),
            SpendQuery.of(since, until, group_by="user_id", filters={"user_id": ""}),
            SpendQuery.of(since, until, group_by="department", latency=False),
            # by ids, among ids (a top 100), with the other id's count: the edge by every
            # field holds the ids too
            SpendQuery.of(since, until, group_by="session_id,workflow_id", bucket="hour"),
            SpendQuery.of(since, until, group_by="session_id", limit=3),
            SpendQuery.of(since, until, group_by="workflow_id", sessions=True),
            SpendQuery.of(since, until, group_by="project", filters={"session_id": ""}),
        ):
            assert asked(other) == 0, other
        late = [Event(ts=until - timedelta(minutes=2), department="ops", session_id="late")]
        store.insert_events(late)  # pending: the end edge's hour is read again
        made += late
        assert asked() == 2
        store.fold()  # the hour has a new token: read again once, then kept
        assert asked() >= 2
        store.rollup_cache.wait()
        assert asked() == 0
        assert asked(other) == 0
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)


def test_kept_sums_added_in_one_question_and_subtracted_in_another(store: Store) -> None:
    """The morning's hourly id slots are a question's whole range, then the part a window
    from noon to noon subtracts from its day (as big as that day: every event is in the
    morning). The counts kept with those sums are of them added, never used subtracted."""
    rng = random.Random(3)
    made = [
        Event(
            ts=T0 + timedelta(minutes=rng.randrange(12 * 60)),
            department=rng.choice(["eng", "ops"]),
            session_id=f"s{rng.randrange(30)}",
            input_tokens=10,
            cost_usd=Decimal("0.01"),
        )
        for _ in range(200)
    ]
    store.insert_events(made)
    store.fold()
    morning = SpendQuery.of(T0, T0 + timedelta(hours=12), group_by="department", sessions=True)
    noon = T0 + timedelta(hours=12)
    day = SpendQuery.of(noon, noon + timedelta(days=1), group_by="department", sessions=True)
    for query in (morning, day):
        check(store, made, query)  # in SQL while the worker loads
    store.rollup_cache.wait()
    for query in (morning, morning, day, day):
        check(store, made, query)
    assert store.rollup_cache.stats.reused >= 2


def test_values_that_need_quoting_load_intact(store: Store) -> None:
    """Slots are loaded as CSV on PostgreSQL: separators, quotes, line breaks, a backslash,
    a lone quote and non-ASCII text come back as they were."""
    made = made_events()
    odd = ["a,b", 'say "hi"', "two\nlines", "back\\slash", '"', "Zürich ✓", " padded "]
    for index, value in enumerate(odd):
        made[index * 7] = replace(made[index * 7], department=value)
    store.insert_events(made)
    store.fold()
    query = SpendQuery.of(T0, T0 + SPAN, group_by=WIDE)
    check(store, made, query)  # in SQL while the worker loads
    store.rollup_cache.wait()
    check(store, made, query)  # from the loaded slots
    assert store.rollup_cache.stats.loads > 0
    departments = {key[0] for key in answered(store, query)}
    assert set(odd) <= departments


def test_threads_share_one_cache(store: Store) -> None:
    made = made_events()
    store.insert_events(made)
    store.fold()
    queries = [
        SpendQuery.of(T0, T0 + timedelta(days=d, hours=h), group_by=WIDE, bucket="day")
        for d in (2, 5, 8)
        for h in (0, 3, 13)
    ]
    wanted = [expected(made, query) for query in queries]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda q: answered(store, q), queries * 3))
    assert got == wanted * 3


def workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "spendgate-rollup-cache"}


def test_a_cold_range_is_answered_in_sql_while_a_worker_loads_it(db_url: str, store: Store) -> None:
    made = made_events()
    store.insert_events(made)
    store.fold()
    query = SpendQuery.of(T0, T0 + timedelta(days=9), group_by=WIDE)  # 9 day slots
    before = workers()
    reader = open_store(db_url)
    try:
        cache = reader.rollup_cache
        check(reader, made, query)  # more than EAGER_SLOTS to load: SQL answers
        assert EAGER_SLOTS < 9
        cache.wait()
        assert cache.stats.loads == 9
        check(reader, made, query)
        assert cache.stats.loads == 9 and cache.stats.hits == 9
        started = workers() - before
        assert len(started) == 1
    finally:
        reader.close()
    assert not started & workers()  # close stops the worker


NOW = T0 + SPAN + timedelta(hours=5)  # "now" for warming: after the events


def test_close_during_a_rehearsal_leaves_no_summing_thread(db_url: str, store: Store) -> None:
    """``close`` while the worker runs what follows warming (the gateway: ``rehearse``,
    whose questions sum in the helper threads): the rehearsal ends, then the helpers stop.
    (Stopping the helpers first let the rehearsal start new ones that nothing stopped.)"""
    store.insert_events(made_events())
    store.fold()
    before = set(threading.enumerate())
    reader = open_store(db_url)
    started, go = threading.Event(), threading.Event()

    def then() -> None:
        started.set()
        go.wait(10)
        rehearse(reader, NOW, 4)

    reader.rollup_cache.warm(NOW, 4, then=then)
    assert started.wait(30)
    closing = threading.Thread(target=reader.close)
    closing.start()
    closing.join(0.3)  # close has begun (and, before the mend, shut the helpers)
    go.set()
    closing.join(30)
    assert not closing.is_alive()
    left = [t.name for t in set(threading.enumerate()) - before]
    assert not left


@contextmanager
def stored_and_read(db_url: str, store: Store) -> Iterator[tuple[Store, list[Event]]]:
    """``made_events`` stored and folded by ``store``, and another store over the same
    database to read them with (its cache cold), closed afterwards."""
    made = made_events()
    store.insert_events(made)
    store.fold()
    reader = open_store(db_url)
    try:
        yield reader, made
    finally:
        reader.close()


def test_warming_loads_the_recent_slots_of_every_rollup(db_url: str, store: Store) -> None:
    """``warm`` loads the last days of every rollup (each facet and pair dimension too), so
    a question over them, of any shape, is answered from memory at once; by one field, an
    hourly series too."""
    with stored_and_read(db_url, store) as (reader, made):
        cache, now = reader.rollup_cache, NOW
        cache.warm(now, 0)  # off
        cache.wait()
        assert cache.slot_count == 0
        cache.warm(now, 4)
        cache.wait()
        assert cache.tables() == set(rollup_tables)  # every rollup
        loads = cache.stats.loads
        days = SpendQuery.of(now - timedelta(days=4), now, group_by=WIDE)
        for query in (
            days,
            replace(days, group_by=("agent",)),
            replace(days, group_by=PAIRS.pairs[0]),
        ):
            check(reader, made, query)
        assert cache.stats.loads == loads  # all from memory: nothing left to load
        hits = cache.stats.hits
        check(reader, made, replace(days, group_by=("agent",), bucket="hour"))
        assert cache.stats.hits - hits > 72  # days of hourly facet slots, from memory
        assert cache.stats.loads == loads
        old = SpendQuery.of(T0, T0 + timedelta(days=EAGER_SLOTS + 1), group_by=WIDE)  # not warm
        check(reader, made, old)  # in SQL, while the worker loads its days
        cache.wait()
        assert cache.stats.loads == loads + EAGER_SLOTS + 1


def test_warming_then_rehearses_a_question_of_each_kind(
    db_url: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """What ``warm`` is given to run after its loads runs once they are all done
    (``rehearse``, as the gateway does: its questions' sums are kept, so asking one again
    reuses them); a failure there is logged, and the worker goes on loading."""
    with stored_and_read(db_url, store) as (reader, made):
        cache, now = reader.rollup_cache, NOW
        seen: list[set[str]] = []
        cache.warm(now, 4, then=lambda: seen.append(cache.tables()))
        cache.wait()
        assert seen == [set(rollup_tables)]  # called once, after every rollup was loaded
        cache.warm(now, 4, then=partial(rehearse, reader, now, 4))
        cache.wait()
        reused = cache.stats.reused
        sessions = SpendQuery.of(now - timedelta(days=4), now, group_by="project", sessions=True)
        check(reader, made, sessions)  # the rehearsal's own question: its sums were kept
        assert cache.stats.reused > reused
        reused = cache.stats.reused
        top = SpendQuery.of(
            now - timedelta(days=4), now, group_by="workflow_id", sessions=True, limit=100
        )
        check(reader, made, top)  # so were those of the top ids
        assert cache.stats.reused > reused
        reused = cache.stats.reused
        hourly = SpendQuery.of(
            now - timedelta(days=4), now, group_by="project", bucket="hour", sessions=True
        )
        check(reader, made, hourly)  # and of an hourly series
        assert cache.stats.reused > reused

        def failing() -> None:
            raise RuntimeError("boom")

        cache.warm(now, 4, then=failing)
        cache.wait()
        assert "work queued for the worker failed" in caplog.text
        old = SpendQuery.of(T0, T0 + timedelta(days=EAGER_SLOTS + 1), group_by=WIDE)
        loads = cache.stats.loads
        check(reader, made, old)  # in SQL: the worker loads its slots meanwhile
        cache.wait()
        assert cache.stats.loads > loads  # the worker still loads


def test_warming_stops_while_the_cache_is_mostly_full(db_url: str, store: Store) -> None:
    made = made_events()
    store.insert_events(made)
    store.fold()
    reader = open_store(db_url, cache_bytes=60_000)
    try:
        reader.rollup_cache.warm(T0 + SPAN, 9)
        reader.rollup_cache.wait()
        assert 0 < reader.rollup_cache.size_bytes < 60_000  # stopped at WARM_SHARE (+ a slot)
        assert "spend_facets_daily" in reader.rollup_cache.tables()  # the smallest first
        assert "spend_daily" not in reader.rollup_cache.tables()  # the full ones last
    finally:
        reader.close()


def test_closing_drops_what_the_worker_was_still_asked_to_load(db_url: str, store: Store) -> None:
    store.insert_events(made_events())
    store.fold()
    now = T0 + SPAN
    whole = open_store(db_url)
    try:
        whole.rollup_cache.warm(now, 9)
        whole.rollup_cache.wait()
        everything = whole.rollup_cache.stats.loads
    finally:
        whole.close()
    before = workers()
    reader = open_store(db_url)
    reader.rollup_cache.warm(now, 9)  # a hundred-odd requests queued
    reader.close()  # ends after the request being loaded
    assert reader.rollup_cache.stats.loads < everything / 2
    assert reader.rollup_cache.slot_count == 0
    assert not workers() - before


@pytest.mark.parametrize(
    ("table", "sheet", "step"),
    [
        ("spend_hourly", "", timedelta(hours=1)),
        ("spend_facets_hourly", "department", timedelta(hours=1)),
        ("spend_pairs_daily", "department,region", timedelta(days=1)),
        ("spend_hourly", f"{PROJECTED}project,region", timedelta(hours=1)),
    ],
)
def test_slots_read_together_are_each_slots_rows(
    store: Store, table: str, sheet: str, step: timedelta
) -> None:
    store.insert_events(made_events())
    store.fold()
    rollup = rollup_tables[table]
    first = T0 - 2 * step  # two slots before the events: no rows
    buckets = [first + n * step for n in range(40)]
    with store.engine.connect() as connection:
        rows, spans = load_run(connection, table, sheet, buckets)
        assert first not in spans and T0 in spans
        assert sum(length for _, length in spans.values()) == rows.num_rows
        for bucket in buckets:
            start, length = spans.get(bucket, (0, 0))
            alone, only = load_run(connection, table, sheet, [bucket])
            assert rows.slice(start, length).equals(alone), bucket
            assert only == ({bucket: (0, length)} if length else {})
            keys = [c for c in alone.column_names if c in rollup.primary_key.columns]
            measures = [c for c in alone.column_names if c not in keys]
            query = select(*(rollup.c[c] for c in alone.column_names)).where(
                rollup.c.bucket == bucket
            )
            if sheet.startswith(PROJECTED):
                query = (
                    select(
                        *(rollup.c[k] for k in keys),
                        *(func.sum(rollup.c[m]) for m in measures),
                    )
                    .where(rollup.c.bucket == bucket)
                    .group_by(*(rollup.c[k] for k in keys))
                )
            elif sheet:
                query = query.where(rollup.c.dimension == sheet)
            wanted = sorted(tuple(row) for row in connection.execute(query))
            assert sorted(zip(*alone.to_pydict().values(), strict=True)) == wanted, bucket


_FAULTS = """
import resource, spendgate, numpy
out = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = numpy.ones(3_000_000)  # 24 MB, as counting a month of ids makes
    b = a * 2
    del a, b
    out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(out)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
@pytest.mark.parametrize("tuned", [False, True])
def test_mallocs_big_blocks_are_kept_for_the_next_question(tuned: bool) -> None:
    """Importing spendgate has glibc's malloc keep freed blocks of up to 32 MB (numpy's
    arrays) for the next question: the same arrays made again fault no page in. With malloc
    tuned by the environment, it is left as tuned (here: the pages are faulted in each time)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if tuned:
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    ran = subprocess.run(
        [sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True
    )
    first, *again = json.loads(ran.stdout)
    assert first > 500  # the arrays' pages (a fault each, or per huge page)
    if tuned:
        assert min(again) > first / 2
    else:
        assert max(again) < first / 10


@pytest.mark.parametrize(("given", "kept"), [(None, "-1"), ("250", "250")])
def test_arrows_allocator_keeps_the_memory_a_question_freed(given: str | None, kept: str) -> None:
    """Importing spendgate has Arrow's allocator (mimalloc) keep freed memory for the next
    question instead of handing it back a second later (unless the environment says otherwise),
    as mimalloc itself reports once pyarrow is loaded after it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    env["MIMALLOC_VERBOSE"] = "1"
    if given is not None:
        env["MIMALLOC_PURGE_DELAY"] = given
    code = "import spendgate, pyarrow; pyarrow.array(range(1000))"
    ran = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert re.search(rf"option 'purge_delay': {kept}\b", ran.stderr), ran.stderr[-2000:]
