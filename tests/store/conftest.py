"""Store fixtures: every test runs on SQLite and on a throwaway PostgreSQL database.

PostgreSQL tests use one database per session (random name, dropped at the end); the ``store``
fixture empties its tables before each test. ``outage`` takes the database away for real: a TCP
proxy that stops for PostgreSQL, another connection holding SQLite's write lock for SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spendgate.store import Store, open_store
from spendgate.store.schema import metadata

from helpers import TcpProxy, free_port
from store_helpers import Outage, SqliteLockHolder

PG_HOST, PG_PORT = "127.0.0.1", 5432


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The database URL for this test (SQLite: a new file; PostgreSQL: the session database)."""
    if engine_name == "sqlite":
        return f"sqlite:///{tmp_path}/db/spendgate.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store with empty tables."""
    opened = open_store(db_url)
    with opened.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def outage(
    engine_name: str, db_url: str, store: Store, pytestconfig: pytest.Config
) -> Iterator[Outage]:
    if engine_name == "postgresql":
        proxy = TcpProxy((PG_HOST, PG_PORT), free_port())
        proxy.start()
        try:
            yield Outage(db_url.replace(f":{PG_PORT}/", f":{proxy.port}/"), proxy.stop, proxy.start)
        finally:
            proxy.stop()
        return
    holder = SqliteLockHolder(db_url.removeprefix("sqlite:///"))
    try:
        yield Outage(db_url, holder.lock, holder.release)
    finally:
        holder.release()
