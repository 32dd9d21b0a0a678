"""The rollup cache's copies on disk, so a restarted gateway starts warm (``store.rollup_cache``).

Warming a month at 10 M events reads ~800 MB of slots through the database driver: over a
minute, during which questions over slots not loaded yet are answered in SQL. A snapshot holds
the copies as they were at shutdown (Arrow IPC files, read back in a second
or two) with the token of each. Nothing read back is trusted beyond its token: a query checks
every slot's token in its own snapshot of the database, as for any copy, and reloads a slot that
changed since; warming does the same, so after a restart only what changed is read from SQL.

A snapshot is a folder ``gen-<time>-<pid>`` in the folder given (one per database: the
gateway names it after the database's URL), written under a temporary name and renamed when
complete, so a reader sees a whole snapshot or none, and two processes saving at once each
write their own. The newest is read; saving removes the older ones. It holds:

- ``manifest.arrow``: a row per slot, least recently used first: its rollup, sheet, bucket,
  token, and where its rows are (file and batches);
- ``values.arrow``: each coded column's dictionary (the values, by code);
- ``slots-<n>.arrow``: the slots' rows (key values as codes, measures as narrowed), one file
  per schema.

Its schema metadata names the format and the rollups' layout (``ROLLUP_SPECS``, their
columns and the id rollups' sheets): a snapshot of another version is ignored. A snapshot
holds what the rollups hold (attribution values and sums: no secrets, no prompt text); its
folders are made readable by their owner only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from spendgate.errors import DataError
from spendgate.store.schema import (
    ID_MEASURES,
    ID_SHEETS,
    ROLLUP_MEASURES,
    ROLLUP_SPECS,
    SPECS,
    rollup_tables,
)

_FORMAT = b"1"
# The rollups, their columns and the id rollups' sheets: a snapshot of another layout is
# ignored.
_TABLES = [(name, [c.name for c in table.columns]) for name, table in rollup_tables.items()]
_SHAPE = repr((ROLLUP_SPECS, _TABLES, ID_SHEETS)).encode()
_LAYOUT = hashlib.sha256(_SHAPE).hexdigest()[:16].encode()
_PREFIX = "gen-"
_MEASURES = frozenset((*ROLLUP_MEASURES, *ID_MEASURES))  # every other column is coded
_MANIFEST = pa.schema(
    [
        ("table", pa.string()),
        ("sheet", pa.string()),
        ("bucket", pa.timestamp("us", tz="UTC")),
        ("token", pa.string()),
        ("file", pa.int32()),
        ("first", pa.int32()),
        ("count", pa.int32()),
    ],
    metadata={b"spendgate-snapshot": _FORMAT, b"layout": _LAYOUT},
)
_VALUES = pa.schema([("column", pa.string()), ("values", pa.large_list(pa.string()))])

SlotKey = tuple[str, str, datetime]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What ``read_snapshot`` found: slots (key, token, rows), least recently used first, and
    the dictionaries their codes index (by column)."""

    slots: list[tuple[SlotKey, str, pa.Table]]
    values: dict[str, pa.Array]
    path: Path


def write_snapshot(
    folder: Path, slots: Sequence[tuple[SlotKey, str, pa.Table]], values: Mapping[str, pa.Array]
) -> Path:
    """Write ``slots`` and ``values`` as a new snapshot in ``folder`` (made if missing), then
    remove older ones. Returns its path. ``OSError`` if it cannot be written (nothing
    partial is left under a snapshot's name)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = folder / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
    scratch.mkdir(mode=0o700)
    try:
        _write(scratch, slots, values)
        final = folder / f"{_PREFIX}{time.time_ns():020d}-{os.getpid()}"
        scratch.rename(final)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    for old in _snapshots(folder)[:-1]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write(
    scratch: Path, slots: Sequence[tuple[SlotKey, str, pa.Table]], values: Mapping[str, pa.Array]
) -> None:
    writers: dict[pa.Schema, tuple[int, pa.ipc.RecordBatchFileWriter]] = {}
    batches: dict[int, int] = {}
    manifest: dict[str, list[object]] = {name: [] for name in _MANIFEST.names}
    try:
        for (table, sheet, bucket), token, rows in slots:
            if rows.schema not in writers:
                number = len(writers)
                sink = pa.ipc.new_file(str(scratch / f"slots-{number}.arrow"), rows.schema)
                writers[rows.schema] = number, sink
                batches[number] = 0
            number, sink = writers[rows.schema]
            chunks = rows.to_batches()
            for batch in chunks:
                sink.write_batch(batch)
            row = (table, sheet, bucket, token, number, batches[number], len(chunks))
            for name, value in zip(_MANIFEST.names, row, strict=True):
                manifest[name].append(value)
            batches[number] += len(chunks)
    finally:
        for _, sink in writers.values():
            sink.close()
    dictionaries = pa.table(
        {
            "column": pa.array(list(values), pa.string()),
            "values": _lists(list(values.values())),
        },
        schema=_VALUES,
    )
    _write_table(scratch / "values.arrow", dictionaries)
    _write_table(scratch / "manifest.arrow", pa.table(manifest, schema=_MANIFEST))


def _lists(arrays: list[pa.Array]) -> pa.Array:
    """``arrays`` (of strings) as one list array, an item each."""
    offsets = pa.array([0, *accumulate(len(a) for a in arrays)], pa.int64())
    flat = pa.concat_arrays([pa.array([], pa.string()), *arrays])
    return pa.LargeListArray.from_arrays(offsets, flat)


def _write_table(path: Path, table: pa.Table) -> None:
    with pa.ipc.new_file(str(path), table.schema) as sink:
        sink.write_table(table)


def _snapshots(folder: Path) -> list[Path]:
    """The complete snapshots in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(_PREFIX) and p.is_dir())


