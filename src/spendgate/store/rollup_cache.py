"""An in-memory, columnar copy of the rollups' slots, summed with Arrow's vectorised group-by.

A 30-day question reads tens or hundreds of thousands of rollup rows at 10 M events (the full
``spend_daily``: ~650,000), which a row-at-a-time SQL engine sums slowly. Here each slot (one
hour or day of a rollup; of a facet or pair rollup, one dimension's rows of it) is loaded once
into an Arrow table and summed in C++ from then on.

A month of the hourly rollups that keep every combination of their fields is big
(``spend_hourly``: ~2.5 M rows at 10 M events) and slow to sum. An hourly series over more than
three days is answered from their slots' projections instead: each slot summed by the fields
the question names (a few hundred rows an hour), held per set of fields. Warming loads a month
of their whole slots too, after everything else; while they are held, a new set of fields is
summed from them at its first asking, and projected from them in memory, not in SQL.

Nothing stale is ever answered: the writer gives a rollup's slot a new token in ``spend_marks``
in the transaction that changes its rows (``store.rollups``). A query reads its slots' tokens
in its own snapshot and reloads, in that snapshot, each slot whose token differs from the
copy's; so the cache answers exactly what SQL would in the same snapshot, across processes and
replicas.

Loading (``store.rollup_slots``) is the slow step (every value passes through the database
driver as a Python object: seconds for 30 days of the full ``spend_daily`` at 10 M events), so
a query that finds more than ``EAGER_SLOTS`` of its slots missing or changed is answered in
SQL, as without a cache, while a worker thread loads them for the next one; a few (the current
hour, a day with late events) are loaded by the query itself. The gateway asks the worker to
``warm`` the cache with the recent days of every rollup when it starts, so the first question
over them is answered from memory too.

Key values are kept as ``int32`` codes of one dictionary per column (growing only); measures
as the narrowest of ``int16``, ``int32`` and ``int64`` that holds a slot's values. The least
recently used slots are dropped past ``max_bytes``. A part's sums are kept for a repeated
question (the same slots with the same tokens), with what a query derives from them
(``derive``: ``store.spend`` keeps its counts of the days' ids there); so are other sums keyed
by what they depend on (``kept``: ``store.spend``'s raw edges). The copies are saved at
shutdown and read back at the next start (``save``, ``restore``).

This module holds the state and the summing threads; the rest is in its parts: ``slot_plan``
(which slots are held and warmed), ``held_slots`` (the slots, least recently used first),
``slot_worker`` (the worker), ``slot_loader`` (getting them), ``slot_sums`` (summing them, in
Arrow), ``value_codes`` (the codes), ``kept_sums`` (sums kept for a repeated question),
``rollup_slots`` (reading them from the database) and ``rollup_snapshot`` (on disk).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
from sqlalchemy import Connection, Engine

from spendgate.store.held_slots import HeldSlots
from spendgate.store.kept_sums import KeptSums
from spendgate.store.rollup_slots import PROJECTED, slot_marks
from spendgate.store.rollup_snapshot import write_snapshot
from spendgate.store.schema import SPECS
from spendgate.store.slot_loader import CacheStats, SlotLoader
from spendgate.store.slot_plan import (
    HOURS,
    MAX_SPAN,
    SlotRange,
    projects,
    warm_requests,
)
from spendgate.store.slot_sums import summed, sums_schema
from spendgate.store.slot_worker import SlotWorker, Work
from spendgate.store.value_codes import ValueCodes

_T = TypeVar("_T")
_Span = tuple[datetime, datetime]

DEFAULT_BYTES = 2560 << 20
# Slots a query loads itself; with more to load, SQL answers it and the worker loads them.
EAGER_SLOTS = 4
# Warming stops once the copies take this share of the cache (the rest is for what is asked).
WARM_SHARE = 0.75
# A part's sums are kept for a repeated question (the same slots with the same tokens, asked
# the same way), within this share of ``max_bytes``.
_SUMS_SHARE = 0.125


class RollupCache:
    """Columnar copies of rollup slots, for one database (one per ``Store``). Safe to share
    between threads. With an ``engine``, many slots to load are loaded by a worker thread
    (see the module docstring); without, by the query that needs them. ``close`` stops the
    worker."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES, *, engine: Engine | None = None) -> None:
        self._max_bytes = max_bytes
        self._engine = engine
        self._summer: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._slots = HeldSlots(max_bytes)
        self._kept = KeptSums(max_bytes * _SUMS_SHARE)  # by question
        self._codes = ValueCodes()  # key values as int32 codes (the caller holds the lock)
        self.stats = CacheStats()
        self._loader = SlotLoader(self._lock, self._slots, self._codes, self.stats, engine)
        self._worker = SlotWorker(self._loader.load_range, self._has_room)

    @property
    def size_bytes(self) -> int:
        """The memory the copies hold (their Arrow buffers)."""
        return self._slots.size_bytes

    @property
    def slot_count(self) -> int:
        return len(self._slots)

    def tables(self) -> set[str]:
        """The rollups with slots in memory."""
        with self._lock:
            return self._slots.tables()

    def covers(self, table: str, start: datetime, end: datetime) -> bool:
        """Whether the cache answers the rows of ``table`` in ``[start, end)``."""
        span = MAX_SPAN.get(table)
        return self._max_bytes > 0 and span is not None and end - start <= span

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
            self._kept.clear()

    def wait(self) -> None:
        """Until the worker has loaded everything asked of it so far."""
        self._worker.wait()

    def close(self) -> None:
        """Stop the worker (after the load it is doing; what is still asked of it is dropped),
        then the helper threads (a rehearsal the worker runs sums in them to the end), and
        drop every copy."""
        self._worker.close()
        with self._lock:
            summer, self._summer = self._summer, None
        if summer is not None:
            summer.shutdown()
        self.clear()

    def group(
        self,
        connection: Connection,
        table: str,
        start: datetime,
        end: datetime,
        *,
        dimension: str | None,
        group_by: Sequence[str],
        filters: Sequence[tuple[str, str]],
        grain: str | None,
        measures: Sequence[str],
        coded: Collection[str] = (),
        rows: bool = False,
        among: tuple[str, Sequence[str]] | None = None,
    ) -> Future[pa.Table] | None:
        """Sums of ``measures`` per values of the columns ``group_by`` (``''`` for missing,
        as the rollups keep them) and ``grain`` slot over the rows of ``table`` in
        ``[start, end)`` (of a facet or pair rollup: those whose ``dimension`` is
        ``dimension``) matching every ``filters`` equality (column, value), read in
        ``connection``'s snapshot (and, with ``among`` (column, values), whose column holds one
        of the values), as a table laid out by ``sums_schema``. Over more than
        ``HOURS`` of a rollup that ``projects``, each slot is held as its rows summed by
        the ``group_by`` and ``filters`` columns (a sheet per set of columns). Groups with no rows
        are not in it. ``None``: too many slots are not in memory yet (the worker loads
        them): sum this part in SQL. The ``coded`` columns of ``group_by`` are returned as the
        cache's ``int32`` codes of their values (``encode``), not as the values. ``rows``: the
        matching rows themselves, not summed (laid out the same; a key and slot may repeat).
        The slots are read (tokens, loads) here, in the caller's thread and connection, and
        summed in a helper thread: the future's result. Arrow sums without holding the GIL,
        so the caller can meanwhile run its SQL parts on the connection."""
        marks = slot_marks(connection, table, start, end, grain)
        sheet, project = dimension or "", None
        if projects(SPECS[table]) and end - start > HOURS:
            fields = {*group_by, *(column for column, _ in filters), *(among or ())[:1]}
            projected = PROJECTED + ",".join(sorted(fields))
            sheet, project = self._projection(table, projected, marks, (start, end))
        coded_keys = tuple(column for column in group_by if column in coded)
        shape = (tuple(group_by), tuple(filters), grain, tuple(measures), coded_keys, rows, among)
        asked: tuple[Any, ...] = (table, sheet, shape, tuple(marks))  # marks: the tokens
        kept = self._reused(asked, hits=len(marks))
        if kept is not None:
            done: Future[pa.Table] = Future()
            done.set_result(kept)
            if project is not None:
                self._worker.later(project)
            return done
        if self._engine is not None and self._cold(table, sheet, marks) > EAGER_SLOTS:
            self._worker.later(SlotRange(table, sheet, start, end))
            return None
        loaded = [
            (self._loader.get(connection, (table, sheet, bucket), token), slot)
            for bucket, token, slot in marks
        ]
        schema = sums_schema(group_by, grain is not None, measures)
        for index, column in enumerate(group_by):
            if column in coded:
                schema = schema.set(index, pa.field(column, pa.int32()))
        with self._lock:  # other threads may be adding values
            codes = {column: self._codes.code_of(column, value) for column, value in filters}
            if among is not None:
                column, wanted = among
                known = (self._codes.code_of(column, value) for value in wanted)
                codes[column] = pa.array([code for code in known if code is not None], pa.int32())
            values = [None if c in coded else self._codes.decoder(c) for c in group_by]
            summing = partial(self._kept_sums, asked, project, loaded, codes, values, schema, rows)
            return self._helpers().submit(summing)

    def _projection(
        self, table: str, sheet: str, marks: list[tuple[datetime, str, Any]], span: _Span
    ) -> tuple[str, SlotRange | None]:
        """The sheet to sum a long part of a rollup that ``projects`` from: the projected
        ``sheet``; or, while most of its slots are not in memory but the whole slots are
        (warming loads a month of them), the whole slots, with what the worker is to load
        once they are summed: their projections (made in memory, ``SlotLoader.get``), for the next
        asking."""
        if self._engine is None or self._cold(table, sheet, marks) <= EAGER_SLOTS:
            return sheet, None
        if self._cold(table, "", marks) > EAGER_SLOTS:
            return sheet, None
        return "", SlotRange(table, sheet, *span)

    def _kept_sums(self, asked: tuple[Any, ...], then: SlotRange | None, *args: Any) -> pa.Table:
        """``summed(*args)``, kept for ``asked`` before the future has it (so what ``derive``
        makes of it is kept too: a done-callback could run after a waiter woke); then the
        worker is asked to load ``then`` (not sooner: loading meanwhile slows the sums)."""
        table = summed(*args)
        self._store(asked, table)
        if then is not None:
            self._worker.later(then)
        return table

    def kept(self, key: Hashable, make: Callable[[], pa.Table]) -> pa.Table:
        """``make()``, kept for a repeated question as a part's sums are: ``key`` must name
        everything the table depends on (``store.spend`` keys a raw edge by its hour's token)."""
        asked = ("kept", key)
        table = self._reused(asked)
        if table is None:
            table = make()
            self._store(asked, table)
        return table

    def kept_only(self, key: Hashable) -> pa.Table | None:
        """What ``kept`` keeps under ``key``, if it is kept (nothing is made)."""
        return self._reused(("kept", key))

    def keep_later(self, key: Hashable, make: Callable[[], pa.Table | None]) -> None:
        """Have the worker keep ``make()`` under ``key`` (as ``kept`` does; ``None``: nothing
        to keep), unless it is asked already; meanwhile the caller answers without it."""

        def keep() -> None:
            table = make()
            if table is not None:
                self._store(("kept", key), table)

        if self._engine is not None:
            self._worker.later(Work(("kept", key), keep))

    def _reused(self, asked: tuple[Any, ...], *, hits: int = 0) -> pa.Table | None:
        """The sums kept for ``asked`` (counted as reused, and ``hits`` slots as hits), or
        ``None``."""
        with self._lock:
            table = self._kept.get(asked)
            if table is not None:
                self.stats.hits += hits
                self.stats.reused += 1
        return table

    def _store(self, asked: tuple[Any, ...], table: pa.Table) -> None:
        """Keep a part's sums for the same question (least recently asked dropped first)."""
        with self._lock:
            self._kept.put(asked, table)

    def derive(
        self, future: Future[pa.Table], key: Hashable, make: Callable[[pa.Table], _T]
    ) -> Future[_T]:
        """``make(table)`` of ``future``'s result ``table`` (of ``group``, which gave it to a
        helper thread first: waiting on it cannot deadlock the helpers), computed in a helper
        thread and kept as long as ``table`` is (for a repeated question), under ``key``."""

        def run() -> _T:
            table = future.result()
            with self._lock:
                values = self._kept.derived(table)
                if values is not None and key in values:
                    return values[key]  # type: ignore[no-any-return]
            value = make(table)
            with self._lock:
                values = self._kept.derived(table)
                if values is not None:
                    values[key] = value
            return value

        with self._lock:
            return self._helpers().submit(run)

    def _helpers(self) -> ThreadPoolExecutor:
        """The helper threads that sum (the caller holds the lock)."""
        if self._summer is None:
            self._summer = ThreadPoolExecutor(2, thread_name_prefix="spendgate-rollup-sum")
        return self._summer

    def encode(self, column: str, values: pa.Array) -> pa.Array:
        """``values`` of ``column`` (strings) as the ``int32`` codes ``group`` returns for a
        ``coded`` column (new values get new codes)."""
        with self._lock:
            return self._codes.coded(column, values)

    def decode(self, column: str, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The values of ``column`` that ``codes`` (``encode``'s, or a ``coded`` column's)
        stand for."""
        with self._lock:
            decoder = self._codes.decoder(column)
        return decoder.take(codes)

    def _cold(self, table: str, sheet: str, marks: list[tuple[datetime, str, Any]]) -> int:
        """How many of the slots ``marks`` names are not in memory as they are now."""
        with self._lock:
            held = [(self._slots.peek((table, sheet, bucket)), token) for bucket, token, _ in marks]
        return sum(slot is None or slot.token != token for slot, token in held)

    def warm(self, now: datetime, days: int, then: Callable[[], object] | None = None) -> None:
        """Ask the worker to load the recent slots of every rollup, so that questions over
        the last ``days`` days are answered from memory (``slot_plan.warm_requests``: which,
        in which order; a series by fields not asked before is summed from the whole hourly
        slots while their projections are made), while the copies take under ``WARM_SHARE``
        of ``max_bytes``. Returns at once; until a slot is loaded, questions that need it are
        answered as without it. The worker calls ``then()`` once it has loaded all that (the
        gateway: ``analytics.rehearse``)."""
        if self._engine is None or self._max_bytes <= 0 or days <= 0:
            return
        for request in warm_requests(now, days):
            self._worker.later(request)
        if then is not None:
            self._worker.put(then)

    def save(self, folder: Path) -> Path | None:
        """Write the copies (with their tokens and the dictionaries their codes index) as a
        snapshot in ``folder`` (``store.rollup_snapshot``) for ``restore`` in the next
        process; ``None`` when there is nothing to save. ``OSError`` if it cannot be
        written."""
        with self._lock:
            slots = [(key, slot.token, slot.table) for key, slot in self._slots.items()]
            values = self._codes.dictionaries()
        return write_snapshot(folder, slots, values) if slots else None

    def restore(self, folder: Path) -> None:
        """Ask the worker to read the newest snapshot in ``folder`` back, before what is asked
        of it after this (the gateway: ``warm``, which then reloads only the slots whose
        token has changed since). A copy read back answers only while its token is the
        slot's, as any copy. Up to ``WARM_SHARE`` of the cache, the most recently used
        first; a slot loaded meanwhile is kept; a snapshot that cannot be read is logged and
        ignored."""
        if self._engine is not None and self._max_bytes > 0:
            room = self._max_bytes * WARM_SHARE
            self._worker.put(partial(self._loader.restore, folder, room))

    def _has_room(self) -> bool:
        """Whether warming may load more: the copies take under ``WARM_SHARE`` of the cache."""
        return self._slots.size_bytes < self._max_bytes * WARM_SHARE
