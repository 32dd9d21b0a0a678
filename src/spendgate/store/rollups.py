"""The spend rollups (``schema.ROLLUP_SPECS``), kept in SQL by the event writer.

``Store.insert_events`` calls ``RollupWriter.stage(connection, event_ids)`` in the transaction
that inserts the batch, with the ids of the events that batch really added (a replayed
duplicate is skipped by the insert, so it must not be counted twice): one grouped pass appends
the batch's hourly sums to ``spend_pending``. Every few seconds (or many events) the store calls
``RollupWriter.fold``, which moves all pending rows into every hourly rollup with one
``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` each: the database does the grouping and
the sums, the gateway process spends no Python time per event on it, and a key that many
batches touch is updated once per fold. Daily rollups are sealed from finer ones once their
day has ended (``RollupWriter.seal``). Spend queries add ``spend_pending`` to what they read
from the rollups (``store.spend``), so nothing waits for a fold to be seen.

``choose(grain, fields)`` picks the smallest rollup of a grain that holds every field.

The SQL itself (measure expressions and statements) is in ``store.rollup_sql``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Dialect, Table, and_, bindparam, func, select
from sqlalchemy.schema import CreateTable

from spendgate.store.rollup_sql import (
    mark_statement,
    marker,
    move_statements,
    pend_statement,
    source_of,
    stage_table,
    upsert_statements,
)
from spendgate.store.schema import (
    ROLLUP_SPECS,
    SEALED_SPECS,
    RollupSpec,
    events,
    pair_of,
    rollup_tables,
    spend_marks,
    spend_pending,
    spend_sealed,
)
from spendgate.store.types import UTCDateTime

_Statement = tuple[str, list[str] | None, dict[str, Any]]  # SQL, parameter order, constants
_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FOLD_LOCK = 0x5350454E44  # pg advisory lock key: one fold at a time across replicas
# A day is sealed (``RollupWriter.seal``) this long after it ends; later events are added by
# the fold as late rows.
SEAL_AFTER = timedelta(hours=1)
# Sealing time a fold may spend before it leaves the other units to the next fold.
SEAL_BUDGET_S = 0.1
PAIRS = next(spec for spec in ROLLUP_SPECS if spec.pairs)
_ID_CHUNK = 900  # ids per IN (…) list: far below any engine's parameter limit


def sealed_until(connection: Connection) -> dict[str, datetime]:
    """For each sealed unit (``unit_name``): every day before this is in it (missing: none)."""
    rows = connection.execute(select(spend_sealed.c.name, spend_sealed.c.until))
    return {name: until for name, until in rows}


def held_until(sealed: dict[str, datetime], spec: RollupSpec, fields: Collection[str]) -> datetime:
    """How far the daily rollup ``spec`` holds the days for ``fields``, by ``sealed_until``."""
    return sealed.get(unit_name(spec, fields), _EPOCH)


def unit_name(spec: RollupSpec, fields: Collection[str]) -> str:
    """The sealing unit of a daily rollup that answers ``fields``: the rollup, or for the
    pair rollup the pair (pairs are sealed one at a time)."""
    if spec.pairs:
        first, second = pair_of(fields)
        return f"{spec.name}:{first},{second}"
    return spec.name


@dataclass(frozen=True, slots=True)
class _Unit:
    """What one sealing step fills: its SQL from the finer rollup (``sealing``) and from the
    stage for late events (``late``), both over ``[:low, :high)``, and the statements that
    renew the tokens of the slots they fill (``marking``, ``late_marking``: run once per seal
    or fold over the span of every unit sharing them)."""

    name: str
    sealing: tuple[str, ...]
    late: tuple[str, ...]
    after_daily: bool  # summed from spend_daily: never sealed past it
    marking: tuple[str, ...] = ()
    late_marking: tuple[str, ...] = ()


def _units(stage: Table, dialect: Dialect, *, marks: bool) -> list[_Unit]:
    units = []
    for spec in SEALED_SPECS:
        source = source_of(spec).name
        sealing = upsert_statements(spec, source_of(spec), dialect, bounded=True)
        late = upsert_statements(spec, stage, dialect, bounded=True)
        marking: tuple[str, ...] = ()
        late_marking: tuple[str, ...] = ()
        if marks:  # a day gets a new token when its source's slots have one (or late rows)
            days = source != "spend_daily"
            marking = (
                mark_statement(spec, "spend_marks", dialect, days=days, bounded=True, of=source),
            )
            late_marking = (mark_statement(spec, stage.name, dialect, days=True, bounded=True),)
        after_daily = source == "spend_daily"
        if spec.pairs:  # one statement per pair in both lists, in spec.pairs order
            for pair, seal_sql, late_sql in zip(spec.pairs, sealing, late, strict=True):
                name = unit_name(spec, pair)
                units.append(
                    _Unit(name, (seal_sql,), (late_sql,), after_daily, marking, late_marking)
                )
        else:
            units.append(
                _Unit(spec.name, tuple(sealing), tuple(late), after_daily, marking, late_marking)
            )
    return units


class RollupWriter:
    """Keeps the rollups on one engine's dialect, in three steps:

    - ``stage(connection, event_ids)``, in each insert transaction: the batch's hourly sums
      (every dimension) are appended to ``spend_pending``: one grouped pass over the new rows;
    - ``fold(connection)``, every few seconds: every pending row is moved into every hourly
      rollup (one ``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` each), so the upserts
      are paid once per key and fold, not once per batch;
    - ``seal(connection, now)``, from the fold, after each day ends: every daily rollup is
      filled for the days that have ended, from a finer rollup (``RollupSpec.sealed_from``: an
      hourly one, or ``spend_daily`` for the 52 pair views), once per day instead of per fold,
      one unit (a rollup, or one pair) at a time, within ``SEAL_BUDGET_S`` per fold: a day's
      sealing spreads over the next folds instead of stalling one. ``spend_sealed`` keeps how
      far each unit is. A fold adds the rows of days a unit already holds (events that arrive
      late, such as imported logs) to it as well.

    Every slot of a rollup that a fold or seal changes gets a new token in
    ``spend_marks`` in the same transaction (``marks=False``: not, for the schema before
    migration 0005, which has no ``spend_marks``).

    Statements are compiled once (the staging one per id count, padded to a power of two)."""

    def __init__(self, dialect: Dialect, *, marks: bool = True) -> None:
        self._dialect = dialect
        stage = stage_table(dialect)
        self._prologue = [
            str(CreateTable(stage, if_not_exists=True).compile(dialect=dialect)),
            str(stage.delete().compile(dialect=dialect)),  # a failed fold may have left rows
        ]
        self._move = move_statements(dialect.name)
        hourly = [spec for spec in ROLLUP_SPECS if spec.sealed_from is None]
        self._upserts = [sql for spec in hourly for sql in upsert_statements(spec, stage, dialect)]
        self._mark_hours = [
            mark_statement(spec, stage.name, dialect, days=False, bounded=False)
            for spec in (hourly if marks else [])
        ]
        self._units = _units(stage, dialect, marks=marks)
        low, high = marker(dialect, "low"), marker(dialect, "high")
        self._any_late = f"SELECT 1 FROM spend_stage WHERE bucket >= {low} AND bucket < {high}"
        self._clear = str(stage.delete().compile(dialect=dialect))
        self._staging: dict[int, _Statement] = {}
        # A bucket bound as the driver value the rollups store (SQLite: UTC text).
        bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        self._bucket: Callable[[datetime], Any] = bind or (lambda moment: moment)

    def _staging_for(self, size: int) -> _Statement:
        if size not in self._staging:
            where = events.c.event_id.in_([bindparam(f"id_{i}") for i in range(size)])
            compiled = pend_statement(self._dialect.name, where).compile(dialect=self._dialect)
            order = None if compiled.positiontup is None else list(compiled.positiontup)
            self._staging[size] = (str(compiled), order, compiled.params)
        return self._staging[size]

    def stage(self, connection: Connection, event_ids: Collection[str]) -> None:
        """Append the stored events ``event_ids`` (each counted once) to ``spend_pending``."""
        ids = sorted(set(event_ids))
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            size = min(_ID_CHUNK, 1 << (len(chunk) - 1).bit_length())
            padded = chunk + [chunk[0]] * (size - len(chunk))  # IN ignores the repeats
            sql, order, constants = self._staging_for(size)
            values = {**constants, **{f"id_{i}": v for i, v in enumerate(padded)}}
            params = values if order is None else tuple(values[name] for name in order)
            connection.exec_driver_sql(sql, params)

    def fold(
        self,
        connection: Connection,
        *,
        now: datetime | None = None,
        seal_budget_s: float | None = SEAL_BUDGET_S,
    ) -> bool:
        """Move every pending row into the rollups, then ``seal`` (``now``: the clock it
        seals by; ``None``: no sealing) for up to ``seal_budget_s``, in ``connection``'s
        transaction (on SQLite it must hold the write lock: ``BEGIN IMMEDIATE`` or after a
        write). On PostgreSQL a fold already running elsewhere makes this one a no-op
        (returns False)."""
        if self._dialect.name == "postgresql":
            got = connection.exec_driver_sql(f"SELECT pg_try_advisory_xact_lock({_FOLD_LOCK})")
            if not got.scalar_one():
                return False
        for sql in (*self._prologue, *self._move, *self._upserts):
            connection.exec_driver_sql(sql)
        token = {"token": uuid.uuid4().hex}
        for sql in self._mark_hours:
            connection.exec_driver_sql(sql, token)
        sealed = sealed_until(connection)
        if sealed and self._any(connection, _EPOCH, max(sealed.values())):
            spans: dict[str, tuple[datetime, datetime]] = {}
            for unit in self._units:  # late events: rows of days a unit already holds
                if unit.name in sealed:
                    for sql in unit.late:
                        connection.exec_driver_sql(sql, self._range(_EPOCH, sealed[unit.name]))
                    _widen(spans, unit.late_marking, _EPOCH, sealed[unit.name])
            self._mark(connection, spans, token)
        connection.exec_driver_sql(self._clear)
        if now is not None:
            self.seal(connection, now, budget_s=seal_budget_s)
        return True

    def _any(self, connection: Connection, low: datetime, high: datetime) -> bool:
        found = connection.exec_driver_sql(self._any_late, self._range(low, high)).first()
        return found is not None

    def seal(self, connection: Connection, now: datetime, *, budget_s: float | None = None) -> int:
        """Fill the daily rollups for every day that ended ``SEAL_AFTER`` before ``now`` and
        is not sealed yet, one unit at a time (a rollup, or one pair of the pair rollup), in
        order; with ``budget_s``, stop starting units once that much time has gone (the next
        fold goes on), so no fold stalls the writer for long. Returns the units sealed."""
        started = time.perf_counter()
        target = _floor_day(now - SEAL_AFTER)
        sealed = sealed_until(connection)
        spans: dict[str, tuple[datetime, datetime]] = {}
        done = 0
        for unit in self._units:
            high = min(target, sealed.get("spend_daily", _EPOCH)) if unit.after_daily else target
            low = sealed.get(unit.name, _EPOCH)
            if low >= high:
                continue
            if budget_s is not None and done and time.perf_counter() - started > budget_s:
                break
            for sql in unit.sealing:
                connection.exec_driver_sql(sql, self._range(low, high))
            _widen(spans, unit.marking, low, high)
            connection.execute(spend_sealed.delete().where(spend_sealed.c.name == unit.name))
            connection.execute(spend_sealed.insert().values(name=unit.name, until=high))
            sealed[unit.name] = high
            done += 1
        self._mark(connection, spans, {"token": uuid.uuid4().hex})
        return done

    def _mark(
        self,
        connection: Connection,
        spans: dict[str, tuple[datetime, datetime]],
        token: dict[str, str],
    ) -> None:
        """Run each token statement once over its span (the 52 pair units share one)."""
        for sql, (low, high) in spans.items():
            connection.exec_driver_sql(sql, {**self._range(low, high), **token})

    def _range(self, low: datetime, high: datetime) -> dict[str, Any]:
        return {"low": self._bucket(low), "high": self._bucket(high)}

    def backfill(self, connection: Connection, since: datetime, until: datetime) -> None:
        """Roll up the stored events in ``[since, until)`` through ``spend_pending`` and a
        fold (without sealing), as the writer would."""
        where = and_(
            events.c.ts >= bindparam("since", type_=UTCDateTime()),
            events.c.ts < bindparam("until", type_=UTCDateTime()),
        )
        connection.execute(
            pend_statement(self._dialect.name, where), {"since": since, "until": until}
        )
        self.fold(connection)


def _widen(
    spans: dict[str, tuple[datetime, datetime]],
    statements: Collection[str],
    low: datetime,
    high: datetime,
) -> None:
    """Each of ``statements`` to run over ``[low, high)`` as well as over what it already
    spans (a token renewed for a day no unit changed only costs a copy a reload)."""
    for sql in statements:
        have = spans.get(sql)
        spans[sql] = (low, high) if have is None else (min(have[0], low), max(have[1], high))


def choose(grain: str, fields: Collection[str], *, ids: bool = False) -> RollupSpec | None:
    """The first rollup of ``grain`` (smallest first: ``ROLLUP_SPECS`` order) that can answer a
    question naming ``fields`` (``RollupSpec.holds``); ``ids``: its distinct counts (an id
    rollup)."""
    for spec in ROLLUP_SPECS:
        if spec.grain == grain and spec.ids == ids and spec.holds(fields):
            return spec
    return None


def stored_ids(connection: Connection, event_ids: Collection[str]) -> set[str]:
    """Which of ``event_ids`` are already in ``events``."""
    found: set[str] = set()
    ids = list(event_ids)
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start : start + _ID_CHUNK]
        query = select(events.c.event_id).where(events.c.event_id.in_(chunk))
        found.update(connection.execute(query).scalars())
    return found


def rebuild(
    connection: Connection,
    progress: Callable[[datetime, datetime], None] | None = None,
    *,
    marks: bool = True,
) -> None:
    """Empty the rollups and roll up every stored event again, a day at a time (each day's
    ``progress(day, last_day)`` after it), then seal the days that have ended, in
    ``connection``'s transaction (on SQLite it must hold the write lock). ``marks``: as
    ``RollupWriter`` takes it."""
    tables = (*rollup_tables.values(), spend_pending, spend_sealed)
    for table in (*tables, spend_marks) if marks else tables:
        connection.execute(table.delete())
    first, last = connection.execute(select(func.min(events.c.ts), func.max(events.c.ts))).one()
    if first is None:
        return
    writer = RollupWriter(connection.dialect, marks=marks)
    day = _floor_day(first)
    while day <= last:
        writer.backfill(connection, day, day + _DAY)
        if progress is not None:
            progress(day, last)
        day += _DAY
    writer.seal(connection, datetime.now(UTC))  # no budget: every unit


def _floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