def read_snapshot(folder: Path) -> Snapshot | None:
    """The newest snapshot in ``folder`` (``None``: none there).
    ``DataError`` if it cannot be read whole, or is of another format or layout."""
    found = _snapshots(folder)
    if not found:
        return None
    path = found[-1]
    try:
        manifest = _read_table(path / "manifest.arrow")
        metadata = manifest.schema.metadata or {}
        if metadata.get(b"spendgate-snapshot") != _FORMAT or metadata.get(b"layout") != _LAYOUT:
            raise DataError(f"{path} is of another version of spendgate: not read")
        if manifest.schema.remove_metadata() != _MANIFEST.remove_metadata():
            raise DataError(f"{path}: its manifest is not laid out as expected")
        values = _read_table(path / "values.arrow")
        dictionaries = {
            column: values["values"][i].values
            for i, column in enumerate(values["column"].to_pylist())
        }
        for column, known in dictionaries.items():
            if known.null_count or pc.count_distinct(known).as_py() != len(known):
                raise DataError(f"{path}: the values of {column} repeat or are missing")
        return Snapshot(_slots(path, manifest, dictionaries), dictionaries, path)
    except (OSError, pa.ArrowException, KeyError, IndexError, TypeError, ValueError) as exc:
        raise DataError(f"{path} could not be read: {exc}") from exc


def _slots(
    path: Path, manifest: pa.Table, dictionaries: dict[str, pa.Array]
) -> list[tuple[SlotKey, str, pa.Table]]:
    files: dict[int, tuple[pa.Schema, list[pa.RecordBatch]]] = {}
    slots = []
    for table, sheet, bucket, token, number, first, count in zip(
        *(manifest[name].to_pylist() for name in _MANIFEST.names), strict=True
    ):
        if table not in SPECS or not isinstance(token, str) or bucket is None:
            raise ValueError(f"a slot of {table!r} at {bucket} is not one of a rollup")
        if number not in files:
            rows = _checked(path / f"slots-{number}.arrow", dictionaries)
            files[number] = rows.schema, rows.to_batches()
        schema, batches = files[number]
        if not 0 <= first <= first + count <= len(batches):
            raise IndexError(f"slots-{number}.arrow has no batches {first}..{first + count}")
        rows = pa.Table.from_batches(batches[first : first + count], schema)
        slots.append(((table, sheet, bucket), token, rows))
    return slots


def _checked(path: Path, dictionaries: dict[str, pa.Array]) -> pa.Table:
    """A slots file's rows, each batch in memory of its own, once its columns are checked
    (all at once: a file holds hundreds of slots): all of integers; a coded column's (any but
    a measure's) codes ``int32`` and within its dictionary."""
    rows = _read_table(path)
    for field in rows.schema:
        if not pa.types.is_integer(field.type):
            raise DataError(f"{path.name}: {field.name} is of {field.type}, not of integers")
        if field.name in _MEASURES:
            continue
        known = dictionaries.get(field.name)
        if known is None:
            raise DataError(f"{path.name}: no values for the codes of {field.name}")
        bounds = pc.min_max(rows[field.name]).as_py()
        if field.type != pa.int32() or (
            bounds["min"] is not None and not 0 <= bounds["min"] <= bounds["max"] < len(known)
        ):
            raise DataError(f"{path.name}: a code of {field.name} is out of its values' range")
    return rows


def _read_table(path: Path) -> pa.Table:
    return pa.ipc.open_file(_opened(path)).read_all()


def _opened(path: Path) -> pa.NativeFile:
    """``path`` opened to read: each batch is read into memory of its own (memory-mapped,
    a file cut short while read would crash the process, and the memory a slot holds would
    not be its own)."""
    return pa.OSFile(str(path), "r")
