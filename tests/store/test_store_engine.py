"""Opening a store: URLs, SQLite settings, passwords, liveness."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from spendgate.errors import ConfigError
from spendgate.store import Store, open_store
from spendgate.store.engine import make_engine, parse_url

from store_helpers import make_event


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u:p@db:5432/spend", "postgresql+psycopg"),
        ("postgres://u@db/spend", "postgresql+psycopg"),
        ("postgresql+psycopg://u@db/spend", "postgresql+psycopg"),
        ("sqlite:///var/lib/spendgate.db", "sqlite"),
        ("sqlite://", "sqlite"),
    ],
)
def test_urls_map_to_the_supported_drivers(url: str, driver: str) -> None:
    assert parse_url(url).drivername == driver


def test_other_databases_are_refused_without_echoing_secrets() -> None:
    with pytest.raises(ConfigError, match=r"unsupported database 'mysql://u:\*\*\*@h/d'"):
        parse_url("mysql://u:hunter2@h/d")
    with pytest.raises(ConfigError, match="could not be parsed") as caught:
        parse_url("not a url hunter2")
    assert "hunter2" not in str(caught.value)


def test_an_old_sqlite_library_is_refused_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 29, 0))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.29.0")
    with pytest.raises(ConfigError, match=r"needs SQLite 3\.30 or newer.*uses SQLite 3\.29\.0"):
        make_engine(parse_url(f"sqlite:///{tmp_path / 'old.db'}"))
    assert not (tmp_path / "old.db").exists()


def test_sqlite_settings(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    with open_store(f"sqlite:///{folder}/spendgate.db", busy_timeout_ms=1234) as store:
        assert (folder / "spendgate.db").exists()
        with store.engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 1234,
        "foreign_keys": 1,
    }


def test_sqlite_in_memory_works_across_threads() -> None:
    with open_store("sqlite://") as store:
        assert store.insert_events([make_event()]) == 1
        assert len(store.list_events()) == 1


@pytest.mark.postgres
def test_url_hides_the_password(pg_url: str) -> None:
    url = pg_url.replace("postgres@", "postgres:hunter2@")
    with open_store(url) as store:
        assert store.ping()
        assert "hunter2" not in store.url and "hunter2" not in repr(store)
        assert store.url.startswith("postgresql+psycopg://postgres:***@")


def test_ping(store: Store) -> None:
    assert store.ping() is True


def test_ping_an_absent_server_is_false(tmp_path: Path) -> None:
    # a port nobody listens on: connection refused
    unreachable = Store(make_engine(parse_url("postgresql://postgres@127.0.0.1:9/none")))
    assert unreachable.ping() is False
    unreachable.close()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(OSError):
        open_store(f"sqlite:///{blocked}/spendgate.db")


def test_sqlite_transactions_are_real(tmp_path: Path) -> None:
    """SQLAlchemy emits BEGIN itself, so a failed transaction leaves nothing behind, DDL too."""
    with open_store(f"sqlite:///{tmp_path}/s.db") as store:
        with pytest.raises(RuntimeError), store.engine.begin() as connection:
            connection.execute(text("CREATE TABLE scratch (x INTEGER)"))
            raise RuntimeError
        with store.engine.connect() as connection:
            tables = connection.exec_driver_sql("SELECT name FROM sqlite_master").scalars()
            assert "scratch" not in set(tables)
