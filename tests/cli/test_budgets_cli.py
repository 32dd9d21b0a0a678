"""``spendgate budgets`` as a user runs it: the real entry point (``spendgate.cli.main.main``,
in process, so errors go through the same one-line path) on a real database file, plus one run
of the installed command."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis

from spendgate.budgets.model import Action, Budget, Metric, Window
from spendgate.cli.main import main
from spendgate.events import Event
from spendgate.store import open_store
from spendgate.store.budgets import delete_budget, get_budget, list_budgets

from helpers import require_service

SPENDGATE = str(Path(sys.executable).with_name("spendgate"))


class Cli:
    """Runs ``spendgate budgets ...`` through ``main()``; returns (exit code, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.monkeypatch.setattr(sys, "argv", ["spendgate", "budgets", *args])
        code: Any = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code
        out, err = self.capsys.readouterr()
        return int(code or 0), out, err

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, err
        return out

    def fails(self, *args: str, code: int = 2) -> str:
        """The one line a failing command prints on stderr."""
        got, out, err = self(*args)
        assert got == code, (out, err)
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("Error: "), err
        assert "Traceback" not in err
        return err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    monkeypatch.setenv("SPENDGATE_HOME", str(tmp_path / "home"))
    for name in [n for n in os.environ if n.startswith("SPENDGATE_GATEWAY_")]:
        monkeypatch.delenv(name)
    return Cli(capsys, monkeypatch)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/budgets.db"


MINIMAL = ("--name", "n", "--metric", "cost_usd", "--window", "day", "--limit", "5")
SALES = (
    *("--name", "sales on anthropic", "--scope", "department=sales,model=anthropic.*"),
    *("--metric", "cost_usd", "--window", "calendar_month", "--limit", "1500.50"),
    *("--action", "downgrade", "--downgrade-to", "amazon.nova-lite-v1:0"),
    *("--thresholds", "50,90", "--timezone", "Europe/Paris"),
)


def stored(db: str) -> list[Budget]:
    with open_store(db) as store:
        return list_budgets(store)


def created_id(cli: Cli, db: str, *args: str) -> str:
    doc = json.loads(cli.ok("create", "--db", db, "--json", *args))
    return str(doc["id"])


# -- create ---------------------------------------------------------------------------------------


def test_create_stores_every_option(cli: Cli, db: str) -> None:
    out = cli.ok("create", "--db", db, *SALES)
    (budget,) = stored(db)
    assert out == f"Created budget {budget.id} (sales on anthropic).\n"
    assert budget.created_at is not None
    assert budget == Budget(
        id=budget.id,
        name="sales on anthropic",
        scope={"department": "sales", "model": "anthropic.*"},
        metric=Metric.COST_USD,
        window=Window.CALENDAR_MONTH,
        limit=Decimal("1500.50"),
        action=Action.DOWNGRADE,
        downgrade_to="amazon.nova-lite-v1:0",
        thresholds=(50, 90),
        timezone="Europe/Paris",
        enabled=True,
        created_at=budget.created_at,
        updated_at=budget.created_at,
    )
    assert datetime.now(UTC) - budget.created_at < timedelta(minutes=1)


def test_create_json_and_the_defaults(cli: Cli, db: str) -> None:
    args = ("--name", "alice rpm", "--scope", "user=alice,key=key_1", "--metric", "requests")
    doc = json.loads(
        cli.ok("create", "--db", db, "--json", *args, "--window", "minute", "--limit", "60")
    )
    assert doc["scope"] == {"user_id": "alice", "key_id": "key_1"}
    assert (doc["action"], doc["downgrade_to"], doc["timezone"]) == ("block", None, "UTC")
    assert doc["thresholds"] == [50, 80, 100] and doc["enabled"] is True
    assert doc["rate_limit"] is True and doc["limit"] == "60"
    assert doc["created_at"].endswith("Z")
    assert [b.id for b in stored(db)] == [doc["id"]]


def test_create_disabled_with_no_alerts(cli: Cli, db: str) -> None:
    budget_id = created_id(
        cli,
        db,
        *("--name", "n", "--metric", "input_tokens", "--window", "day"),
        *("--limit", "1000000", "--thresholds", "", "--disabled"),
    )
    with open_store(db) as store:
        budget = get_budget(store, budget_id)
    assert budget is not None and budget.enabled is False and budget.thresholds == ()
    assert budget.scope == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--metric", "cost_usd", "--window", "day", "--limit", "5"), "Missing option '--name'"),
        (("--name", "n", "--window", "day", "--limit", "5"), "a budget needs a metric"),
        (("--name", "n", "--metric", "requests", "--limit", "5"), "a budget needs a window"),
        (
            ("--name", "n", "--metric", "dollars", "--window", "day", "--limit", "5"),
            "'dollars' is not one of 'cost_usd', 'input_tokens'",
        ),
        (
            ("--name", "n", "--metric", "cost_usd", "--window", "week", "--limit", "5"),
            "'week' is not one of 'minute', 'hour', 'day', 'calendar_day'",
        ),
        (
            ("--name", "n", "--metric", "cost_usd", "--window", "day", "--limit", "ten"),
            "budget limit 'ten' is not a number",
        ),
        (
            ("--name", "n", "--metric", "requests", "--window", "day", "--limit", "1.5"),
            "a token or request limit must be a whole number",
        ),
        (
            (*MINIMAL, "--scope", "team"),
            "scope part 'team' must look like field=value",
        ),
        (
            (*MINIMAL, "--scope", "planet=mars"),
            "unknown scope field 'planet'",
        ),
        (
            (*MINIMAL, "--action", "downgrade"),
            "downgrade_to goes with action downgrade",
        ),
        (
            (*MINIMAL, "--timezone", "Mars/Olympus"),
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            (*MINIMAL, "--thresholds", "half"),
            "alert thresholds 'half' must be whole percentages",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    cli: Cli, db: str, args: tuple[str, ...], message: str
) -> None:
    assert message in cli.fails("create", "--db", db, *args)
    assert not Path(db.removeprefix("sqlite:///")).exists()  # refused before the store opens


def test_a_taken_name_is_refused(cli: Cli, db: str) -> None:
    first = created_id(cli, db, *SALES)
    err = cli.fails("create", "--db", db, *SALES)
    assert f"a budget named 'sales on anthropic' already exists ({first})" in err
    assert len(stored(db)) == 1


# -- list and show --------------------------------------------------------------------------------


def test_list_prints_a_table_or_json(cli: Cli, db: str) -> None:
    code, out, err = cli("list", "--db", db)
    assert (code, out) == (0, "") and "No budgets yet" in err
    sales = created_id(cli, db, *SALES)
    rpm = created_id(
        cli,
        db,
        *("--name", "alice rpm", "--scope", "user=alice", "--metric", "requests"),
        *("--window", "minute", "--limit", "60", "--thresholds", "", "--disabled"),
    )
    lines = cli.ok("list", "--db", db).splitlines()
    assert lines[0].split() == [
        *("ID", "NAME", "SCOPE", "METRIC", "WINDOW", "LIMIT", "ACTION", "ALERTS", "AT", "ENABLED")
    ]
    assert lines[1].startswith(sales) and lines[2].startswith(rpm)
    for text in ("department=sales, model=anthropic.*", "calendar_month Europe/Paris"):
        assert text in lines[1]
    for text in ("$1500.50", "downgrade to amazon.nova-lite-v1:0", "50%,90%", "yes"):
        assert text in lines[1]
    for text in ("user_id=alice", "60 requests", "block", " - ", " no"):
        assert text in lines[2]
    docs = json.loads(cli.ok("list", "--db", db, "--json"))
    assert [d["id"] for d in docs] == [sales, rpm]
    assert docs[0]["limit"] == "1500.50" and docs[1]["enabled"] is False


def test_show_prints_one_budget(cli: Cli, db: str) -> None:
    budget_id = created_id(cli, db, *SALES)
    out = cli.ok("show", budget_id, "--db", db)
    fields = dict(line.split(":", 1) for line in out.splitlines())
    assert fields["id"].strip() == budget_id
    assert fields["scope"].strip() == "department=sales,model=anthropic.*"
    assert fields["limit"].strip() == "1500.50"
    assert fields["downgrade_to"].strip() == "amazon.nova-lite-v1:0"
    doc = json.loads(cli.ok("show", budget_id, "--db", db, "--json"))
    assert doc == json.loads(cli.ok("list", "--db", db, "--json"))[0]


# -- update and delete ----------------------------------------------------------------------------


def test_update_changes_only_what_it_is_given(cli: Cli, db: str) -> None:
    budget_id = created_id(cli, db, *SALES)
    (before,) = stored(db)
    out = cli.ok("update", budget_id, "--db", db, "--limit", "2000")
    assert out == f"Updated budget {budget_id} (sales on anthropic).\n"
    (after,) = stored(db)
    assert after.limit == Decimal(2000)
    assert after.created_at == before.created_at
    assert after.updated_at is not None and before.updated_at is not None
    assert after.updated_at > before.updated_at
    unchanged = ("name", "scope", "metric", "window", "action", "downgrade_to", "thresholds")
    assert all(getattr(after, f) == getattr(before, f) for f in unchanged)


def test_update_every_option(cli: Cli, db: str) -> None:
    budget_id = created_id(cli, db, *SALES)
    doc = json.loads(
        cli.ok(
            "update",
            budget_id,
            "--db",
            db,
            "--json",
            *("--name", "backend tokens", "--scope", "project=backend", "--metric", "total_tokens"),
            *("--window", "hour", "--limit", "50000", "--action", "block", "--thresholds", "80"),
            *("--timezone", "UTC", "--disabled"),
        )
    )
    assert doc["name"] == "backend tokens" and doc["scope"] == {"project": "backend"}
    assert (doc["metric"], doc["window"], doc["limit"]) == ("total_tokens", "hour", "50000")
    assert (doc["action"], doc["downgrade_to"]) == ("block", None)  # the target goes with it
    assert (doc["thresholds"], doc["timezone"], doc["enabled"]) == ([80], "UTC", False)
    doc = json.loads(cli.ok("update", budget_id, "--db", db, "--json", "--enabled", "--scope", ""))
    assert doc["enabled"] is True and doc["scope"] == {}


def test_bad_updates_exit_2_and_change_nothing(cli: Cli, db: str) -> None:
    budget_id = created_id(cli, db, *SALES)
    other = created_id(
        cli, db, "--name", "other", "--metric", "requests", "--window", "day", "--limit", "10"
    )
    before = stored(db)
    assert "nothing to change" in cli.fails("update", budget_id, "--db", db)
    assert "must be a positive number" in cli.fails("update", budget_id, "--db", db, "--limit", "0")
    assert "whole number" in cli.fails("update", other, "--db", db, "--limit", "2.5")
    assert "already exists" in cli.fails(
        "update", other, "--db", db, "--name", "sales on anthropic"
    )
    err = cli.fails("update", budget_id, "--db", db, "--downgrade-to", "")
    assert "downgrade_to goes with action downgrade" in err
    assert stored(db) == before


def test_delete(cli: Cli, db: str) -> None:
    budget_id = created_id(cli, db, *SALES)
    assert cli.ok("delete", budget_id, "--db", db) == (
        f"Deleted budget {budget_id} (sales on anthropic).\n"
    )
    assert stored(db) == []
    created_id(cli, db, *SALES)  # the name is free again


@pytest.mark.parametrize(
    "args", [("show", "bgt_nope"), ("update", "bgt_nope", "--limit", "5"), ("delete", "bgt_nope")]
)
def test_an_unknown_id_exits_2_naming_it(cli: Cli, db: str, args: tuple[str, ...]) -> None:
    err = cli.fails(*args, "--db", db)
    assert "no budget with id 'bgt_nope'; 'spendgate budgets list' shows them" in err


# -- where the store is ---------------------------------------------------------------------------


def test_the_store_comes_from_the_config_file_or_the_default(
    cli: Cli, tmp_path: Path, db: str
) -> None:
    config = tmp_path / "spendgate.toml"
    config.write_text(f'[gateway]\ndb = "{db}"\n', encoding="utf-8")
    budget_id = created_id(cli, f"{db}", *SALES)
    assert budget_id in cli.ok("list", "--config", str(config))
    # no --db, no config: the SQLite file spendgate serve uses, in $SPENDGATE_HOME
    assert cli("list")[0] == 0
    assert (tmp_path / "home" / "spendgate.db").is_file()


def test_an_unreachable_database_is_one_line_without_the_password(cli: Cli) -> None:
    err = cli.fails("list", "--db", "postgresql://bob:s3cret@127.0.0.1:1/x", code=1)
    assert "cannot open the store" in err and "s3cret" not in err


@pytest.mark.postgres
def test_on_postgresql(cli: Cli, pg_url: str) -> None:
    with open_store(pg_url) as store:
        for budget in list_budgets(store):
            delete_budget(store, budget.id)
    budget_id = created_id(cli, pg_url, *SALES)
    cli.ok("update", budget_id, "--db", pg_url, "--limit", "7")
    assert [b.limit for b in stored(pg_url)] == [Decimal(7)]
    assert "already exists" in cli.fails("create", "--db", pg_url, *SALES)
    cli.ok("delete", budget_id, "--db", pg_url)
    assert stored(pg_url) == []


def test_the_installed_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/installed.db"
    env = {**os.environ, "SPENDGATE_HOME": str(tmp_path)}
    made = subprocess.run(
        [SPENDGATE, "budgets", "create", "--db", db, *SALES],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert made.returncode == 0 and made.stdout.startswith("Created budget bgt_"), made.stderr
    bad = subprocess.run(
        [SPENDGATE, "budgets", "create", "--db", db, *SALES],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("Error: a budget named")
    assert bad.stderr.count("\n") == 1


# -- status ---------------------------------------------------------------------------------------


def store_events(db: str, *events: Event) -> None:
    with open_store(db) as store:
        store.insert_events(list(events))


def metered(hours_ago: float, cost: str, **attribution: str) -> Event:
    return Event(
        ts=datetime.now(UTC) - timedelta(hours=hours_ago),
        operation="Converse",
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        base_model="anthropic.claude-3-haiku-20240307-v1:0",
        provider="anthropic",
        input_tokens=1000,
        output_tokens=200,
        cost_usd=Decimal(cost),
        **attribution,  # type: ignore[arg-type]
    )


@pytest.fixture
def spent_db(cli: Cli, db: str) -> tuple[str, str, str]:
    """Two budgets over the last day, and events in and out of their scope and window."""
    dollars = created_id(
        cli,
        db,
        *("--name", "sales daily", "--scope", "department=sales", "--metric"),
        *("cost_usd", "--window", "day", "--limit", "10"),
    )
    calls = created_id(
        cli,
        db,
        *("--name", "sales calls", "--scope", "department=sales,model=anthropic.*"),
        *("--metric", "requests", "--window", "day", "--limit", "100"),
    )
    store_events(
        db,
        metered(1, "1.25", department="sales"),
        metered(2, "0.75", department="sales"),
        metered(1, "5.00", department="eng"),  # another scope
        metered(30, "3.00", department="sales"),  # before the window
    )
    return db, dollars, calls


def test_status_reads_spend_from_the_stored_events(
    cli: Cli, spent_db: tuple[str, str, str]
) -> None:
    db, dollars, calls = spent_db
    docs = {d["budget"]["id"]: d for d in json.loads(cli.ok("status", "--db", db, "--json"))}
    assert Decimal(docs[dollars]["spent"]) == Decimal("2.00")
    assert Decimal(docs[dollars]["remaining"]) == Decimal("8.00")
    assert Decimal(docs[dollars]["reserved"]) == 0
    assert docs[dollars]["percent"] == "20.0"
    assert Decimal(docs[calls]["spent"]) == 2
    resets = datetime.fromisoformat(docs[dollars]["resets_at"])
    assert datetime.now(UTC) < resets <= datetime.now(UTC) + timedelta(days=1)
    assert {"window_start", "projected", "thresholds_crossed", "as_of"} <= set(docs[dollars])


def test_status_of_one_budget_and_as_a_table(cli: Cli, spent_db: tuple[str, str, str]) -> None:
    db, dollars, calls = spent_db
    doc = json.loads(cli.ok("status", dollars, "--db", db, "--json"))
    assert doc["budget"]["id"] == dollars and Decimal(doc["spent"]) == Decimal("2.00")
    lines = cli.ok("status", "--db", db).splitlines()
    assert lines[0].split()[:5] == ["ID", "NAME", "SPENT", "RESERVED", "REMAINING"]
    row = next(line for line in lines if line.startswith(dollars))
    for text in ("sales daily", "$2.00", "$8.00", "$10.00", "20.0%"):
        assert text in row
    row = next(line for line in lines if line.startswith(calls))
    assert "2 requests" in row and "98 requests" in row
    assert "no budget with id 'bgt_nope'" in cli.fails("status", "bgt_nope", "--db", db)


def test_status_includes_the_config_files_budgets(cli: Cli, tmp_path: Path, db: str) -> None:
    config = tmp_path / "spendgate.toml"
    config.write_text(
        f'[gateway]\ndb = "{db}"\n\n[[gateway.budgets]]\nname = "hourly calls"\n'
        'metric = "requests"\nwindow = "hour"\nlimit = 10\nscope = "department=sales"\n',
        encoding="utf-8",
    )
    store_events(db, metered(0.1, "0.01", department="sales"))
    docs = json.loads(cli.ok("status", "--config", str(config), "--json"))
    (doc,) = docs
    assert doc["budget"]["name"] == "hourly calls" and doc["budget"]["rate_limit"] is True
    assert Decimal(doc["spent"]) == 1


@pytest.mark.redis
def test_status_from_the_counters_in_redis(
    cli: Cli, spent_db: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"sgtest-{secrets.token_hex(4)}"
    monkeypatch.setenv("SPENDGATE_GATEWAY_REDIS_PREFIX", prefix)
    db, dollars, _ = spent_db
    url = "redis://127.0.0.1:6379/0"
    try:
        doc = json.loads(cli.ok("status", dollars, "--db", db, "--redis", url, "--json"))
        assert Decimal(doc["spent"]) == Decimal("2.00")  # seeded from the events
        client = redis.Redis.from_url(url)
        assert client.keys(f"{prefix}*"), "the counter lives in Redis"
        store_events(db, metered(0.5, "4.00", department="sales"))
        doc = json.loads(cli.ok("status", dollars, "--db", db, "--redis", url, "--json"))
        assert Decimal(doc["spent"]) == Decimal("2.00")  # Redis keeps the count, not the events
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        client.close()


def test_an_unreachable_redis_is_one_line(cli: Cli, spent_db: tuple[str, str, str]) -> None:
    db = spent_db[0]
    err = cli.fails("status", "--db", db, "--redis", "redis://:s3cret@127.0.0.1:1/0", code=1)
    assert "Redis at 127.0.0.1:1/0 did not answer" in err and "s3cret" not in err
