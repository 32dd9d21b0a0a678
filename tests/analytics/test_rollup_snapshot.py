"""The rollup cache's copies saved and read back (``store.rollup_snapshot``), on SQLite and
PostgreSQL: a restarted cache answers from them at once, exactly as SQL would, reloads only
the slots changed since, and ignores a snapshot it cannot trust."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_rollup_cache import NOW, WIDE, check, late_events, stored_and_read
from test_spend_windows import T0

from spendgate.analytics import SpendQuery
from spendgate.store import Store, open_store
from spendgate.store.rollups import PAIRS
from spendgate.store.schema import rollup_tables

DAYS = 4


def questions() -> list[SpendQuery]:
    days = SpendQuery.of(NOW - timedelta(days=DAYS), NOW, group_by=WIDE)
    return [
        days,
        replace(days, group_by=("agent",)),
        replace(days, group_by=PAIRS.pairs[0]),
        replace(days, group_by=("department",), bucket="hour"),
        replace(days, group_by=("project",), sessions=True),
    ]


def warmed_and_saved(reader: Store, folder: Path) -> Path:
    reader.rollup_cache.warm(NOW, DAYS)
    reader.rollup_cache.wait()
    saved = reader.rollup_cache.save(folder)
    assert saved is not None and saved.parent == folder
    return saved


def restarted(db_url: str, folder: Path, **options: int) -> Store:
    """A new store over the database (a restarted gateway): its cache read back from
    ``folder``, then warmed."""
    again = open_store(db_url, **options)
    again.rollup_cache.restore(folder)
    again.rollup_cache.warm(NOW, DAYS)
    again.rollup_cache.wait()
    return again


def test_a_restarted_cache_answers_from_its_copies_read_back(
    db_url: str, store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "copies"
    with stored_and_read(db_url, store) as (reader, made):
        first = warmed_and_saved(reader, folder)
        (folder / ".tmp-1-unfinished").mkdir()  # another process's, still being written
        saved = reader.rollup_cache.save(folder)  # replaces the first
        slots, size = reader.rollup_cache.slot_count, reader.rollup_cache.size_bytes
    assert saved is not None and not first.exists()
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-1-unfinished", saved.name]
    again = restarted(db_url, folder)
    try:
        cache = again.rollup_cache
        assert cache.stats.loads == 0  # nothing changed: warming loaded nothing from SQL
        assert cache.slot_count == slots
        assert 0.8 * size < cache.size_bytes <= size  # (written without empty null bitmaps)
        assert cache.tables() == set(rollup_tables)
        for query in questions():
            check(again, made, query)
        assert cache.stats.loads == 0 and cache.stats.hits > 0
    finally:
        again.close()
    with open_store(db_url, cache_bytes=0) as off:
        assert off.rollup_cache.save(tmp_path / "off") is None  # nothing held, nothing written
    assert not (tmp_path / "off").exists()


def test_slots_changed_since_the_snapshot_are_reloaded(
    db_url: str, store: Store, tmp_path: Path
) -> None:
    with stored_and_read(db_url, store) as (reader, made):
        warmed_and_saved(reader, tmp_path)
        slots = reader.rollup_cache.slot_count
    late = late_events(5, day=8)  # within the warm days: their slots get new tokens
    store.insert_events(late)
    store.fold()
    made += late
    again = restarted(db_url, tmp_path)
    try:
        loads = again.rollup_cache.stats.loads
        assert 0 < loads < slots / 4  # only the changed slots came from SQL
        for query in questions():
            check(again, made, query)
    finally:
        again.close()


def test_read_back_into_values_coded_meanwhile(db_url: str, store: Store, tmp_path: Path) -> None:
    """Values a question coded before the snapshot was read back keep their codes; the
    snapshot's codes are turned into the cache's."""
    with stored_and_read(db_url, store) as (reader, made):
        warmed_and_saved(reader, tmp_path)
    again = open_store(db_url)
    try:
        cache = again.rollup_cache
        for column in ("department", "project", "value"):
            cache.encode(column, pa.array(["zz-first", "dept-1", "proj-2", "late-dept"]))
        cache.restore(tmp_path)
        cache.warm(NOW, DAYS)
        cache.wait()
        assert cache.stats.loads == 0
        for query in questions():
            check(again, made, query)
    finally:
        again.close()


def test_a_smaller_cache_reads_back_the_most_recently_used(
    db_url: str, store: Store, tmp_path: Path
) -> None:
    with stored_and_read(db_url, store) as (reader, made):
        warmed_and_saved(reader, tmp_path)
        old = SpendQuery.of(T0, T0 + timedelta(days=2), group_by=("agent",))
        check(reader, made, old)  # loads the first days' facet slots: used last
        reader.rollup_cache.wait()
        reader.rollup_cache.save(tmp_path)
    small = open_store(db_url, cache_bytes=80_000)
    try:
        small.rollup_cache.restore(tmp_path)
        small.rollup_cache.wait()
        assert 0 < small.rollup_cache.size_bytes <= 60_000  # up to WARM_SHARE
        loads = small.rollup_cache.stats.loads
        check(small, made, old)
        assert small.rollup_cache.stats.loads == loads  # its slots were read back
    finally:
        small.close()


def damage(snapshot: Path, how: str) -> None:
    if how == "truncated":
        slots = max(snapshot.glob("slots-*.arrow"), key=lambda p: p.stat().st_size)
        slots.write_bytes(slots.read_bytes()[: slots.stat().st_size // 2])
    elif how == "missing":
        (snapshot / "values.arrow").unlink()
    elif how == "another version":  # the manifest of another rollup layout
        path = snapshot / "manifest.arrow"
        manifest = pa.ipc.open_file(pa.OSFile(str(path), "r")).read_all()
        metadata = {**(manifest.schema.metadata or {}), b"layout": b"0123456789abcdef"}
        rewritten = manifest.replace_schema_metadata(metadata)
        with pa.ipc.new_file(str(path), rewritten.schema) as sink:
            sink.write_table(rewritten)
    elif how in ("codes out of range", "values repeated", "values dropped"):  # not the slots'
        path = snapshot / "values.arrow"
        values = pa.ipc.open_file(pa.OSFile(str(path), "r")).read_all()
        if how == "values dropped":  # a coded column's dictionary is not there
            values = values.filter(pc.not_equal(values["column"], "department"))
        lists = values["values"].to_pylist()
        if how == "codes out of range":
            lists = [[] for _ in lists]
        elif how == "values repeated":
            lists = [[*v, *v] for v in lists]
        cut = values.set_column(1, "values", pa.array(lists, values.schema.field("values").type))
        with pa.ipc.new_file(str(path), cut.schema) as sink:
            sink.write_table(cut)


def test_a_snapshot_that_cannot_be_trusted_is_ignored(
    db_url: str, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with stored_and_read(db_url, store) as (reader, made):
        saved = warmed_and_saved(reader, tmp_path / "saved")
    caplog.set_level(logging.INFO, logger="spendgate.store.rollup_cache")
    hows = ("truncated", "missing", "another version", "codes out of range", "values repeated")
    for how in (*hows, "values dropped"):
        folder = tmp_path / how
        damage(Path(shutil.copytree(saved, folder / saved.name)), how)
        caplog.clear()
        again = open_store(db_url)
        try:
            again.rollup_cache.restore(folder)
            again.rollup_cache.wait()
            assert again.rollup_cache.slot_count == 0, how
            assert "could not read the snapshot" in caplog.text, how
            check(again, made, questions()[0])
        finally:
            again.close()
