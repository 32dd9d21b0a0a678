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
by what they depend on (``kept``: ``store.spend``'s raw edges).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import accumulate
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from spendgate.errors import DataError
from spendgate.store.rollup_slots import PROJECTED, load_slot, slot_marks
from spendgate.store.rollup_snapshot import read_snapshot, write_snapshot
from spendgate.store.schema import (
    ID_FIELDS,
    LATENCY_BUCKETS,
    ROLLUP_DIMENSIONS,
    ROLLUP_SPECS,
    SPECS,
    RollupSpec,
)
from spendgate.store.types import floor_time

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_Span = tuple[datetime, datetime]

DEFAULT_BYTES = 1536 << 20
# Slots a query loads itself; with more to load, SQL answers it and the worker loads them.
EAGER_SLOTS = 4
# The longest part the cache answers, by rollup (longer ones go to SQL): every slot of it is
# held at once. An hourly facet slot is small (one field's values in an hour), so a month of
# them is held. The other hourly rollups' slots hold every combination of their fields: a part
# of up to ``_HOURS`` is summed from them whole; a longer part from their projections
# (``_projects``), which are small too, or from the whole slots while those are held and the
# projections not yet (``_projection``). The id rollups' hourly slots are never projected.
_DAYS = timedelta(days=92)  # of a daily rollup (and the most days warming loads)
_SERIES_HOURS = timedelta(days=32)  # of the hourly facet rollup, and of projections
_HOURS = timedelta(hours=72)  # of whole hourly slots summed as such (warming loads these hours)


def _projects(spec: RollupSpec) -> bool:
    """Whether a long part of this rollup is answered from projected slots: its slot's rows,
    summed by the fields a question names (an hourly rollup keyed by its dimensions)."""
    return spec.grain == "hour" and not (spec.facets or spec.pairs or spec.ids)


def _max_span(spec: RollupSpec) -> timedelta:
    if spec.grain == "day":
        return _DAYS
    return _SERIES_HOURS if spec.facets or _projects(spec) else _HOURS


MAX_SPAN = {spec.name: _max_span(spec) for spec in ROLLUP_SPECS}
# Warming stops once the copies take this share of the cache (the rest is for what is asked).
WARM_SHARE = 0.75
# A part's sums are kept for a repeated question (the same slots with the same tokens, asked
# the same way), within this share of ``max_bytes``.
_SUMS_SHARE = 0.125
# The integer types a slot's measure columns are narrowed to (``_narrowed``), with the bound
# of each. Slots of different types are cast to one when summed together (~30 ms more over a
# month of hourly slots), so a column should rarely switch types from slot to slot: calls are
# counted in ``int16`` (not ``int8``), tokens, money and milliseconds in ``int32`` at least.
_NARROW = ((pa.int16(), 1 << 15), (pa.int32(), 1 << 31))
_COUNTS = frozenset(("requests", "errors", "unpriced", "latency_count", *LATENCY_BUCKETS))
# Slots averaging fewer rows than this are summed as one chunk (copied together first).
_SMALL_SLOT_ROWS = 2000
# More rows than this (of slots not that big) are grouped in two halves at once.
_HALVED_ROWS = 400_000
# Slots averaging more rows than this are grouped one by one (``_slot_by_slot``).
_BIG_SLOT_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class _Request:
    """Slots for the worker to load: those of ``table`` in ``[start, end)`` (of a facet or
    pair rollup: of dimension ``sheet``). A ``warm`` request (``RollupCache.warm``) is loaded
    only while the copies take under ``WARM_SHARE`` of the cache."""

    table: str
    sheet: str
    start: datetime
    end: datetime
    warm: bool = False


@dataclass(frozen=True, slots=True)
class _Slot:
    token: str
    table: pa.Table
    size: int  # bytes of its buffers (``pa.Table.nbytes`` walks them: ~0.1 ms a slot)

    @classmethod
    def of(cls, token: str, table: pa.Table) -> _Slot:
        return cls(token, table, table.get_total_buffer_size())


@dataclass(slots=True)
class CacheStats:
    """Slots answered from memory (``hits``) and read from the database (``loads``); parts
    whose sums were kept from an earlier question (``reused``)."""

    hits: int = 0
    loads: int = 0
    reused: int = 0


class RollupCache:
    """Columnar copies of rollup slots, for one database (one per ``Store``). Safe to share
    between threads. With an ``engine``, many slots to load are loaded by a worker thread
    (see the module docstring); without, by the query that needs them. ``close`` stops the
    worker."""

    def __init__(self, max_bytes: int = DEFAULT_BYTES, *, engine: Engine | None = None) -> None:
        self._max_bytes = max_bytes
        self._engine = engine
        self._queue: queue.Queue[_Request | Callable[[], object] | None] = queue.Queue()
        self._waiting: set[_Request] = set()
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._summer: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._slots: OrderedDict[tuple[str, str, datetime], _Slot] = OrderedDict()
        self._bytes = 0
        self._sums: OrderedDict[tuple[Any, ...], pa.Table] = OrderedDict()  # by question
        self._sums_bytes = 0
        self._derived: dict[int, dict[Hashable, Any]] = {}  # by id() of a kept sums table
        self._codes: defaultdict[str, dict[str, int]] = defaultdict(dict)  # by column
        self._values: defaultdict[str, list[str]] = defaultdict(list)
        self._decoders: dict[str, pa.Array] = {}  # by column: its values as an Arrow array
        self.stats = CacheStats()

    @property
    def size_bytes(self) -> int:
        """The memory the copies hold (their Arrow buffers)."""
        return self._bytes

    @property
    def slot_count(self) -> int:
        return len(self._slots)

    def tables(self) -> set[str]:
        """The rollups with slots in memory."""
        with self._lock:
            return {table for table, _, _ in self._slots}

    def covers(self, table: str, start: datetime, end: datetime) -> bool:
        """Whether the cache answers the rows of ``table`` in ``[start, end)``."""
        span = MAX_SPAN.get(table)
        return self._max_bytes > 0 and span is not None and end - start <= span

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
            self._bytes = 0
            self._sums.clear()
            self._sums_bytes = 0
            self._derived.clear()

    def wait(self) -> None:
        """Until the worker has loaded everything asked of it so far."""
        self._queue.join()

    def close(self) -> None:
        """Stop the worker (after the load it is doing; what is still asked of it is dropped)
        and the helper threads, and drop every copy."""
        worker, self._worker = self._worker, None
        summer, self._summer = self._summer, None
        if summer is not None:
            summer.shutdown()
        if worker is not None:
            self._stopping = True
            self._queue.put(None)
            worker.join()
            self._stopping = False
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
    ) -> Future[pa.Table] | None:
        """Sums of ``measures`` per values of the columns ``group_by`` (``''`` for missing,
        as the rollups keep them) and ``grain`` slot over the rows of ``table`` in
        ``[start, end)`` (of a facet or pair rollup: those whose ``dimension`` is
        ``dimension``) matching every ``filters`` equality (column, value), read in
        ``connection``'s snapshot, as a table laid out by ``sums_schema``. Over more than
        ``_HOURS`` of a rollup that ``_projects``, each slot is held as its rows summed by
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
        if _projects(SPECS[table]) and end - start > _HOURS:
            fields = {*group_by, *(column for column, _ in filters)}
            projected = PROJECTED + ",".join(sorted(fields))
            sheet, project = self._projection(table, projected, marks, (start, end))
        coded_keys = tuple(column for column in group_by if column in coded)
        shape = (tuple(group_by), tuple(filters), grain, tuple(measures), coded_keys, rows)
        asked: tuple[Any, ...] = (table, sheet, shape, tuple(marks))  # marks: the tokens
        kept = self._reused(asked, hits=len(marks))
        if kept is not None:
            done: Future[pa.Table] = Future()
            done.set_result(kept)
            if project is not None:
                self._later(project)
            return done
        if self._engine is not None and self._cold(table, sheet, marks) > EAGER_SLOTS:
            self._later(_Request(table, sheet, start, end))
            return None
        loaded = [
            (self._get(connection, (table, sheet, bucket), token), slot)
            for bucket, token, slot in marks
        ]
        schema = sums_schema(group_by, grain is not None, measures)
        for index, column in enumerate(group_by):
            if column in coded:
                schema = schema.set(index, pa.field(column, pa.int32()))
        with self._lock:  # other threads may be adding values
            codes = {column: self._codes[column].get(value) for column, value in filters}
            values = [None if c in coded else self._decoder(c) for c in group_by]
            summing = partial(self._kept_sums, asked, project, loaded, codes, values, schema, rows)
            return self._helpers().submit(summing)

    def _projection(
        self, table: str, sheet: str, marks: list[tuple[datetime, str, Any]], span: _Span
    ) -> tuple[str, _Request | None]:
        """The sheet to sum a long part of a rollup that ``_projects`` from: the projected
        ``sheet``; or, while most of its slots are not in memory but the whole slots are
        (warming loads a month of them), the whole slots, with what the worker is to load
        once they are summed: their projections (made in memory, ``_get``), for the next
        asking."""
        if self._engine is None or self._cold(table, sheet, marks) <= EAGER_SLOTS:
            return sheet, None
        if self._cold(table, "", marks) > EAGER_SLOTS:
            return sheet, None
        return "", _Request(table, sheet, *span)

    def _kept_sums(self, asked: tuple[Any, ...], then: _Request | None, *args: Any) -> pa.Table:
        """``_summed(*args)``, kept for ``asked`` before the future has it (so what ``derive``
        makes of it is kept too: a done-callback could run after a waiter woke); then the
        worker is asked to load ``then`` (not sooner: loading meanwhile slows the sums)."""
        table = _summed(*args)
        self._store(asked, table)
        if then is not None:
            self._later(then)
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

    def _reused(self, asked: tuple[Any, ...], *, hits: int = 0) -> pa.Table | None:
        """The sums kept for ``asked`` (counted as reused, and ``hits`` slots as hits), or
        ``None``."""
        with self._lock:
            table = self._sums.get(asked)
            if table is not None:
                self._sums.move_to_end(asked)
                self.stats.hits += hits
                self.stats.reused += 1
        return table

    def _store(self, asked: tuple[Any, ...], table: pa.Table) -> None:
        """Keep a part's sums for the same question (least recently asked dropped first)."""
        limit = self._max_bytes * _SUMS_SHARE
        with self._lock:
            if asked in self._sums or table.nbytes > limit or limit <= 0:
                return
            self._sums[asked] = table
            self._sums_bytes += table.nbytes
            self._derived[id(table)] = {}
            while self._sums_bytes > limit:
                _, dropped = self._sums.popitem(last=False)
                self._sums_bytes -= dropped.nbytes
                del self._derived[id(dropped)]

    def derive(
        self, future: Future[pa.Table], key: Hashable, make: Callable[[pa.Table], _T]
    ) -> Future[_T]:
        """``make(table)`` of ``future``'s result ``table`` (of ``group``, which gave it to a
        helper thread first: waiting on it cannot deadlock the helpers), computed in a helper
        thread and kept as long as ``table`` is (for a repeated question), under ``key``."""

        def run() -> _T:
            table = future.result()
            with self._lock:  # an entry lives while its table is kept: the id is not reused
                values = self._derived.get(id(table))
                if values is not None and key in values:
                    return values[key]  # type: ignore[no-any-return]
            value = make(table)
            with self._lock:
                values = self._derived.get(id(table))
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

    def _decoder(self, column: str) -> pa.Array:
        """The values of ``column`` so far, by code, as an Arrow array: extended as the
        dictionary grows, never copied per question (the caller holds the lock)."""
        known = self._values[column]
        array = self._decoders.get(column)
        if array is None or len(array) < len(known):
            start = 0 if array is None else len(array)
            tail = pa.array(known[start:], pa.string())
            array = tail if array is None else pa.concat_arrays([array, tail])
            self._decoders[column] = array
        return array

    def encode(self, column: str, values: pa.Array) -> pa.Array:
        """``values`` of ``column`` (strings) as the ``int32`` codes ``group`` returns for a
        ``coded`` column (new values get new codes)."""
        with self._lock:
            return self._coded(column, values)

    def decode(self, column: str, codes: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The values of ``column`` that ``codes`` (``encode``'s, or a ``coded`` column's)
        stand for."""
        with self._lock:
            decoder = self._decoder(column)
        return decoder.take(codes)

    def _coded(self, column: str, values: pa.Array) -> pa.Array:
        """``encode``, the caller holding the lock."""
        encoded = values.dictionary_encode()
        known, names = self._codes[column], self._values[column]
        remap = []
        for value in encoded.dictionary.to_pylist():
            if value not in known:
                known[value] = len(names)
                names.append(value)
            remap.append(known[value])
        return pa.array(remap, pa.int32()).take(encoded.indices)

    def _cold(self, table: str, sheet: str, marks: list[tuple[datetime, str, Any]]) -> int:
        """How many of the slots ``marks`` names are not in memory as they are now."""
        with self._lock:
            held = [(self._slots.get((table, sheet, bucket)), token) for bucket, token, _ in marks]
        return sum(slot is None or slot.token != token for slot, token in held)

    def warm(self, now: datetime, days: int, then: Callable[[], object] | None = None) -> None:
        """Ask the worker to load the recent slots of every rollup, of each dimension or pair
        of a facet or pair rollup, so that questions over the last ``days`` days are answered
        from memory: the last ``days`` + 1 days of a daily rollup (up to ``MAX_SPAN``); of an
        hourly one, the last 72 hours and the two days around that start (the edges of a
        window of ``days`` or ``days`` + 1 days ending now). Smallest rollups first; then, for
        hourly series, every hour of those days (up to ``MAX_SPAN``) of each field of the
        hourly facet rollup, then whole of the rollups that ``_projects`` (a series by fields
        not asked before is summed from them while their projections are made); while the
        copies take under ``WARM_SHARE`` of ``max_bytes``. Returns at once; until a slot is
        loaded, questions that need it are answered as without it. The worker calls
        ``then()`` once it has loaded all that (the gateway: ``analytics.rehearse``)."""
        if self._engine is None or self._max_bytes <= 0 or days <= 0:
            return
        series: list[_Request] = []
        for spec in sorted(ROLLUP_SPECS, key=_warm_order):
            step = timedelta(hours=1) if spec.grain == "hour" else timedelta(days=1)
            end = floor_time(now, step) + step
            start = end - min(timedelta(days=days + 1), _DAYS)
            if spec.grain == "hour":  # the last hours, and the hours around that start
                ranges = [(end - _HOURS, end), (start, start + timedelta(days=2))]
            else:
                ranges = [(start, end)]
            for sheet in _sheets(spec):
                for low, high in ranges:
                    self._later(_Request(spec.name, sheet, low, high, warm=True))
                if spec.grain == "hour" and (spec.facets or _projects(spec)):
                    low = max(start, end - _SERIES_HOURS)
                    series.append(_Request(spec.name, sheet, low, end, warm=True))
        for request in series:
            self._later(request)
        if then is not None:
            self._put(then)

    def save(self, folder: Path) -> Path | None:
        """Write the copies (with their tokens and the dictionaries their codes index) as a
        snapshot in ``folder`` (``store.rollup_snapshot``) for ``restore`` in the next
        process; ``None`` when there is nothing to save. ``OSError`` if it cannot be
        written."""
        with self._lock:
            slots = [(key, slot.token, slot.table) for key, slot in self._slots.items()]
            values = {column: self._decoder(column) for column in self._values}
        return write_snapshot(folder, slots, values) if slots else None

    def restore(self, folder: Path) -> None:
        """Ask the worker to read the newest snapshot in ``folder`` back, before what is asked
        of it after this (the gateway: ``warm``, which then reloads only the slots whose
        token has changed since). A copy read back answers only while its token is the
        slot's, as any copy. Up to ``WARM_SHARE`` of the cache, the most recently used
        first; a slot loaded meanwhile is kept; a snapshot that cannot be read is logged and
        ignored."""
        if self._engine is not None and self._max_bytes > 0:
            self._put(partial(self._restore, folder))

    def _restore(self, folder: Path) -> None:
        try:
            snapshot = read_snapshot(folder)
            if snapshot is None:
                return
            kept, room = [], self._max_bytes * WARM_SHARE
            for key, token, rows in reversed(snapshot.slots):  # the most recently used first
                room -= rows.get_total_buffer_size()
                if room < 0:
                    break
                kept.append((key, token, rows))
            with self._lock:  # codes, once given, never change: recoding needs no lock
                remaps = {c: self._merged(c, v) for c, v in snapshot.values.items()}
            if any(remap is not None for remap in remaps.values()):
                kept = [(key, token, _recoded(rows, remaps)) for key, token, rows in kept]
            slots = [(key, _Slot.of(token, rows)) for key, token, rows in kept]
        except (DataError, OSError, pa.ArrowException) as exc:
            log.warning("rollup cache: could not read the snapshot in %s: %s", folder, exc)
            return
        with self._lock:
            for key, slot in slots:  # each before the last: the oldest ends first
                if key in self._slots:  # loaded meanwhile
                    continue
                self._slots[key] = slot
                self._slots.move_to_end(key, last=False)
                self._bytes += slot.size
            self._drop_past_max()
        log.info("rollup cache: %d slots read back from %s", len(slots), snapshot.path)

    def _merged(self, column: str, values: pa.Array) -> pa.Array | None:
        """A snapshot's dictionary of ``column`` (distinct values) merged into the cache's:
        the codes its codes become (``None``: the same; the caller holds the lock)."""
        names = self._values[column]
        if not names:
            names.extend(values.to_pylist())
            self._codes[column].update(zip(names, range(len(names)), strict=True))
            return None
        remap = self._coded(column, values)
        return None if remap.equals(pa.array(np.arange(len(remap), dtype=np.int32))) else remap

    def _later(self, request: _Request) -> None:
        """Ask the worker to load the slots ``request`` names."""
        with self._lock:
            if request in self._waiting:
                return
            self._waiting.add(request)
        self._put(request)

    def _put(self, work: _Request | Callable[[], object]) -> None:
        """Queue ``work`` for the worker, started if it is not running."""
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="spendgate-rollup-cache", daemon=True
                )
                self._worker.start()
        self._queue.put(work)

    def _work(self) -> None:
        while (request := self._queue.get()) is not None:
            if not isinstance(request, _Request):
                self._call(request)
                continue
            try:
                room = not request.warm or self._bytes < self._max_bytes * WARM_SHARE
                if room and not self._stopping:
                    self._load_range(request)
            except SQLAlchemyError as exc:  # the next query that needs them asks again
                log.warning("rollup cache: could not load %s: %s", request.table, exc)
            finally:
                with self._lock:
                    self._waiting.discard(request)
                self._queue.task_done()
        self._queue.task_done()

    def _call(self, then: Callable[[], object]) -> None:
        """Run what ``warm`` was asked to run after its loads (not while closing): a failure
        is logged, and the worker goes on."""
        try:
            if not self._stopping:
                then()
        except Exception:  # best effort: nothing waits for its result
            log.warning("rollup cache: what was to run after warming failed", exc_info=True)
        finally:
            self._queue.task_done()

    def _load_range(self, request: _Request) -> None:
        """Load every slot ``request`` names that is not in memory, with the tokens of the
        same snapshot."""
        assert self._engine is not None
        table, sheet = request.table, request.sheet
        with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql":  # tokens and rows of one snapshot
                connection.execution_options(isolation_level="REPEATABLE READ")
            for bucket, token, _ in slot_marks(connection, table, request.start, request.end, None):
                self._get(connection, (table, sheet, bucket), token)

    def _get(self, connection: Connection, key: tuple[str, str, datetime], token: str) -> pa.Table:
        with self._lock:
            held = self._slots.get(key)
            if held is not None and held.token == token:
                self._slots.move_to_end(key)
                self.stats.hits += 1
                return held.table
        rows = self._from_whole(key, token)
        if rows is None:
            rows = load_slot(connection, *key)
        rows = _measures_narrowed(rows)
        with self._lock:
            loaded = self._encoded(rows)
            old = self._slots.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._slots[key] = slot = _Slot.of(token, loaded)
            self._bytes += slot.size
            self.stats.loads += 1
            self._drop_past_max()
        return loaded

    def _drop_past_max(self) -> None:
        """Drop the least recently used slots past ``max_bytes`` (the caller holds the lock)."""
        while self._bytes > self._max_bytes and len(self._slots) > 1:
            _, dropped = self._slots.popitem(last=False)
            self._bytes -= dropped.size

    def _from_whole(self, key: tuple[str, str, datetime], token: str) -> pa.Table | None:
        """A projected slot summed from its whole slot, if that is in memory with ``token``
        (laid out as ``load_slot``'s: the fields, then the measures); else ``None``."""
        table, sheet, bucket = key
        if not sheet.startswith(PROJECTED):
            return None
        with self._lock:
            whole = self._slots.get((table, "", bucket))
        if whole is None or whole.token != token:
            return None
        fields = [name for name in sheet.removeprefix(PROJECTED).split(",") if name]
        return sum_by(whole.table, fields, SPECS[table].measures)

    def _encoded(self, rows: pa.Table) -> pa.Table:
        """A slot's rows with key values as codes of the cache's dictionaries (the caller
        holds the lock: the dictionaries grow here)."""
        for index, field in enumerate(rows.schema):
            if pa.types.is_string(field.type):
                coded = self._coded(field.name, rows[index].combine_chunks())
                rows = rows.set_column(index, field.name, coded)
        return rows.combine_chunks()


def _recoded(rows: pa.Table, remaps: dict[str, pa.Array | None]) -> pa.Table:
    """A snapshot's slot with its coded columns' codes made the cache's (``remaps``: by
    column, the codes they become; ``None`` where the same)."""
    for index, name in enumerate(rows.column_names):
        remap = remaps.get(name)
        if remap is not None:
            rows = rows.set_column(index, name, remap.take(rows[index]))
    return rows.combine_chunks()


def _measures_narrowed(rows: pa.Table) -> pa.Table:
    """A slot's rows with each ``int64`` column (its measures) ``_narrowed``: calls counted
    down to ``int16``, the others down to ``int32``."""
    for index, field in enumerate(rows.schema):
        if field.type == pa.int64():
            least = 0 if field.name in _COUNTS else 1
            rows = rows.set_column(index, field.name, _narrowed(rows[index], least))
    return rows


def _narrowed(column: pa.ChunkedArray, least: int = 0) -> pa.ChunkedArray:
    """An ``int64`` measure column as the narrowest of ``_NARROW[least:]`` that holds its
    values: a month of ``spend_hourly`` takes half the memory. Sums come out as ``int64`` all
    the same (Arrow sums signed integers into ``int64``)."""
    low, high = pc.min_max(column).as_py().values()
    if low is None:  # no values
        return column
    for type_, limit in _NARROW[least:]:
        if -limit <= low and high < limit:
            return column.cast(type_)
    return column


def _sheets(spec: RollupSpec) -> list[str]:
    """The dimensions a rollup's slots are split by (``''``: one, unsplit)."""
    if spec.ids:
        return list(ID_FIELDS)
    if spec.facets:
        return list(spec.dimensions)
    if spec.pairs:
        return [f"{first},{second}" for first, second in spec.pairs]
    return [""]


def _warm_order(spec: RollupSpec) -> tuple[int, int]:
    """Facet rollups first, then the others, the full rollups (every dimension) and then the
    id rollups last; daily before hourly."""
    full = not spec.facets and not spec.pairs and len(spec.dimensions) == len(ROLLUP_DIMENSIONS)
    size = 0 if spec.facets else 3 if spec.ids else 2 if full else 1
    return size, spec.grain == "hour"


def sums_schema(keys: Sequence[str], slotted: bool, measures: Sequence[str]) -> pa.Schema:
    """The layout of spend sums: a string column per key, a ``slot`` column (the grain slot's
    UTC start) when ``slotted``, then an int64 column per measure."""
    return pa.schema(
        [
            *((key, pa.string()) for key in keys),
            *([("slot", pa.timestamp("us", tz="UTC"))] if slotted else []),
            *((measure, pa.int64()) for measure in measures),
        ]
    )


def negated(table: pa.Table, measures: Sequence[str]) -> pa.Table:
    """``table`` with its ``measures`` columns negated (sums taken away instead of added)."""
    for name in measures:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.field(index), pc.negate(table[index]))
    return table


def sum_by(table: pa.Table, keys: Sequence[str], measures: Sequence[str]) -> pa.Table:
    """The sums of ``measures`` per distinct values of ``keys`` in ``table``: the ``keys``
    columns, then one column per measure (without keys: one row of sums)."""
    if not keys:
        sums = [pa.array([pc.sum(table[m]).as_py() or 0], pa.int64()) for m in measures]
        return pa.table(sums, names=list(measures))
    grouped = table.group_by(keys, use_threads=False).aggregate([(m, "sum") for m in measures])
    return grouped.select([*keys, *(f"{m}_sum" for m in measures)]).rename_columns(
        [*keys, *measures]
    )


def _summed(
    loaded: list[tuple[pa.Table, datetime | None]],
    codes: dict[str, int | None],
    values: list[pa.Array | None],
    schema: pa.Schema,
    rows_only: bool = False,
) -> pa.Table:
    """``RollupCache.group``'s sums of the ``loaded`` slots, laid out by ``schema`` (its
    first ``len(values)`` columns are the keys): the rows matching ``codes`` (a code of
    ``None``, a value no slot holds, matches none), grouped by the keys (decoded with
    ``values``, each key's values by code; ``None``: left as codes) and the slot; with
    ``rows_only``, those rows not grouped."""
    slotted = "slot" in schema.names
    group_by = schema.names[: len(values)]
    measures = schema.names[len(values) + slotted :]
    if any(code is None for code in codes.values()):
        return schema.empty_table()
    rows, slots = _selected(loaded, codes, [*group_by, *measures], slotted=slotted)
    if rows is None:
        return schema.empty_table()
    keys = [*group_by, *(["slot"] if slotted else [])]
    if rows_only:
        sums = rows.select([*keys, *measures])
    elif slotted:
        sums = _slot_by_slot(rows, group_by, measures, len(slots))
    else:
        sums = sum_by(rows, keys, measures)
    columns = [
        sums[field] if known is None else known.take(sums[field])
        for field, known in zip(group_by, values, strict=True)
    ]
    if slotted:
        columns.append(pa.array(slots, schema.field("slot").type).take(sums["slot"]))
    found = sums.columns[len(keys) :]  # rows' measures are narrowed in the slots: as int64
    return pa.table([*columns, *(column.cast(pa.int64()) for column in found)], schema=schema)


def _slot_by_slot(
    rows: pa.Table, group_by: list[str], measures: Sequence[str], slots: int
) -> pa.Table:
    """``sum_by`` of ``rows`` (ordered by ``slot``, of ``slots`` slots) per ``group_by`` and
    slot; when the slots are big, each slot's rows grouped alone: no key spans two slots, and
    a hash table of one slot's keys stays in the CPU's caches, which one of a month's does not
    (a month of the full daily rollup's slots holds 650,000 keys)."""
    if rows.num_rows < _BIG_SLOT_ROWS * slots:
        if rows.num_rows > _HALVED_ROWS:
            return _in_halves(rows, [*group_by, "slot"], measures)
        return sum_by(rows, [*group_by, "slot"], measures)
    runs = slot_runs(rows)
    sums = []
    for run, slot in runs:
        one = sum_by(run, group_by, measures)
        sums.append(one.add_column(len(group_by), "slot", pa.repeat(slot, one.num_rows)))
    return pa.concat_tables(sums)


def _in_halves(rows: pa.Table, keys: list[str], measures: Sequence[str]) -> pa.Table:
    """``sum_by`` of ``rows`` (ordered by ``slot``, one of ``keys``) cut at a slot's start
    near the middle, the halves summed at once by this thread and another (Arrow does not
    hold the GIL): no key is in both. A month of ``spend_hourly`` (1.7 M rows) by two fields
    took 185-276 ms in one, 114-147 in halves."""
    slots = rows["slot"].combine_chunks().to_numpy()
    middle = int(np.searchsorted(slots, slots[len(slots) // 2]))
    if not middle:
        return sum_by(rows, keys, measures)
    with ThreadPoolExecutor(1, thread_name_prefix="spendgate-rollup-half") as other:
        later = other.submit(sum_by, rows.slice(middle), keys, measures)
        first = sum_by(rows.slice(0, middle), keys, measures)
        return pa.concat_tables([first, later.result()])


def slot_runs(rows: pa.Table) -> list[tuple[pa.Table, pa.Scalar]]:
    """``rows`` (ordered by their ``slot`` column) cut into each slot's rows, with the slot."""
    runs = pc.run_end_encode(rows["slot"]).combine_chunks()
    ends = runs.run_ends.to_pylist()
    starts = [0, *ends][:-1]
    return [
        (rows.slice(start, end - start), slot)
        for start, end, slot in zip(starts, ends, runs.values, strict=True)
    ]


def _selected(
    loaded: list[tuple[pa.Table, datetime | None]],
    codes: dict[str, int | None],
    columns: list[str],
    *,
    slotted: bool,
) -> tuple[pa.Table | None, list[datetime | None]]:
    """The ``columns`` of the slots' rows whose dimensions have ``codes``, as one table
    (``None``: no such rows), and (``slotted``) a ``slot`` column: the index of the slot's grain
    start in the list returned with it. Done once over all the slots, not slot by slot (a
    month of hourly slots is 720 of them); many small slots are made one chunk, as Arrow's
    group-by pays per chunk."""
    kept = [(table, slot) for table, slot in loaded if table.num_rows]
    if not kept:
        return None, []
    tables = [table for table, _ in kept]
    same = all(table.schema == tables[0].schema for table in tables)  # measures are narrowed
    promote = "none" if same else "permissive"  # slot by slot: cast to one type if they differ
    whole = pa.concat_tables(tables, promote_options=promote).select(
        [*columns, *(field for field in codes if field not in columns)]
    )
    slots: list[datetime | None] = []
    if slotted:
        indexes = []
        for _, slot in kept:
            if not slots or slots[-1] != slot:
                slots.append(slot)
            indexes.append(len(slots) - 1)
        ends = pa.array(list(accumulate(table.num_rows for table, _ in kept)), pa.int32())
        runs = pa.RunEndEncodedArray.from_arrays(ends, pa.array(indexes, pa.int32()))
        whole = whole.append_column("slot", pc.run_end_decode(runs))
    mask = None
    for field, code in codes.items():
        match = pc.equal(whole[field], code)
        mask = match if mask is None else pc.and_(mask, match)
    if mask is not None:
        whole = whole.filter(mask)
    if not whole.num_rows:
        return None, []
    if whole.num_rows < _SMALL_SLOT_ROWS * len(kept):
        whole = whole.combine_chunks()
    return whole.select([*columns, *(["slot"] if slotted else [])]), slots
