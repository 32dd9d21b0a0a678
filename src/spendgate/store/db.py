"""``Store``: every query spendgate runs, on SQLite or PostgreSQL alike.

Methods are synchronous and thread-safe (one connection per call, from the engine's pool); the
gateway calls them from worker threads, never on its event loop. ``open_store`` builds the engine
and migrates the database to the newest schema.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, Select, Update, func, select, text, tuple_, update
from sqlalchemy.exc import DBAPIError

from spendgate.errors import ConfigError
from spendgate.events import Event
from spendgate.store import migrate
from spendgate.store.bulk import EventInserter
from spendgate.store.engine import BEGIN_MODE, make_engine, masked, parse_url
from spendgate.store.keys import KeyRecord, check_hash, key_to_row, row_to_key
from spendgate.store.rollup_cache import DEFAULT_BYTES, RollupCache
from spendgate.store.rollups import SEAL_BUDGET_S, RollupWriter, stored_ids
from spendgate.store.schema import FILTERABLE, api_keys, events, row_to_event
from spendgate.store.types import as_utc

log = logging.getLogger(__name__)

MAX_LIMIT = 10_000
# The writer folds pending rollup rows into the rollups this often, or after this many events.
FOLD_INTERVAL_S = 5.0
FOLD_EVENTS = 100_000


def open_store(
    url: str,
    *,
    busy_timeout_ms: int = 5000,
    connect_timeout_s: int = 10,
    cache_bytes: int = DEFAULT_BYTES,
) -> Store:
    """A ``Store`` on ``url`` (``sqlite:///path`` or ``postgresql://…``), migrated to head.

    ``busy_timeout_ms`` is how long SQLite waits for another writer's lock;
    ``connect_timeout_s`` how long PostgreSQL connection attempts may take; ``cache_bytes``
    how much memory the spend queries' rollup cache may hold (0: none)."""
    engine = make_engine(
        parse_url(url), busy_timeout_ms=busy_timeout_ms, connect_timeout_s=connect_timeout_s
    )
    try:
        migrate.upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, cache_bytes=cache_bytes)


