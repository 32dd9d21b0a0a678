"""id rollups keyed by both ids, with a sheet for the rows that carry both

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:00:00.000000

``spend_ids_hourly`` and ``spend_ids_daily`` key their rows by ``session_id`` and
``workflow_id`` (columns named as the fields, instead of one ``value``), and gain a third
sheet, ``dimension = 'session_id,workflow_id'``: the rows of the events that carry both ids,
keyed by both. With it, the sessions of a workflow (the rows with a workflow, by session) and
the sessions with no workflow (a session's rows less its rows with one) are summed from the
rollups, so a question that names one id and counts the other's distinct values is no longer
read from a month of raw events.

The primary key changes, so both tables are made anew and rolled up again here with plain
SQL (frozen, like 0008's): every stored event with an id into ``spend_ids_hourly``, each sheet
apart, less the rows still pending a fold (the fold adds those), then the days
``spend_ids_daily`` was sealed to from the hourly rows; every slot of both gets a new token in
``spend_marks``.
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from alembic import op

# Frozen names of 0006 and 0008 (a revision never changes): the dimensions, id fields,
# tables, the truncation SQL, the marking of every slot, every measure and its sums over
# ``events``.
from spendgate.store.migrations.versions.v0006_id_rollups import (
    DIMENSIONS,
    IDS,
    TABLES,
    _marked,
    _truncated,
)
from spendgate.store.migrations.versions.v0008_id_rollup_measures import MEASURES, _event_sums

log = logging.getLogger(__name__)

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SHEETS = ((IDS[0],), (IDS[1],), IDS)
KEYS = ", ".join(("dimension", "bucket", *IDS, *DIMENSIONS))
GROUPS = ", ".join(str(i) for i in range(1, 5 + len(DIMENSIONS)))
# 0008's layout, for the downgrade.
OLD_KEYS = ", ".join(("dimension", "bucket", "value", *DIMENSIONS))


def _create(table: str, keys: tuple[str, ...], name: str) -> None:
    op.create_table(
        name,
        sa.Column("dimension", sa.Text(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(k, sa.Text(), nullable=False) for k in (*keys, *DIMENSIONS)),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in MEASURES),
        sa.PrimaryKeyConstraint(
            "dimension", "bucket", *keys, *DIMENSIONS, name=op.f(f"pk_{table}")
        ),
        sqlite_with_rowid=False,
    )


def _sheet_rows(sheet: tuple[str, ...], dialect: str) -> str:
    """The hourly rows of one sheet: its events, less its pending rows."""
    dims = ", ".join(f"COALESCE({d}, '') AS {d}" for d in DIMENSIONS)
    ids = ", ".join(f"{f} AS {f}" if f in sheet else f"'' AS {f}" for f in IDS)
    carried = " AND ".join(f"{f} IS NOT NULL AND {f} <> ''" for f in sheet)
    negated = ", ".join(f"-{m}" for m in MEASURES)
    pending_ids = ", ".join(f if f in sheet else "''" for f in IDS)
    pending_carried = " AND ".join(f"{f} <> ''" for f in sheet)
    events = (
        f"SELECT '{','.join(sheet)}' AS dimension, {_truncated('ts', 'hour', dialect)} AS bucket, "
        f"{ids}, {dims}, {_event_sums()} FROM events WHERE {carried} GROUP BY {GROUPS}"
    )
    pending = (
        f"SELECT '{','.join(sheet)}', bucket, {pending_ids}, {', '.join(DIMENSIONS)}, {negated} "
        f"FROM spend_pending WHERE {pending_carried}"
    )
    return f"{events} UNION ALL {pending}"


def upgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
        _create(table, IDS, table)
    connection = op.get_bind()
    dialect = connection.dialect.name
    for table in TABLES:
        op.execute(f"DELETE FROM spend_marks WHERE name = '{table}'")
    stored = connection.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    if not stored:
        return
    log.warning("rolling up the sessions and workflows again, keyed by both ids")
    columns = ", ".join(MEASURES)
    totals = ", ".join(f"SUM({m})" for m in MEASURES)
    for sheet in SHEETS:
        op.execute(
            f"INSERT INTO spend_ids_hourly ({KEYS}, {columns}) "
            f"SELECT {KEYS}, {totals} FROM ({_sheet_rows(sheet, dialect)}) AS summed "
            f"GROUP BY {GROUPS} HAVING SUM(requests) <> 0"
        )
    _seal_and_mark(connection)


def _seal_and_mark(connection: sa.Connection) -> None:
    """``spend_ids_daily`` for the days it was sealed to, from the hourly rows; every slot of
    both tables a token."""
    until = connection.execute(
        sa.text("SELECT until FROM spend_sealed WHERE name = 'spend_ids_daily'")
    ).scalar()
    if until is not None:
        day = _truncated("bucket", "day", connection.dialect.name)
        rest = KEYS.removeprefix("dimension, bucket, ")
        totals = ", ".join(f"SUM({m})" for m in MEASURES)
        connection.execute(
            sa.text(
                f"INSERT INTO spend_ids_daily ({KEYS}, {', '.join(MEASURES)}) "
                f"SELECT dimension, {day}, {rest}, {totals} FROM spend_ids_hourly "
                f"WHERE bucket < :until GROUP BY {GROUPS}"
            ),
            {"until": until},
        )
    _marked(TABLES)


def downgrade() -> None:
    """Back to one ``value`` per row: the two sheets of one id each, copied; the rows that
    carry both are dropped."""
    connection = op.get_bind()
    value = f"CASE dimension WHEN '{IDS[0]}' THEN {IDS[0]} ELSE {IDS[1]} END"
    rest = f"{', '.join(DIMENSIONS)}, {', '.join(MEASURES)}"
    for table in TABLES:
        op.rename_table(table, f"{table}_0009")
        if connection.dialect.name == "postgresql":  # free the key's name for the old table
            op.execute(f"ALTER TABLE {table}_0009 RENAME CONSTRAINT pk_{table} TO pk_{table}_0009")
        _create(table, ("value",), table)
        op.execute(
            f"INSERT INTO {table} ({OLD_KEYS}, {', '.join(MEASURES)}) "
            f"SELECT dimension, bucket, {value}, {rest} FROM {table}_0009 "
            f"WHERE dimension IN ('{IDS[0]}', '{IDS[1]}')"
        )
        op.drop_table(f"{table}_0009")
    if connection.execute(sa.text("SELECT count(*) FROM spend_ids_hourly")).scalar_one():
        token = uuid.uuid4().hex
        for table in TABLES:  # their rows changed: every slot a new token
            op.execute(
                sa.text(
                    f"UPDATE spend_marks SET token = CAST(:token AS TEXT) WHERE name = '{table}'"
                ).bindparams(token=token)
            )
