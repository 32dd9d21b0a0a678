"""The migrations build exactly the schema the code declares, on both engines."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from spendgate.store import Store, migrate
from spendgate.store.engine import make_engine, parse_url
from spendgate.store.schema import metadata


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
