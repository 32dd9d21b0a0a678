"""id rollups: sessions and workflows counted from rollups

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 02:30:00.000000

``spend_ids_hourly`` and ``spend_ids_daily``: one row per hour (day), id field
(``dimension``: ``session_id`` or ``workflow_id``), id (``value``) and combination of the
rollup dimensions, holding requests and spend, so "sessions and cost per session" is summed
from rollups instead of raw events. ``spend_pending`` gains the two id columns (rows pending
before this carry ``''``: their events are rolled up here, from ``events``).

The stored events are rolled up here with plain SQL (frozen, like the column lists): every
hour into ``spend_ids_hourly``, the days ``spend_daily`` holds into ``spend_ids_daily`` (sealed
as far), and every slot gets a token in ``spend_marks``. At 10 M events this took ~1-2 min.
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from alembic import op

log = logging.getLogger(__name__)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DIMENSIONS = (
    *("department", "project", "agent", "user_id", "application", "environment", "cost_center"),
    *("key_id", "model_id", "base_model", "provider", "model_family", "operation", "region"),
    *("status", "source"),
)
MEASURES = ("requests", "cost_micro", "cost_pico")
IDS = ("session_id", "workflow_id")
TABLES = ("spend_ids_hourly", "spend_ids_daily")
KEYS = ", ".join(("dimension", "bucket", "value", *DIMENSIONS))
GROUPS = ", ".join(str(i) for i in range(1, 4 + len(DIMENSIONS)))


def _truncated(column: str, unit: str, dialect: str) -> str:
    """``column`` (a stored UTC datetime) cut to the start of its hour or day."""
    if dialect == "sqlite":
        return f"(substr({column}, 1, {13 if unit == 'hour' else 10}) || " + (
            "':00:00.000000')" if unit == "hour" else "' 00:00:00.000000')"
        )
    return f"(date_trunc('{unit}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def upgrade() -> None:
    for name in IDS:
        op.add_column(
            "spend_pending", sa.Column(name, sa.Text(), nullable=False, server_default="")
        )
    for table in TABLES:
        op.create_table(
            table,
            sa.Column("dimension", sa.Text(), nullable=False),
            sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            *(sa.Column(d, sa.Text(), nullable=False) for d in DIMENSIONS),
            *(sa.Column(m, sa.BigInteger(), nullable=False) for m in MEASURES),
            sa.PrimaryKeyConstraint(
                "dimension", "bucket", "value", *DIMENSIONS, name=op.f(f"pk_{table}")
            ),
            sqlite_with_rowid=False,
        )
    connection = op.get_bind()
    dialect = connection.dialect.name
    stored = connection.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
    if stored:
        log.warning("rolling up the sessions and workflows of %s stored events", stored)
    dims = ", ".join(f"COALESCE({d}, '')" for d in DIMENSIONS)
    for name in IDS:
        op.execute(
            f"INSERT INTO spend_ids_hourly ({KEYS}, {', '.join(MEASURES)}) "
            f"SELECT '{name}', {_truncated('ts', 'hour', dialect)}, {name}, {dims}, count(*), "
            "COALESCE(SUM(cost_pusd / 1000000), 0), COALESCE(SUM(cost_pusd % 1000000), 0) "
            f"FROM events WHERE {name} IS NOT NULL AND {name} <> '' GROUP BY {GROUPS}"
        )
    until = connection.execute(
        sa.text("SELECT until FROM spend_sealed WHERE name = 'spend_daily'")
    ).scalar()
    if until is not None:  # the days spend_daily holds
        sums = ", ".join(f"SUM({m})" for m in MEASURES)
        columns = ", ".join(("dimension", _truncated("bucket", "day", dialect), "value"))
        connection.execute(
            sa.text(
                f"INSERT INTO spend_ids_daily ({KEYS}, {', '.join(MEASURES)}) "
                f"SELECT {columns}, {', '.join(DIMENSIONS)}, {sums} FROM spend_ids_hourly "
                f"WHERE bucket < :until GROUP BY {GROUPS}"
            ),
            {"until": until},
        )
        connection.execute(
            sa.text("INSERT INTO spend_sealed (name, until) VALUES ('spend_ids_daily', :until)"),
            {"until": until},
        )
    _marked(TABLES)


def _marked(tables: tuple[str, ...]) -> None:
    """Every slot of ``tables`` gets one new token in ``spend_marks`` (the cache reloads it)."""
    token = uuid.uuid4().hex
    for table in tables:
        op.execute(
            sa.text(
                "INSERT INTO spend_marks (name, bucket, token) "
                f"SELECT CAST('{table}' AS TEXT), bucket, CAST(:token AS TEXT) FROM {table} "
                "GROUP BY bucket"
            ).bindparams(token=token)
        )


def downgrade() -> None:
    op.execute("DELETE FROM spend_sealed WHERE name = 'spend_ids_daily'")
    op.execute("DELETE FROM spend_marks WHERE name IN ('spend_ids_hourly', 'spend_ids_daily')")
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table("spend_pending") as batch:
        for name in reversed(IDS):
            batch.drop_column(name)
