"""``EventWriter``: the gateway's events reach the database in batches, off the event loop,
and survive the database being away.

- ``record(event)`` (on the event loop) never blocks on the database: the event joins a bounded
  queue. When the queue is full it is written straight to the journal (counted ``overflowed``),
  flushed to the OS but not fsynced, so an overload does not stall the event loop on the disk.
- One background task takes batches (``batch_size`` events, or what arrived within
  ``interval_s``) and inserts them with ``asyncio.to_thread(store.insert_events, batch)``.
- When the database fails (connection refused, dropped, locked, …) the batch goes to the
  journal and the writer stays "down": later batches go to the journal too, and the database is
  retried with exponential backoff (``retry_min_s`` … ``retry_max_s``). The first retry that
  works replays the journal, and batches go to the database again.
- An event the database refuses as bad data (not an outage) is isolated from its batch and kept
  in ``<journal>.rejected`` for a person to look at; it never blocks the others.
- ``start()`` replays a journal left by a previous run; ``stop()`` drains the queue (to the
  database, or to the journal while it is down) and, if the database is up, replays the
  journal, before returning: SIGTERM calls it. While the database is down ``stop()`` does not
  wait for it: the journal keeps the events for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from spendgate.errors import SpendgateError
from spendgate.events import Event
from spendgate.store.journal import EventSink, Journal

log = logging.getLogger(__name__)

# What opening or writing to a store may raise: database errors, OS errors (a SQLite file),
# binding errors (bad values) and spendgate's own (a bad URL given to a store factory).
STORE_ERRORS = (SQLAlchemyError, OSError, ValueError, TypeError, SpendgateError)
OVERFLOW_LOG_EVERY_S = 10.0


def is_bad_data(exc: BaseException) -> bool:
    """True when ``exc`` means the data was refused (retrying cannot help), not an outage."""
    if isinstance(exc, DataError | IntegrityError | ValueError | TypeError):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def describe(exc: BaseException) -> str:
    """A short, parameter-free description of a store error."""
    cause = getattr(exc, "orig", None) or exc
    return f"{type(exc).__name__}: {cause}".splitlines()[0][:300]


_POLL_S = 0.005  # how often a started batch looks for more events


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of the writer's counters (since it was made)."""

    queued: int  # events waiting in the queue now
    written: int  # rows the writer inserted directly
    journaled: int  # events written to the journal (overflow included)
    replayed: int  # events handed from the journal to the database
    overflowed: int  # events that found the queue full
    db_errors: int  # failed database attempts (writes and retries)
    rejected: int  # events the database refused as bad data (kept in <journal>.rejected)
    lost: int  # events that could reach neither the database nor the journal
    last_error: str | None


class _Isolating:
    """An ``EventSink`` that, when a batch holds data the database refuses, inserts its events
    one by one and sets the refused ones aside in ``rejects``. Outages propagate."""

    def __init__(self, open_store: Callable[[], EventSink], rejects: Journal) -> None:
        self._open_store = open_store
        self.rejects = rejects
        self.rejected = 0

    def insert_events(self, batch: Sequence[Event]) -> int:
        store = self._open_store()  # outside the try: failing to open is an outage
        try:
            return store.insert_events(batch)
        except STORE_ERRORS as exc:
            if not is_bad_data(exc):
                raise
            if len(batch) == 1:
                self._reject(batch[0], exc)
                return 0
        return sum(self.insert_events([event]) for event in batch)

    def _reject(self, event: Event, exc: BaseException) -> None:
        log.error(
            "event %s refused by the database (%s); kept in %s",
            event.event_id,
            describe(exc),
            self.rejects.path,
        )
        self.rejected += 1
        try:
            self.rejects.append([event])
        except (OSError, ValueError, TypeError):
            log.exception("could not keep refused event %s: it is lost", event.event_id)


