"""The journal: events kept on local disk while the database is away."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from spendgate.events import Event
from spendgate.store import Journal, Store
from spendgate.store.journal import decode, encode

from store_helpers import every_field_set, make_event


class ListSink:
    """An in-memory event sink; ``fail_after`` batches, it raises like a database gone away."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.events: list[Event] = []
        self.batches = 0
        self.fail_after = fail_after

    def insert_events(self, batch: Sequence[Event]) -> int:
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise ConnectionError("database went away")
        self.batches += 1
        self.events.extend(batch)
        return len(batch)


def test_lines_hold_the_whole_event_and_nothing_else() -> None:
    event = every_field_set()
    line = encode(event)
    assert "\n" not in line
    values = json.loads(line)
    assert set(values) == set(event.to_dict())
    assert values["cost_usd"] == "8.750E-9"  # Decimal as its exact string
    assert values["ts"] == "2026-11-01T12:00:00+00:00"
    assert decode(line) == event


def test_full_precision_and_utc() -> None:
    event = make_event(cost_usd=Decimal("0.0000000000001234567"))
    assert decode(encode(event)).cost_usd == Decimal("0.0000000000001234567")
    assert decode(encode(event)).ts.utcoffset() is not None


def test_unknown_fields_are_ignored() -> None:
    event = make_event()
    values = json.loads(encode(event))
    values["a_field_from_the_future"] = 1
    assert decode(json.dumps(values)) == event


def test_append_pending_replay(tmp_path: Path, store: Store) -> None:
    journal = Journal(tmp_path / "spool" / "events.jsonl")
    assert journal.pending() == 0
    batch = [make_event(i) for i in range(25)]
    journal.append(batch[:10])
    journal.append(batch[10:])
    journal.append([])
    assert journal.pending() == 25
    assert journal.replay(store, batch_size=7) == 25
    assert journal.pending() == 0
    assert not journal.path.exists() and not journal.replaying_path.exists()
    assert sorted(store.list_events(limit=100), key=lambda e: e.ts) == batch
    assert journal.replay(store) == 0


def test_corrupt_tail_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(tmp_path / "events.jsonl")
    journal.append([make_event(i) for i in range(3)])
    with journal.path.open("ab") as file:
        file.write(encode(make_event(3)).encode()[:40])  # a crash mid-write
    sink = ListSink()
    with caplog.at_level(logging.WARNING, "spendgate.store.journal"):
        assert journal.replay(sink) == 3
    assert [e.input_tokens for e in sink.events] == [1000, 1001, 1002]
    assert "line 4 (40 bytes) holds no readable event, skipped" in caplog.text


def test_appending_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "events.jsonl")
    journal.append([make_event(0)])
    with journal.path.open("ab") as file:
        file.write(b'{"ts": "2026-')
    journal.append([make_event(1), make_event(2)])
    sink = ListSink()
    assert journal.replay(sink) == 3
    assert [e.input_tokens for e in sink.events] == [1000, 1001, 1002]


@pytest.mark.parametrize(
    "junk", [b"not json\n", b"[1, 2]\n", b'{"no_ts": 1}\n', b"\xff\xfe\n", b'{"ts": "x"}\n']
)
def test_any_unreadable_line_is_skipped(tmp_path: Path, junk: bytes) -> None:
    journal = Journal(tmp_path / "events.jsonl")
    journal.append([make_event(0)])
    with journal.path.open("ab") as file:
        file.write(junk)
    journal.append([make_event(1)])
    sink = ListSink()
    assert journal.replay(sink) == 2


def test_a_failed_replay_keeps_everything_and_resumes(tmp_path: Path, store: Store) -> None:
    journal = Journal(tmp_path / "events.jsonl")
    batch = [make_event(i) for i in range(10)]
    journal.append(batch)
    with pytest.raises(ConnectionError):
        journal.replay(ListSink(fail_after=1), batch_size=4)
    assert journal.replaying_path.exists() and journal.pending() == 10
    journal.append([make_event(10)])  # arrives meanwhile: a fresh journal file
    assert journal.pending() == 11
    store.insert_events(batch[:4])  # what the failed replay had already delivered
    assert journal.replay(store, batch_size=4) == 11
    assert journal.pending() == 0
    assert len(store.list_events(limit=100)) == 11  # each event exactly once


def test_replay_refuses_a_silly_batch_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Journal(tmp_path / "j").replay(ListSink(), batch_size=0)
