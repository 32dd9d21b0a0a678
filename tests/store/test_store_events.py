"""Events in and out of the store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import StatementError

from spendgate.errors import ConfigError
from spendgate.events import Event
from spendgate.store import Store
from spendgate.store.schema import FILTERABLE, RENAMED, events

from store_helpers import T0, every_field_set, make_event


def test_every_field_round_trips(store: Store) -> None:
    event = every_field_set()
    assert all(getattr(event, f.name) != f.default for f in dataclasses.fields(Event))
    assert store.insert_events([event]) == 1
    assert store.list_events() == [event]


def test_default_event_round_trips(store: Store) -> None:
    event = Event(ts=T0)
    store.insert_events([event])
    [back] = store.list_events()
    assert back == event
    assert back.cost_usd is None and back.tags == {} and back.prefix_hashes == []


def test_store_adds_nothing(store: Store) -> None:
    """One column per Event field and no other; text is stored exactly as the event holds it."""
    columns = {c["name"] for c in inspect(store.engine).get_columns("events")}
    fields = {RENAMED.get(f.name, f.name) for f in dataclasses.fields(Event)}
    assert columns == fields
    event = every_field_set()
    store.insert_events([event])
    with store.engine.connect() as connection:
        row = connection.execute(select(events)).mappings().one()
    for name, value in event.to_dict().items():
        if isinstance(value, str):
            assert row[name] == value, name


@pytest.mark.parametrize(
    ("cost", "stored"),
    [
        (Decimal("0.000000008750"), Decimal("0.000000008750")),
        (Decimal("12345.678901234567"), Decimal("12345.678901234567")),
        (Decimal("0.0000000000005"), Decimal("0")),  # half-even: down to 0
        (Decimal("0.0000000000015"), Decimal("0.000000000002")),  # half-even: up to 2
        (Decimal("-0.25"), Decimal("-0.25")),
        (Decimal("0"), Decimal("0")),
        (Decimal("9223372.036854775807"), Decimal("9223372.036854775807")),  # BIGINT max
    ],
)
def test_cost_is_exact_to_the_picodollar(store: Store, cost: Decimal, stored: Decimal) -> None:
    store.insert_events([make_event(cost_usd=cost)])
    [back] = store.list_events()
    assert back.cost_usd == stored
    assert isinstance(back.cost_usd, Decimal)
    assert back.cost_usd.as_tuple().exponent == -12


def test_times_come_back_utc_aware(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    ts = datetime(2026, 7, 1, 14, 30, 15, 123456, tzinfo=paris)
    store.insert_events([make_event(ts=ts, ts_end=ts + timedelta(seconds=2))])
    [back] = store.list_events()
    assert back.ts == ts and back.ts.tzinfo == UTC
    assert back.ts.hour == 12 and back.ts.microsecond == 123456
    assert back.ts_end is not None and back.ts_end.tzinfo == UTC


def test_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(StatementError, match="timezone"):
        store.insert_events([make_event(ts=datetime(2026, 1, 1))])
    assert store.list_events() == []


def test_insert_is_idempotent_on_event_id(store: Store) -> None:
    batch = [make_event(i) for i in range(20)]
    assert store.insert_events(batch) == 20
    assert store.insert_events(batch) == 0
    more = [*batch[10:], *(make_event(i) for i in range(20, 25))]
    assert store.insert_events(more) == 5
    assert store.insert_events([batch[0], batch[0]]) == 0
    fresh = make_event(99)
    assert store.insert_events([fresh, fresh]) == 1
    assert len(store.list_events(limit=1000)) == 26


def test_insert_nothing(store: Store) -> None:
    assert store.insert_events([]) == 0


def test_listing_is_newest_first_and_limited(store: Store) -> None:
    batch = [make_event(i) for i in range(50)]
    store.insert_events(batch[::-1])
    listed = store.list_events(limit=10)
    assert [e.event_id for e in listed] == [e.event_id for e in batch[::-1][:10]]
    assert len(store.list_events(limit=10_000)) == 50


def test_since_until_is_half_open(store: Store) -> None:
    store.insert_events([make_event(i) for i in range(10)])
    window = store.list_events(since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=6))
    assert [e.ts for e in window] == [T0 + timedelta(seconds=s) for s in (5, 4, 3)]
    tokyo = timezone(timedelta(hours=9))
    assert len(store.list_events(since=(T0 + timedelta(seconds=8)).astimezone(tokyo))) == 2


@pytest.mark.parametrize("name", FILTERABLE)
def test_every_filter(store: Store, name: str) -> None:
    wanted = make_event(1, **{name: "wanted"})
    others = [make_event(2, **{name: "other"}), make_event(3)]
    store.insert_events([wanted, *others])
    assert store.list_events(filters={name: "wanted"}) == [wanted]


def test_filters_combine(store: Store) -> None:
    store.insert_events(
        [
            make_event(1, department="a", project="x"),
            make_event(2, department="a", project="y"),
            make_event(3, department="b", project="x"),
        ]
    )
    found = store.list_events(filters={"department": "a", "project": "x"})
    assert [e.ts for e in found] == [T0 + timedelta(seconds=1)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": {"prompt": "x"}}, "unknown event filter prompt; filter on: department"),
        ({"limit": 0}, "limit must be between 1 and 10000"),
        ({"limit": 10_001}, "limit must be between 1 and 10000"),
        ({"since": datetime(2026, 1, 1)}, "since must be a timezone-aware"),
        ({"until": datetime(2026, 1, 1)}, "until must be a timezone-aware"),
    ],
)
def test_bad_queries_say_what_to_fix(store: Store, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        store.list_events(**kwargs)  # type: ignore[arg-type]


def test_500_events_insert_quickly(store: Store) -> None:
    """A generous bound (the real figure is in docs/store.md): batching keeps inserts cheap."""
    batch = [make_event(i, user_id=f"u{i % 7}") for i in range(500)]
    store.insert_events([make_event(-1)])  # warm the connection and the statement cache
    started = time.perf_counter()
    assert store.insert_events(batch) == 500
    assert time.perf_counter() - started < 2.0