class Store:
    """Events and API keys in one database. Build it with ``open_store``."""

    def __init__(
        self,
        engine: Engine,
        *,
        fold_interval_s: float = FOLD_INTERVAL_S,
        cache_bytes: int = DEFAULT_BYTES,
    ) -> None:
        self._engine = engine
        self._inserter = EventInserter(engine)
        self._rollups = RollupWriter(engine.dialect)
        self._cache = RollupCache(cache_bytes, engine=engine)
        self._fold_interval_s = fold_interval_s
        self._folded_at = time.monotonic()
        self._pending = 0  # events this store staged since its last fold

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for queries elsewhere in ``spendgate.store``."""
        return self._engine

    @property
    def rollup_cache(self) -> RollupCache:
        """In-memory copies of the rollups' slots, for spend queries
        (``store.rollup_cache``; ``cache_bytes=0``: off)."""
        return self._cache

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return masked(self._engine.url)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Fold what this store left pending, then close every pooled connection."""
        try:
            if self._pending:
                self.fold()
        except DBAPIError as exc:  # the rows stay pending: queries still count them
            log.warning("could not fold pending rollup rows at close: %s", exc)
        finally:
            self._cache.close()
            self._engine.dispose()

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DBAPIError as exc:
            log.debug("store %s did not answer: %s", self.url, exc)
            return False
        return True

    # -- events -------------------------------------------------------------------------------

    def insert_events(self, batch: Sequence[Event]) -> int:
        """Insert ``batch`` in one transaction; events whose ``event_id`` is already stored are
        skipped. The new events are staged for the spend rollups in the same transaction, and
        every ``fold_interval_s`` a fold follows in a transaction of its own (a fold that fails
        is logged and tried again later: the staged rows stay, and queries count them).
        Returns how many rows were inserted."""
        if not batch:
            return 0
        ids = {event.event_id for event in batch}
        with self._engine.begin() as connection:
            fresh = ids - stored_ids(connection, ids)
            inserted = self._inserter.insert(connection, batch)
            if fresh:
                self._rollups.stage(connection, fresh)
                self._pending += len(fresh)
        if self._pending and self._fold_due():
            try:
                self._fold(seal_budget_s=SEAL_BUDGET_S)
            except DBAPIError as exc:
                log.warning("folding the spend rollups failed, will retry: %s", exc)
                self._folded_at = time.monotonic()
        return inserted

    def fold(self) -> None:
        """Move the pending rollup rows into the rollups now, and seal every day that has
        ended (``store.rollups``); the writer folds by itself every ``fold_interval_s``
        seconds (sealing a little at a time) and at ``close``."""
        self._fold(seal_budget_s=None)

    def _fold_due(self) -> bool:
        waited = time.monotonic() - self._folded_at
        return waited >= self._fold_interval_s or self._pending >= FOLD_EVENTS

    def _fold(self, *, seal_budget_s: float | None) -> None:
        immediate = {BEGIN_MODE: "IMMEDIATE"}  # SQLite: the write lock before reading
        connection = self._engine.connect().execution_options(**immediate)
        with connection, connection.begin():
            now = datetime.now(UTC)
            self._rollups.fold(connection, now=now, seal_budget_s=seal_budget_s)
        self._pending = 0
        self._folded_at = time.monotonic()

    def list_events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        filters: Mapping[str, str] | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Events with ``since <= ts < until`` matching every filter (column == value), newest
        first. Filters: ``FILTERABLE``. ``ConfigError`` for an unknown filter, a naive datetime
        or a limit outside 1..10000."""
        query = _events_query(since, until, filters or {}, limit)
        with self._engine.connect() as connection:
            return [row_to_event(row) for row in connection.execute(query).mappings()]

    def iter_events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        filters: Mapping[str, str] | None = None,
        chunk_size: int = 5000,
    ) -> Iterator[list[Event]]:
        """Every matching event, oldest first, in lists of up to ``chunk_size`` (one short
        query per list, resuming after the last ``(ts, event_id)``: no long-held cursor)."""
        after: tuple[datetime, str] | None = None
        while True:
            query = _events_query(since, until, filters or {}, chunk_size, oldest_first=True)
            if after is not None:
                query = query.where(tuple_(events.c.ts, events.c.event_id) > after)
            with self._engine.connect() as connection:
                chunk = [row_to_event(row) for row in connection.execute(query).mappings()]
            if not chunk:
                return
            yield chunk
            after = (chunk[-1].ts, chunk[-1].event_id)

    def count_events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> int:
        """How many events ``iter_events`` would yield."""
        inner = _events_query(since, until, filters or {}, MAX_LIMIT).limit(None).order_by(None)
        query = select(func.count()).select_from(
            inner.with_only_columns(events.c.event_id).subquery()
        )
        with self._engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    # -- API keys -----------------------------------------------------------------------------

    def create_key(self, record: KeyRecord) -> None:
        """Store a new key (hash and prefix only). A duplicate id or hash raises
        ``sqlalchemy.exc.IntegrityError``."""
        with self._engine.begin() as connection:
            connection.execute(api_keys.insert(), key_to_row(record))

    def get_key_by_hash(self, key_hash: str) -> KeyRecord | None:
        """The key whose SHA-256 hex digest is ``key_hash``, revoked or not."""
        query = select(api_keys).where(api_keys.c.key_hash == key_hash)
        with self._engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else row_to_key(row)

    def list_keys(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        with self._engine.connect() as connection:
            return [row_to_key(row) for row in connection.execute(query).mappings()]

    def revoke_key(self, key_id: str, at: datetime) -> bool:
        """Mark key ``key_id`` revoked at ``at``; False if it is unknown or already revoked."""
        query = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return self._update_one(query)

    def replace_key_hash(self, key_id: str, new_hash: str, new_prefix: str) -> bool:
        """Rotate key ``key_id`` to a new secret (its hash and prefix); False if unknown."""
        check_hash(new_hash, new_prefix)
        query = (
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(key_hash=new_hash, key_prefix=new_prefix)
        )
        return self._update_one(query)

    # -- helpers ------------------------------------------------------------------------------

    def _update_one(self, query: Update) -> bool:
        with self._engine.begin() as connection:
            return bool(connection.execute(query).rowcount == 1)


def _events_query(
    since: datetime | None,
    until: datetime | None,
    filters: Mapping[str, str],
    limit: int,
    *,
    oldest_first: bool = False,
) -> Select[Any]:
    if not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    unknown = sorted(set(filters) - set(FILTERABLE))
    if unknown:
        raise ConfigError(
            f"unknown event filter {', '.join(unknown)}; filter on: {', '.join(FILTERABLE)}"
        )
    query = select(events)
    if since is not None:
        query = query.where(events.c.ts >= _aware("since", since))
    if until is not None:
        query = query.where(events.c.ts < _aware("until", until))
    for name, value in sorted(filters.items()):
        query = query.where(events.c[name] == value)
    if oldest_first:
        return query.order_by(events.c.ts, events.c.event_id).limit(limit)
    return query.order_by(events.c.ts.desc(), events.c.event_id.desc()).limit(limit)


def _aware(name: str, moment: datetime) -> datetime:
    try:
        return as_utc(moment)
    except ValueError:
        raise ConfigError(f"{name} must be a timezone-aware datetime (UTC), not {moment}") from None
