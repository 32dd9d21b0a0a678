"""An append-only JSONL file of events, for when the database cannot take them.

One event per line: ``Event.to_dict()`` as JSON, ``Decimal`` as a string (full precision),
datetimes as ISO-8601 UTC. The journal refuses no event: one the database will refuse (a naive
datetime, say) is journaled as it is and refused on replay. ``append`` writes a whole batch,
then flushes and fsyncs it.

``replay`` first renames the journal to ``<name>.replaying``, inserts every event from that file
in batches, then deletes it. A crash or a database error mid-replay leaves the ``.replaying`` file
for the next replay, which inserts it again — harmless, since inserts ignore known event ids.
Events appended meanwhile go to a fresh journal file. A line that cannot be read (a partial write
cut short by a crash) is skipped with a warning; it never stops a replay.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from spendgate.events import Event

log = logging.getLogger(__name__)

DATETIME_FIELDS = ("ts", "ts_end")
DECIMAL_FIELDS = ("cost_usd",)
EVENT_FIELDS = frozenset(Event.__slots__)


@runtime_checkable
class EventSink(Protocol):
    """Anything that stores events idempotently (``Store`` is one)."""

    def insert_events(self, batch: Sequence[Event]) -> int: ...


def encode(event: Event) -> str:
    """One journal line (without the newline) for ``event``."""
    return json.dumps(
        event.to_dict(), default=_json_value, ensure_ascii=False, separators=(",", ":")
    )


def decode(line: str) -> Event:
    """The event a journal line holds; ``ValueError``/``TypeError`` if it holds none."""
    values = json.loads(line)
    if not isinstance(values, dict):
        raise ValueError("a journal line must hold a JSON object")
    event = {name: value for name, value in values.items() if name in EVENT_FIELDS}
    for name in DATETIME_FIELDS:
        if event.get(name) is not None:
            event[name] = _utc_if_aware(datetime.fromisoformat(event[name]))
    for name in DECIMAL_FIELDS:
        if event.get(name) is not None:
            event[name] = Decimal(event[name])
    return Event(**event)


def _json_value(value: Any) -> str:
    """JSON for what JSON lacks. The journal refuses nothing: a value the database will refuse
    (a naive datetime, an odd type) is kept as is, and refused when replayed."""
    if isinstance(value, datetime):
        return _utc_if_aware(value).isoformat()
    return str(value)


def _utc_if_aware(value: datetime) -> datetime:
    return value if value.utcoffset() is None else value.astimezone(UTC)


class Journal:
    """The journal at ``path`` (created on first append). Thread-safe."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.replaying_path = self.path.with_name(self.path.name + ".replaying")
        self._lock = threading.Lock()  # appends and the rename that starts a replay
        self._replay_lock = threading.Lock()  # one replay at a time

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def append(self, batch: Sequence[Event], *, sync: bool = True) -> None:
        """Add ``batch`` to the journal: flushed to the OS (safe from a process crash) and, with
        ``sync``, fsynced (safe from a power cut) before returning. A later synced append
        makes earlier unsynced ones durable too."""
        if not batch:
            return
        data = "".join(encode(event) + "\n" for event in batch).encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            with self.path.open("a+b") as file:
                if _ends_mid_line(file):  # a crash cut the last write short: start afresh
                    data = b"\n" + data
                file.write(data)
                file.flush()
                if sync:
                    os.fsync(file.fileno())
            if created:
                _fsync_folder(self.path.parent)

    def pending(self) -> int:
        """How many lines (events) wait in the journal, including an unfinished replay."""
        return sum(_count_lines(path) for path in (self.replaying_path, self.path))

    def replay(self, store: EventSink, batch_size: int = 500) -> int:
        """Insert every journaled event into ``store``, then forget them; returns how many
        events were handed to the store. A store error propagates and keeps the events."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        replayed = 0
        with self._replay_lock:
            for _ in range(2):  # a replay a crash left unfinished, then the current journal
                if not self._claim():
                    break
                replayed += self._insert_file(store, batch_size)
                self.replaying_path.unlink()
        return replayed

    def _claim(self) -> bool:
        """Make sure there is a ``.replaying`` file to work on; False when nothing waits."""
        with self._lock:
            if self.replaying_path.exists():
                return True
            if not self.path.exists():
                return False
            os.replace(self.path, self.replaying_path)
            return True

    def _insert_file(self, store: EventSink, batch_size: int) -> int:
        count = 0
        batch: list[Event] = []
        for event in read_events(self.replaying_path):
            batch.append(event)
            if len(batch) >= batch_size:
                count += _insert(store, batch)
                batch = []
        return count + _insert(store, batch)


def read_events(path: Path) -> Iterator[Event]:
    """Every event in the journal file ``path``, skipping (and logging) unreadable lines."""
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            try:
                yield decode(raw.decode("utf-8"))
            except (ValueError, TypeError, ArithmeticError) as exc:
                log.warning(
                    "journal %s: line %d (%d bytes) holds no readable event, skipped: %s",
                    path,
                    number,
                    len(raw),
                    exc,
                )


def _insert(store: EventSink, batch: list[Event]) -> int:
    if batch:
        store.insert_events(batch)
    return len(batch)


def _ends_mid_line(file: Any) -> bool:
    size = file.seek(0, os.SEEK_END)
    if size == 0:
        return False
    file.seek(size - 1)
    return bool(file.read(1) != b"\n")


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(1 for line in file if line.strip())
    except FileNotFoundError:
        return 0


def _fsync_folder(folder: Path) -> None:
    """Make a new file's name durable too (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
