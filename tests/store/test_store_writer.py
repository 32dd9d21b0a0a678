"""The event writer: batching off the event loop, draining on stop, and real outages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from spendgate.events import Event
from spendgate.store import EventWriter, Journal, Store, open_store

from store_helpers import Outage, make_event, run, until


class ListSink:
    """An in-memory store that remembers each batch."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    def insert_events(self, batch: Sequence[Event]) -> int:
        self.batches.append(list(batch))
        return len(batch)

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch]


def writer_for(store: object, tmp_path: Path, **options: object) -> EventWriter:
    settings: dict[str, object] = {"interval_s": 0.02, "retry_min_s": 0.05, "retry_max_s": 0.2}
    settings.update(options)
    return EventWriter(store, journal_path=tmp_path / "journal.jsonl", **settings)  # type: ignore[arg-type]


def test_batches_by_size(tmp_path: Path) -> None:
    sink = ListSink()
    events = [make_event(i) for i in range(1200)]

    async def scenario() -> None:
        writer = writer_for(sink, tmp_path, batch_size=500, interval_s=5.0)
        await writer.start()
        for event in events:
            writer.record(event)
        await until(lambda: len(sink.events) == 1000, what="two full batches")
        await writer.stop()

    run(scenario())
    assert [len(b) for b in sink.batches] == [500, 500, 200]
    assert sink.events == events


def test_batches_by_interval(tmp_path: Path) -> None:
    sink = ListSink()

    async def scenario() -> None:
        writer = writer_for(sink, tmp_path, batch_size=500, interval_s=0.05)
        await writer.start()
        for i in range(3):
            writer.record(make_event(i))
        await until(lambda: len(sink.events) == 3, timeout=2, what="the interval flush")
        assert writer.stats.written == 3 and writer.stats.queued == 0
        await writer.stop()

    run(scenario())
    assert [len(b) for b in sink.batches] == [3]


def test_record_never_waits_and_overflow_is_journaled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = ListSink()
    events = [make_event(i) for i in range(25)]

    async def scenario() -> None:
        writer = writer_for(sink, tmp_path, max_queue=10)
        await writer.start()
        with caplog.at_level(logging.WARNING, "spendgate.store.writer"):
            for event in events:  # no await: the writer task cannot run meanwhile
                writer.record(event)
        stats = writer.stats
        assert (stats.queued, stats.overflowed, stats.journaled) == (10, 15, 15)
        await until(lambda: writer.journal.pending() == 0, what="the overflow replay")
        await writer.stop()
        assert writer.stats.replayed == 15 and writer.stats.written == 10

    run(scenario())
    assert sorted(e.input_tokens for e in sink.events) == [e.input_tokens for e in events]
    assert caplog.text.count("event queue full (10 events): 1 events so far went") == 1


def test_stop_drains_everything(tmp_path: Path, store: Store) -> None:
    events = [make_event(i) for i in range(1234)]

    async def scenario() -> None:
        writer = writer_for(store, tmp_path, interval_s=10.0)
        await writer.start()
        for event in events:
            writer.record(event)
        started = time.monotonic()
        await writer.stop()
        assert time.monotonic() - started < 5.0  # stop does not wait out the 10 s interval
        assert writer.stats.written == 1234 and writer.stats.queued == 0
        await writer.stop()  # a second stop is harmless
        assert writer.stats.queued == 0

    run(scenario())
    assert {e.event_id for e in store.list_events(limit=10_000)} == {e.event_id for e in events}


def test_events_recorded_before_start_or_after_stop_are_kept(tmp_path: Path, store: Store) -> None:
    async def scenario() -> None:
        early = writer_for(store, tmp_path)
        early.record(make_event(0))
        await early.stop()  # never started: the event goes to the journal
        late = writer_for(store, tmp_path)
        await late.start()  # replays it
        await late.stop()
        late.record(make_event(1))  # after stop: journaled for the next run
        assert late.journal.pending() == 1

    run(scenario())
    assert [e.input_tokens for e in store.list_events()] == [1000]


