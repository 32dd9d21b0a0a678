"""Reading rollup slots for ``store.rollup_cache``: their tokens (``slot_marks``) and their rows
(``load_run``), in the caller's connection and snapshot.

A slot is one hour or day of a rollup (of a facet or pair rollup: one dimension's rows of it;
of an id rollup: one id field's). A projected slot (its sheet ``PROJECTED`` and the fields it
keeps) is the slot's rows summed by those fields in SQL. Every value passes through the
database driver as a Python object, so loading is the slow step: on PostgreSQL a slot is
streamed as CSV by ``COPY`` and parsed by Arrow instead. Consecutive slots are read in one
statement (warming loads thousands of slots, most of them small), built once per rollup and
sheet. ``fetched`` (a query's rows as an Arrow
table, from the driver's tuples) serves ``store.spend``'s SQL parts too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Dialect,
    Select,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    select,
)

from spendgate.store.rollup_sql import truncate
from spendgate.store.schema import ID_FIELDS, SPECS, rollup_tables, spend_marks
from spendgate.store.types import UTCDateTime, as_utc

# The sheet of a projected slot: this, then the fields it keeps, comma-separated.
PROJECTED = "by:"


def slot_marks(
    connection: Connection, table: str, start: datetime, end: datetime, grain: str | None
) -> list[tuple[datetime, str, datetime | None]]:
    """Each slot of ``table`` in ``[start, end)``: its bucket, token and the ``grain`` slot it
    falls in (cut by the database, as the SQL queries cut theirs), in bucket order."""
    query = _marks_query(connection.dialect.name, grain)
    found = connection.execute(query, {"name": table, "start": start, "end": end})
    return [(bucket, token, cut) for bucket, token, cut in found]


@lru_cache(maxsize=16)
def _marks_query(dialect: str, grain: str | None) -> Select[Any]:
    """``slot_marks``' SQL, built once per dialect and grain."""
    slot: ColumnElement[Any] = literal_column("NULL")
    if grain is not None:
        slot = truncate(spend_marks.c.bucket, grain, dialect, type_=UTCDateTime())
    return (
        select(spend_marks.c.bucket, spend_marks.c.token, slot)
        .where(
            spend_marks.c.name == bindparam("name"),
            spend_marks.c.bucket >= bindparam("start", type_=UTCDateTime()),
            spend_marks.c.bucket < bindparam("end", type_=UTCDateTime()),
        )
        .order_by(spend_marks.c.bucket)
    )


def load_run(
    connection: Connection, table: str, dimension: str, buckets: Sequence[datetime]
) -> tuple[pa.Table, dict[datetime, tuple[int, int]]]:
    """The rows of the slots of ``table`` at ``buckets`` (consecutive slots, in order; of a
    facet or pair rollup: of one ``dimension``), read in one statement (a statement costs
    more than a small slot's rows), and where each slot's rows are in them (offset, length;
    a slot with no rows is left out). Laid out as a slot's rows: the key columns but
    ``bucket`` and ``dimension`` (strings), then the measures (int64). A projected slot
    (``dimension``: ``PROJECTED`` and fields) is the slot's rows summed by those fields, in
    SQL: its key columns are those fields."""
    query, schema = _slot_query(table, dimension)
    read = schema.insert(0, pa.field("bucket", pa.string()))
    params = {"first": buckets[0], "last": buckets[-1]}
    if connection.dialect.name == "postgresql":
        rows = _copied(connection, query, read, params)
    else:
        rows = fetched(connection, query, params, read)
    spans = {}
    if rows.num_rows:
        runs = pc.run_end_encode(rows["bucket"].combine_chunks())
        start = 0
        for end, text in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
            spans[_bucket(text)] = (start, end - start)
            start = end
    return rows.drop_columns("bucket"), spans