class EventWriter:
    """Batches events into a store; see the module docstring. ``store`` is a store, or a
    function that opens one (called in a worker thread when first needed, retried while the
    database is away, closed by ``stop``). ``journal`` is the ``Journal`` at ``journal_path``.
    Call ``record``, ``start`` and ``stop`` on one event loop."""

    def __init__(
        self,
        store: EventSink | Callable[[], EventSink],
        *,
        journal_path: Path | str,
        max_queue: int = 10_000,
        batch_size: int = 500,
        interval_s: float = 0.25,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        if max_queue < 1 or batch_size < 1 or interval_s <= 0 or retry_min_s <= 0:
            raise ValueError("max_queue and batch_size must be ≥ 1, intervals positive")
        self._store: EventSink | None = store if isinstance(store, EventSink) else None
        self._factory = None if isinstance(store, EventSink) else store
        self.journal = Journal(journal_path)
        self._sink = _Isolating(self._open_store, Journal(f"{journal_path}.rejected"))
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(max_queue)
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._retry = (retry_min_s, retry_max_s)
        self._backoff = retry_min_s
        self._retry_at = 0.0
        self._down = False  # the database failed; batches go to the journal until a retry works
        self._replay_needed = False  # the journal holds events the database has not seen
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._counts = dict.fromkeys(
            ("written", "journaled", "replayed", "overflowed", "db_errors", "lost"), 0
        )
        self._last_error: str | None = None
        self._overflow_logged_at = -OVERFLOW_LOG_EVERY_S

    @property
    def stats(self) -> WriterStats:
        return WriterStats(
            queued=self._queue.qsize(),
            rejected=self._sink.rejected,
            last_error=self._last_error,
            **self._counts,
        )

    def record(self, event: Event) -> None:
        """Queue ``event`` for the database; never blocks on it. Call on the event loop."""
        if self._stopping:
            self._journal_now([event])
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._counts["overflowed"] += 1
            self._journal_now([event], sync=False)  # no fsync stall on the event loop
            self._log_overflow()

    async def start(self) -> None:
        """Start the background task; it first replays any journal left from earlier."""
        if self._task is not None:
            raise RuntimeError("EventWriter.start() was already called")
        self._replay_needed = await asyncio.to_thread(self.journal.pending) > 0
        self._task = asyncio.create_task(self._run(), name="spendgate-event-writer")
        self._task.add_done_callback(_log_crash)

    async def stop(self) -> None:
        """Write everything queued (database, or journal while it is down), then close."""
        if not self._stopping:
            self._stopping = True
            with contextlib.suppress(asyncio.QueueFull):  # a full queue keeps the task awake
                self._queue.put_nowait(None)
        if self._task is not None:
            await self._task
        elif not self._queue.empty():  # never started: keep what was recorded
            await self._journal_in_thread(self._drain_queue())
        if self._factory is not None and self._store is not None:
            close = getattr(self._store, "close", None)
            if callable(close):
                await asyncio.to_thread(close)

    # -- the background task ------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            batch = await self._next_batch()
            if batch:
                await self._write(batch)
            elif self._stopping:
                break
            if self._retry_due():
                await self._replay()
        if self._replay_needed and not self._down:  # leave no journal behind while we can
            await self._replay()

    async def _next_batch(self) -> list[Event]:
        """Up to ``batch_size`` events, waiting at most ``interval_s`` after the first.

        With nothing to do it blocks on the queue (no timer), except while a database outage or
        a journal replay is pending, when it wakes every interval to retry. Once a batch has
        started it tops up by polling every few milliseconds: one timer per poll rather than
        a task per event, which matters at thousands of events a second."""
        loop = asyncio.get_running_loop()
        batch: list[Event] = []
        if self._queue.empty():
            if self._stopping:
                return batch
            first = await self._first(loop)
            if first is None:
                return batch
            batch.append(first)
        deadline = loop.time() + self._interval_s
        while len(batch) < self._batch_size:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if self._stopping or remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, _POLL_S))
                continue
            item = self._queue.get_nowait()
            if item is not None:  # None only wakes the task for stop()
                batch.append(item)
        return batch

    async def _first(self, loop: asyncio.AbstractEventLoop) -> Event | None:
        if not (self._down or self._replay_needed):
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), self._interval_s)
        except TimeoutError:
            return None

    async def _write(self, batch: list[Event]) -> None:
        if not self._down:
            try:
                self._counts["written"] += await asyncio.to_thread(self._sink.insert_events, batch)
                return
            except STORE_ERRORS as exc:
                self._failed(exc, f"writing {len(batch)} events")
        await self._journal_in_thread(batch)

    def _retry_due(self) -> bool:
        if self._stopping or not (self._down or self._replay_needed):
            return False
        return asyncio.get_running_loop().time() >= self._retry_at

    async def _replay(self) -> None:
        self._replay_needed = False
        try:
            count = await asyncio.to_thread(self.journal.replay, self._sink, self._batch_size)
        except STORE_ERRORS as exc:
            self._failed(exc, "replaying the journal")
            return
        if self._down or count:
            log.info("event store reachable; %d journaled events replayed", count)
        self._counts["replayed"] += count
        self._down = False
        self._backoff = self._retry[0]

    def _failed(self, exc: BaseException, doing: str) -> None:
        self._counts["db_errors"] += 1
        self._last_error = describe(exc)
        self._down = self._replay_needed = True
        self._retry_at = asyncio.get_running_loop().time() + self._backoff
        log.warning(
            "event store failed %s (%s); events go to %s, retrying in %.1fs",
            doing,
            self._last_error,
            self.journal.path,
            self._backoff,
        )
        self._backoff = min(self._backoff * 2, self._retry[1])

    # -- helpers ------------------------------------------------------------------------------

    def _open_store(self) -> EventSink:
        if self._store is None:
            assert self._factory is not None
            self._store = self._factory()
        return self._store

    def _drain_queue(self) -> list[Event]:
        items = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        return [item for item in items if item is not None]

    def _append(self, batch: list[Event], sync: bool = True) -> bool:
        """Journal ``batch``; False (and logged) when even that fails. Thread-safe."""
        try:
            self.journal.append(batch, sync=sync)
        except (OSError, ValueError, TypeError):  # a full disk, or an event JSON cannot hold
            log.exception("could not journal %d events to %s: lost", len(batch), self.journal)
            return False
        return True

    def _tally(self, batch: list[Event], journaled: bool) -> None:
        self._counts["journaled" if journaled else "lost"] += len(batch)
        self._replay_needed = self._replay_needed or journaled

    def _journal_now(self, batch: list[Event], *, sync: bool = True) -> None:
        self._tally(batch, self._append(batch, sync))

    async def _journal_in_thread(self, batch: list[Event]) -> None:
        self._tally(batch, await asyncio.to_thread(self._append, batch))

    def _log_overflow(self) -> None:
        now = time.monotonic()
        if now - self._overflow_logged_at >= OVERFLOW_LOG_EVERY_S:
            self._overflow_logged_at = now
            log.warning(
                "event queue full (%d events): %d events so far went straight to the journal %s",
                self._queue.maxsize,
                self._counts["overflowed"],
                self.journal.path,
            )


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "the event writer stopped unexpectedly; events now go to the journal only once "
            "the queue is full",
            exc_info=task.exception(),
        )
