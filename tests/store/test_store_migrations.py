"""The migrations build exactly the schema the code declares, on both engines."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from spendgate.events import Event
from spendgate.store import Store, migrate
from spendgate.store.engine import BEGIN_MODE, make_engine, parse_url
from spendgate.store.rollups import rebuild
from spendgate.store.schema import ROLLUP_SPECS, metadata, rollup_tables, spend_sealed

from helpers import marked_slots


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_migrated_schema_matches_the_metadata(store: Store) -> None:
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    assert differences(store.engine) == []


def test_down_to_nothing_and_back_up(store: Store) -> None:
    migrate.downgrade(store.engine, "base")
    tables = set(inspect(store.engine).get_table_names())
    assert tables <= {"alembic_version"}
    assert migrate.current_revision(store.engine) is None
    migrate.upgrade(store.engine)
    assert differences(store.engine) == []


def test_replicas_starting_together_migrate_once(db_url: str, store: Store) -> None:
    migrate.downgrade(store.engine, "base")
    engines = [make_engine(parse_url(db_url)) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            for done in [pool.submit(migrate.upgrade, engine) for engine in engines]:
                done.result()  # re-raises a migration's error here
    finally:
        for engine in engines:
            engine.dispose()
    assert differences(store.engine) == []


def test_reopening_a_migrated_database_changes_nothing(db_url: str, store: Store) -> None:
    migrate.upgrade(store.engine)
    assert migrate.current_revision(store.engine) == migrate.head_revision()


@pytest.mark.parametrize(
    ("start", "pending"),
    [("0003", 0), ("0005", 0), ("0007", 0), ("0007", 6), ("0008", 0), ("0008", 6)],
)
def test_rollups_built_before_a_revision_hold_what_the_writer_builds(
    store: Store, start: str, pending: int
) -> None:
    """From 0003 (the head's rebuild rolls up every stored event), 0005 (0006 rolls up the
    sessions and workflows with its own frozen SQL), 0007 (0008 rolls them up again with
    every measure, less the rows still ``pending`` a fold) or 0008 (0009 rolls them up again
    keyed by both ids, with the sheet of the rows that carry both), with events stored: every
    slot of every rollup gets a token, and every rollup holds exactly what today's writer
    builds from the same events."""
    base = datetime(2026, 5, 4, 22, tzinfo=UTC)
    made = [
        Event(
            ts=base + timedelta(hours=h, minutes=h),
            department="eng" if h % 3 else None,
            input_tokens=h,
            output_tokens=h * 7 % 50,
            cache_read_tokens=h % 4,
            latency_ms=None if h % 7 == 0 else h * 1_700,
            status="error" if h % 5 == 0 else "ok",
            cost_usd=Decimal("0.000123456789") * h if h % 4 else None,
            unpriced=h % 4 == 0,
            session_id=f"s-{h // 5}",
            workflow_id=f"w-{h // 11}" if h % 2 else "",
        )
        for h in range(30)
    ]
    store.insert_events(made[: len(made) - pending])
    store.fold()  # every day has ended: all sealed
    store.insert_events(made[len(made) - pending :])  # pending a fold while migrating
    migrate.downgrade(store.engine, start)
    migrate.upgrade(store.engine)
    assert differences(store.engine) == []
    store.fold()
    slots = marked_slots(store.engine)
    assert slots == {spec.name: 30 if spec.grain == "hour" else 3 for spec in ROLLUP_SPECS}
    migrated = rollup_rows(store.engine)
    assert len(migrated["spend_ids_hourly"]) > 30 and len(migrated["spend_ids_daily"]) > 3
    connection = store.engine.connect().execution_options(**{BEGIN_MODE: "IMMEDIATE"})
    with connection, connection.begin():
        rebuild(connection)
    assert rollup_rows(store.engine) == migrated


def rollup_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        rows = {
            name: sorted(tuple(row) for row in connection.execute(select(table)))
            for name, table in rollup_tables.items()
        }
        rows["spend_sealed"] = sorted(tuple(r) for r in connection.execute(select(spend_sealed)))
    return rows
