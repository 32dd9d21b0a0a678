"""``spendgate export`` as a user runs it: a real process, a real SQLite store, real files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from spendgate.store import open_store

SPENDGATE = str(Path(sys.executable).with_name("spendgate"))
RANGE = ("--since", "2026-03-10", "--until", "2026-03-13")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPENDGATE, "export", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def test_parquet_export(db: str, tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    result = run("--db", db, *RANGE, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 4 events" in result.stderr
    table = pq.read_table(out)
    assert table.column("cost_usd").to_pylist() == [
        Decimal("0.125"), Decimal("0.125"), Decimal("0.5"), None,
    ]  # fmt: skip
    assert table.column("unpriced").to_pylist() == [False, False, False, True]


def test_csv_and_json_exports_with_a_filter(db: str, tmp_path: Path) -> None:
    out = tmp_path / "beta.csv"
    assert run("--db", db, *RANGE, "--filter", "project=beta", "--out", str(out)).returncode == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert [(r["project"], r["cost_usd"], r["status"]) for r in rows] == [
        ("beta", "0.5", "error"),
        ("beta", "", "ok"),
    ]
    data = tmp_path / "all.data"
    assert run("--db", db, *RANGE, "--format", "json", "--out", str(data)).returncode == 0
    assert [e["cost_usd"] for e in json.loads(data.read_text())] == ["0.125", "0.125", "0.5", None]


def test_a_failed_export_leaves_no_file_behind(db: str, tmp_path: Path) -> None:
    out = tmp_path / "events.csv"
    out.write_text("previous export\n")
    result = run("--db", db, *RANGE, "--filter", "colour=red", "--out", str(out))
    assert result.returncode == 2 and "unknown event filter colour" in result.stderr
    assert out.read_text() == "previous export\n"  # untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".events.csv")] == []


def test_an_export_failing_midway_leaves_no_partial_file(db: str, tmp_path: Path) -> None:
    """The third event's stored JSON is damaged: reading it fails after the export began."""
    store = open_store(db)
    with store.engine.begin() as connection:
        third = connection.execute(text("SELECT event_id FROM events ORDER BY ts")).all()[2][0]
        connection.execute(text("UPDATE events SET tags = '{' WHERE event_id = :id"), {"id": third})
    store.close()
    out = tmp_path / "events.parquet"
    result = run("--db", db, *RANGE, "--out", str(out))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Error: the export failed; no file was written" in result.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".events")] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--out", "events.xlsx"), "cannot tell the format of 'events.xlsx'"),
        (("--out", "no/such/folder/e.csv"), "of --out does not exist"),
        (("--since", "soon", "--out", "e.csv"), "since must be a time such as"),
    ],
)
def test_bad_arguments(db: str, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = subprocess.run(
        [SPENDGATE, "export", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
