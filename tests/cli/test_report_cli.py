"""``spendgate report`` as a user runs it: a real process on a real SQLite store."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SPENDGATE = str(Path(sys.executable).with_name("spendgate"))
RANGE = ("--since", "2026-03-10", "--until", "2026-03-13")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SPENDGATE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_json_report_by_project(db: str) -> None:
    result = run("report", "--db", db, "--by", "project", *RANGE, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [(r["project"], r["cost"], r["requests"]) for r in doc["rows"]] == [
        ("beta", "0.5", 2),
        ("alpha", "0.25", 2),
    ]
    beta = doc["rows"][0]
    assert (beta["errors"], beta["error_cost"], beta["unpriced"]) == (1, "0.5", 1)
    assert doc["rows"][1]["cost_per_1k_tokens"] == "0.1"  # 0.25 * 1000 / 2500


def test_csv_report_by_project_and_model_per_day(db: str) -> None:
    result = run(
        "report", "--db", db, "--by", "project,base_model", "--bucket", "day", *RANGE,
        "--format", "csv", "--order", "bucket",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["project"], r["base_model"], r["bucket"], r["cost"]) for r in rows] == [
        ("alpha", "anthropic.claude-sonnet-4-5", "2026-03-10T00:00:00Z", "0.25"),
        ("beta", "amazon.nova-lite", "2026-03-11T00:00:00Z", "0.5"),
    ]


def test_table_report_shows_totals_and_flags_unpriced_calls(db: str) -> None:
    result = run("report", "--db", db, "--by", "project", *RANGE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    alpha = next(line for line in lines if "alpha" in line)
    assert "$0.25" in alpha and "$0.125 " in alpha  # cost and cost per request
    total = next(line for line in lines if "total" in line)
    assert "$0.75" in total and " 4 " in total
    assert "1 unpriced call(s)" in result.stdout


def test_filters(db: str) -> None:
    result = run("report", "--db", db, *RANGE, "--filter", "project=alpha", "--format", "json")
    (row,) = json.loads(result.stdout)["rows"]
    assert (row["cost"], row["requests"]) == ("0.25", 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "colour"), "Error: unknown group_by field colour"),
        (("--since", "last tuesday"), "Error: since must be a time such as"),
        (("--filter", "project"), "Error: --filter takes FIELD=VALUE"),
        (("--bucket", "year"), "Error: Invalid value for '--bucket'"),
        (("--since", "2026-03-12", "--until", "2026-03-10"), "must be earlier than until"),
    ],
)
def test_bad_arguments_are_one_line_errors(db: str, args: tuple[str, ...], message: str) -> None:
    result = run("report", "--db", db, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
