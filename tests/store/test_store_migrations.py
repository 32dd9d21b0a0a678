"""The migrations build exactly the schema the code declares, on both engines."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from spendgate.events import Event
from spendgate.store import Store, migrate
from spendgate.store.engine import make_engine, parse_url
from spendgate.store.schema import ROLLUP_SPECS, metadata

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


def test_rollups_built_before_0005_get_their_slot_tokens(store: Store) -> None:
    """From 0003 up, with events stored: 0004 rebuilds the rollups (before ``spend_marks``
    exists) and 0005 gives every slot of every rollup a token."""
    base = datetime(2026, 5, 4, 22, tzinfo=UTC)
    store.insert_events(
        [Event(ts=base + timedelta(hours=h), department="eng", input_tokens=h) for h in range(30)]
    )
    store.fold()
    migrate.downgrade(store.engine, "0003")
    migrate.upgrade(store.engine)
    assert differences(store.engine) == []
    slots = marked_slots(store.engine)
    assert slots == {spec.name: 30 if spec.grain == "hour" else 3 for spec in ROLLUP_SPECS}