def _bucket(text: str) -> datetime:
    """A bucket as the database writes it as text: PostgreSQL's ``timestamptz`` (with its
    offset), SQLite's naive UTC text."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@lru_cache(maxsize=1024)
def _slot_query(table: str, dimension: str) -> tuple[Select[Any], pa.Schema]:
    """``load_run``'s SQL for the slots of ``table`` and ``dimension`` in ``[:first,
    :last]`` (their bucket first, as text, in bucket order), and the layout of a slot's rows:
    built once (warming loads thousands of slots)."""
    rollup = rollup_tables[table]
    measures = [c.name for c in rollup.columns if not c.primary_key]
    values: list[ColumnElement[Any]] = [rollup.c[m] for m in measures]
    projected = dimension.startswith(PROJECTED)
    if projected:
        keys = [name for name in dimension.removeprefix(PROJECTED).split(",") if name]
        values = [cast(func.coalesce(func.sum(v), 0), BigInteger) for v in values]
    else:  # of an id rollup's sheet, the ids it is keyed by (the others are '')
        skip = {"bucket", "dimension"}
        if SPECS[table].ids:
            skip |= set(ID_FIELDS) - set(dimension.split(","))
        keys = [c.name for c in rollup.primary_key.columns if c.name not in skip]
    first, last = (bindparam(name, type_=UTCDateTime()) for name in ("first", "last"))
    bucket = cast(rollup.c.bucket, Text).label("bucket")
    query = select(bucket, *(rollup.c[k] for k in keys), *values)
    query = query.where(rollup.c.bucket >= first, rollup.c.bucket <= last)
    if projected:
        query = query.group_by(rollup.c.bucket, *(rollup.c[k] for k in keys))
    elif dimension:
        query = query.where(rollup.c.dimension == dimension)
    schema = pa.schema([*((k, pa.string()) for k in keys), *((m, pa.int64()) for m in measures)])
    return query.order_by(rollup.c.bucket), schema


def fetched(
    connection: Connection, query: Select[Any], params: dict[str, Any], schema: pa.Schema
) -> pa.Table:
    """``query``'s rows (the columns of ``schema``, in its order) as an Arrow table, fetched
    as the driver's own tuples: no SQLAlchemy ``Row`` (nor result processing) per row."""
    result = connection.execute(query, params)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    return _rows_table(rows, schema)


def _rows_table(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Rows (the driver's tuples, the columns of ``schema`` in its order) as an Arrow table. A
    timestamp column may hold datetimes or SQLite's text form of them (UTC)."""
    columns = zip(*rows, strict=True) if rows else [()] * len(schema)
    arrays = [_array(column, field.type) for column, field in zip(columns, schema, strict=True)]
    return pa.table(arrays, schema=schema)


def _array(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(type_) and values and isinstance(values[0], str):
        return pa.array(values, pa.string()).cast(pa.timestamp("us")).cast(type_)
    return pa.array(values, type_)


def _copied(
    connection: Connection, query: Select[Any], schema: pa.Schema, params: dict[str, Any]
) -> pa.Table:
    """``query``'s rows on PostgreSQL, in ``connection``'s transaction, streamed as CSV by
    ``COPY … TO STDOUT`` and parsed by Arrow: no Python object per value, so slots load
    several times faster than through the driver's rows."""
    statement, fixed = _copy_statement(query, connection.dialect)
    driver = connection.connection.driver_connection  # psycopg's, in the same transaction
    assert driver is not None
    # COPY takes no server-side parameters: psycopg binds them into the statement.
    bound = {**fixed, **{name: as_utc(value) for name, value in params.items()}}
    with driver.cursor() as cursor, cursor.copy(statement, bound) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    if not data:
        return schema.empty_table()
    return csv.read_csv(
        pa.py_buffer(data),
        read_options=csv.ReadOptions(column_names=schema.names),
        parse_options=csv.ParseOptions(newlines_in_values=True),
        convert_options=csv.ConvertOptions(column_types=schema),
    )


@lru_cache(maxsize=1024)
def _copy_statement(query: Select[Any], dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """The ``COPY`` around ``query`` (one of ``_slot_query``'s) and its fixed parameters,
    compiled once: compiling cost more than a small slot's rows."""
    compiled = query.compile(dialect=dialect)
    return f"COPY ({compiled}) TO STDOUT (FORMAT csv)", dict(compiled.params)
