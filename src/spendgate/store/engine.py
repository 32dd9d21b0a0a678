"""Engines for the two supported databases, configured the same way every time.

- ``sqlite:///path/to/file.db``: WAL journal, ``synchronous=NORMAL``, a busy timeout, foreign
  keys on, and real transactions (SQLAlchemy emits ``BEGIN``, so DDL and migrations are atomic).
  The parent folder is created. ``sqlite://`` (in memory) uses one shared connection: tests only.
- ``postgresql://…`` (or ``postgres://…``): mapped to the psycopg 3 driver, with pre-ping (a
  connection dropped while the database was away is replaced, not reused) and a connect timeout.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from spendgate.errors import ConfigError

SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
POSTGRES_DRIVERS = ("postgresql", "postgres", "postgresql+psycopg")
# Execution option: ``{BEGIN_MODE: "IMMEDIATE"}`` makes a SQLite transaction take the write lock
# at BEGIN (so two writers queue up instead of one failing); other engines ignore it.
BEGIN_MODE = "spendgate_sqlite_begin"
# The oldest SQLite library the store's SQL runs on (aggregate ``FILTER``: 3.30).
MIN_SQLITE = (3, 30)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one snapshot of the database: SQLite's read
    transaction; ``REPEATABLE READ`` on PostgreSQL."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        yield connection


def masked(url: URL) -> str:
    """``url`` as text with any password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for ``url``; ``ConfigError`` for anything but SQLite or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "the database URL could not be parsed; use sqlite:///path/to/file.db "
            "or postgresql://user:password@host:5432/dbname"
        ) from None
    if parsed.drivername in POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in SQLITE_DRIVERS:
        return parsed
    raise ConfigError(
        f"unsupported database {masked(parsed)!r}: spendgate stores events in SQLite "
        "(sqlite:///path/to/file.db) or PostgreSQL (postgresql://user@host/dbname)"
    )


def make_engine(url: URL, *, busy_timeout_ms: int = 5000, connect_timeout_s: int = 10) -> Engine:
    """An engine for a URL returned by ``parse_url``."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = connect_timeout_s
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args)


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise ConfigError(
            f"spendgate needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer; this Python's "
            f"sqlite3 module uses SQLite {sqlite3.sqlite_version}: upgrade Python or use PostgreSQL"
        )
    options: dict[str, Any] = {"hide_parameters": True}  # no event data in error messages
    if _is_memory(url):
        options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **options)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_MODE, "")
        connection.exec_driver_sql(f"BEGIN {mode}" if mode == "IMMEDIATE" else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine
