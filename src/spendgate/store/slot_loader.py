"""How the rollup cache (``store.rollup_cache``) gets its slots: read from the database, a
run of consecutive slots in one statement (``rollup_slots.load_run``), narrowed and coded,
then held; a projected slot summed from its whole slot when that is in memory; and a saved
snapshot read back (``rollup_snapshot``).

The loader shares the cache's lock, held slots, value codes and counts, and holds the lock
only around them: reading and narrowing run outside it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Engine

from spendgate.errors import DataError
from spendgate.store.engine import snapshot
from spendgate.store.held_slots import HeldSlots, Key, Slot, newest_within
from spendgate.store.rollup_slots import PROJECTED, load_run, slot_marks
from spendgate.store.rollup_snapshot import read_snapshot
from spendgate.store.schema import ROLLUP_MEASURES, SPECS
from spendgate.store.slot_plan import SlotRange, load_runs
from spendgate.store.slot_sums import measures_narrowed, sum_by
from spendgate.store.value_codes import ValueCodes, recoded

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CacheStats:
    """Slots answered from memory (``hits``) and read from the database (``loads``); parts
    whose sums were kept from an earlier question (``reused``)."""

    hits: int = 0
    loads: int = 0
    reused: int = 0


@dataclass(frozen=True, slots=True)
class SlotLoader:
    """Loads slots into ``slots`` (keys coded by ``codes``, counted in ``stats``), holding
    ``lock`` around them; ``engine`` for ``load_range`` (the worker's loads)."""

    lock: threading.Lock
    slots: HeldSlots
    codes: ValueCodes
    stats: CacheStats
    engine: Engine | None

    def load_range(self, request: SlotRange) -> None:
        """Load every slot ``request`` names that is not in memory, with the tokens of the
        same snapshot: a run of consecutive slots to read in one statement."""
        assert self.engine is not None
        table, sheet = request.table, request.sheet
        with snapshot(self.engine) as connection:  # tokens and rows of one snapshot
            marks = slot_marks(connection, table, request.start, request.end, None)
            held = partial(self._is_held, table, sheet)
            for run in load_runs(marks, held, SPECS[table].grain):
                self._load(connection, table, sheet, run)

    def get(self, connection: Connection, key: Key, token: str) -> pa.Table:
        """The slot ``key`` as of ``token``: held, made from its whole slot, or read in
        ``connection``."""
        held = self._held(key, token)
        if held is not None:
            return held
        table, sheet, bucket = key
        return self._load(connection, table, sheet, [(bucket, token)])[0]

    def restore(self, folder: Path, room: float) -> None:
        """Hold the slots of the newest snapshot in ``folder``, the most recently used that
        fit in ``room`` bytes, their codes merged into ``codes``; a slot loaded meanwhile is
        kept. A snapshot that cannot be read is logged and ignored."""
        try:
            snapshot = read_snapshot(folder)
            if snapshot is None:
                return
            slots = newest_within(snapshot.slots, room)
            with self.lock:  # codes, once given, never change: recoding needs no lock
                remaps = {c: self.codes.merged(c, v) for c, v in snapshot.values.items()}
            if any(remap is not None for remap in remaps.values()):
                slots = [(k, Slot.of(s.token, recoded(s.table, remaps))) for k, s in slots]
        except (DataError, OSError, pa.ArrowException) as exc:
            log.warning("rollup cache: could not read the snapshot in %s: %s", folder, exc)
            return
        with self.lock:
            self.slots.put_oldest(slots)
        log.info("rollup cache: %d slots read back from %s", len(slots), snapshot.path)

    def _is_held(self, table: str, sheet: str, bucket: datetime, token: str) -> bool:
        return self._held((table, sheet, bucket), token) is not None

    def _held(self, key: Key, token: str) -> pa.Table | None:
        """The copy of ``key`` if its token is ``token``; or, for a projected slot whose whole
        slot is held with it, the projection (summed, then held): else ``None``."""
        with self.lock:
            held = self.slots.used(key, token)
            if held is not None:
                self.stats.hits += 1
                return held
        rows = self._from_whole(key, token)
        return None if rows is None else self._hold(key, token, rows)

    def _load(
        self, connection: Connection, table: str, sheet: str, run: list[tuple[datetime, str]]
    ) -> list[pa.Table]:
        """Read the consecutive slots ``run`` names (bucket, token) and hold them: narrowed
        and coded together (an Arrow call per column costs more than a small slot's rows),
        then each slot copied out into buffers of its own (a slice would hold the whole run
        in memory, and be counted whole)."""
        rows, spans = load_run(connection, table, sheet, [bucket for bucket, _ in run])
        rows = measures_narrowed(rows)
        with self.lock:
            rows = self.codes.encoded(rows)
        tables = [_copied_out(rows, *spans.get(bucket, (0, 0))) for bucket, _ in run]
        with self.lock:
            for (bucket, token), slot_rows in zip(run, tables, strict=True):
                self.slots.put((table, sheet, bucket), Slot.of(token, slot_rows))
                self.stats.loads += 1
        return tables

    def _hold(self, key: Key, token: str, rows: pa.Table) -> pa.Table:
        """Hold a slot's ``rows`` (measures narrowed, keys coded) as read under ``token``."""
        rows = measures_narrowed(rows)
        with self.lock:
            loaded = self.codes.encoded(rows)
            self.slots.put(key, Slot.of(token, loaded))
            self.stats.loads += 1
        return loaded

    def _from_whole(self, key: Key, token: str) -> pa.Table | None:
        """A projected slot summed from its whole slot, if that is in memory with ``token``
        (laid out as ``load_run``'s: the fields, then the measures); else ``None``."""
        table, sheet, bucket = key
        if not sheet.startswith(PROJECTED):
            return None
        with self.lock:
            whole = self.slots.peek((table, "", bucket))
        if whole is None or whole.token != token:
            return None
        fields = [name for name in sheet.removeprefix(PROJECTED).split(",") if name]
        return sum_by(whole.table, fields, ROLLUP_MEASURES)


def _copied_out(rows: pa.Table, start: int, length: int) -> pa.Table:
    """``rows[start:start + length]`` in buffers of its own."""
    if length == rows.num_rows:
        return rows
    return rows.take(pa.array(np.arange(start, start + length, dtype=np.int32)))