def test_a_journal_left_by_a_previous_run_is_replayed_at_start(
    tmp_path: Path, store: Store
) -> None:
    left = [make_event(i) for i in range(30)]
    Journal(tmp_path / "journal.jsonl").append(left)

    async def scenario() -> None:
        writer = writer_for(store, tmp_path)
        await writer.start()
        await until(lambda: writer.stats.replayed == 30, what="the replay")
        await writer.stop()

    run(scenario())
    assert len(store.list_events(limit=100)) == 30


def test_bad_events_are_set_aside_not_retried_forever(tmp_path: Path, store: Store) -> None:
    good = [make_event(i) for i in range(5)]
    bad = make_event(99, ts=good[0].ts.replace(tzinfo=None))  # naive: the store refuses it

    async def scenario() -> None:
        writer = writer_for(store, tmp_path)
        await writer.start()
        for event in [*good[:2], bad, *good[2:]]:
            writer.record(event)
        await writer.stop()
        assert writer.stats.rejected == 1 and writer.stats.db_errors == 0
        assert writer.stats.written == 5

    run(scenario())
    assert len(store.list_events()) == 5
    rejected = Journal(tmp_path / "journal.jsonl.rejected")
    assert rejected.pending() == 1


def test_nothing_is_lost_when_the_database_goes_away(
    tmp_path: Path, store: Store, outage: Outage
) -> None:
    """Real outage: PostgreSQL behind a proxy that stops; SQLite locked by another writer."""
    events = [make_event(i) for i in range(300)]
    target = open_store(outage.url, busy_timeout_ms=50)

    async def trickle(batch: list[Event], writer: EventWriter) -> None:
        for event in batch:
            writer.record(event)
            await asyncio.sleep(0.001)

    async def scenario() -> None:
        writer = writer_for(target, tmp_path, batch_size=20)
        await writer.start()
        await trickle(events[:100], writer)
        await until(lambda: writer.stats.written == 100, what="the first 100 events")
        outage.down()
        await trickle(events[100:200], writer)
        await until(lambda: writer.stats.journaled >= 100, what="events journaled")
        assert writer.stats.db_errors >= 1 and writer.stats.last_error
        assert writer.journal.pending() >= 100
        outage.up()
        await trickle(events[200:], writer)
        await until(lambda: writer.journal.pending() == 0, what="the journal to empty")
        await writer.stop()
        stats = writer.stats
        assert stats.written + stats.replayed >= 300
        assert stats.overflowed == stats.lost == stats.rejected == 0

    try:
        run(scenario())
    finally:
        target.close()
    stored = store.list_events(limit=10_000)
    assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in events)


def test_stop_while_the_database_is_down_journals_the_rest(
    tmp_path: Path, store: Store, outage: Outage
) -> None:
    target = open_store(outage.url, busy_timeout_ms=50)
    events = [make_event(i) for i in range(50)]

    async def scenario() -> None:
        writer = writer_for(target, tmp_path, interval_s=10.0)
        await writer.start()
        outage.down()
        for event in events:
            writer.record(event)
        await writer.stop()
        assert writer.stats.journaled == 50 and writer.journal.pending() == 50

    try:
        run(scenario())
    finally:
        outage.up()
        target.close()
    assert store.list_events() == []
    assert Journal(tmp_path / "journal.jsonl").replay(store) == 50
    assert len(store.list_events(limit=100)) == 50


def test_a_store_factory_is_retried_until_the_database_can_be_opened(tmp_path: Path) -> None:
    """The SQLite path is unusable (a file stands where its folder should be), then fixed."""
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    url = f"sqlite:///{blocker}/spendgate.db"
    events = [make_event(i) for i in range(40)]

    async def scenario() -> None:
        writer = writer_for(lambda: open_store(url), tmp_path)
        await writer.start()
        for event in events[:20]:
            writer.record(event)
        await until(lambda: writer.stats.journaled == 20, what="journaling")
        assert "FileExistsError" in (writer.stats.last_error or "")
        blocker.unlink()
        await until(lambda: writer.stats.replayed == 20, what="the replay")
        for event in events[20:]:
            writer.record(event)
        await writer.stop()

    run(scenario())
    with open_store(url) as reopened:
        assert len(reopened.list_events(limit=100)) == 40
