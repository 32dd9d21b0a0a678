"""id rollups hold every measure

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 23:10:00.000000

``spend_ids_hourly`` and ``spend_ids_daily`` gain every rollup measure besides requests and
spend (errors, tokens, error cost, latency sums and histogram), so a question that groups by
``session_id`` or ``workflow_id`` is summed from them instead of a month of raw events.

Their rows are rolled up again here with plain SQL (frozen, like the column lists): every
stored event with an id into ``spend_ids_hourly``, less the rows still pending a fold (the
fold adds those), then the days ``spend_ids_daily`` was sealed to from the hourly rows; every
slot of both gets a new token in ``spend_marks``.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

# 0006's frozen names (a revision never changes): the dimensions, id fields, tables, the key
# columns and their GROUP BY ordinals, the truncation SQL and the marking of every slot.
from spendgate.store.migrations.versions.v0006_id_rollups import (
    DIMENSIONS,
    GROUPS,
    IDS,
    KEYS,
    TABLES,
    _marked,
    _truncated,
)

log = logging.getLogger(__name__)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BOUNDS: tuple[int, ...] = (100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 4500, 6500)
BOUNDS += (10_000, 15_000, 25_000, 45_000)
BUCKETS = tuple(f"latency_h{i:02d}" for i in range(len(BOUNDS) + 1))
TOKENS: tuple[str, ...] = ("input_tokens", "output_tokens", "cache_read_tokens")
TOKENS += ("cache_write_5m_tokens", "cache_write_1h_tokens")
ADDED: tuple[str, ...] = ("errors", "unpriced", *TOKENS, "error_cost_micro", "error_cost_pico")
ADDED += ("latency_count", "latency_sum_ms", *BUCKETS)
MEASURES: tuple[str, ...] = ("requests", "errors", "unpriced", *TOKENS, "cost_micro", "cost_pico")
MEASURES += ("error_cost_micro", "error_cost_pico", "latency_count", "latency_sum_ms", *BUCKETS)


def _event_sums() -> str:
    """Each measure over ``events`` rows, named, in ``MEASURES`` order (as the fold sums
    them)."""
    failed = "status <> 'ok'"
    cost = "cost_pusd / 1000000", "cost_pusd % 1000000"
    sums = ["count(*)", f"count(*) FILTER (WHERE {failed})"]
    sums += ["count(*) FILTER (WHERE unpriced = true)"]
    sums += [f"COALESCE(SUM({name}), 0)" for name in TOKENS]
    sums += [f"COALESCE(SUM({part}), 0)" for part in cost]
    sums += [f"COALESCE(SUM({part}) FILTER (WHERE {failed}), 0)" for part in cost]
    sums += ["count(latency_ms)", "COALESCE(SUM(latency_ms), 0)"]
    lows, highs = (None, *BOUNDS), (*BOUNDS, None)
    for low, high in zip(lows, highs, strict=True):
        parts = [] if low is None else [f"latency_ms >= {low}"]
        parts += ["latency_ms IS NOT NULL"] if high is None else [f"latency_ms < {high}"]
        sums.append(f"count(*) FILTER (WHERE {' AND '.join(parts)})")
    assert len(sums) == len(MEASURES)
    return ", ".join(f"{total} AS {name}" for total, name in zip(sums, MEASURES, strict=True))


def upgrade() -> None:
    for table in TABLES:  # plain ALTER TABLE on both engines (SQLite 3.35+ drops columns too)
        for name in ADDED:
            column = sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            op.add_column(table, column)
    connection = op.get_bind()
    dialect = connection.dialect.name
    stored = connection.execute(sa.text("SELECT count(*) FROM spend_ids_hourly")).scalar_one()
    if not stored:
        return
    log.warning("rolling up the sessions and workflows again, with every measure")
    for table in TABLES:
        op.execute(f"DELETE FROM {table}")
    dims = ", ".join(f"COALESCE({d}, '') AS {d}" for d in DIMENSIONS)
    columns = ", ".join(MEASURES)
    totals = ", ".join(f"SUM({m})" for m in MEASURES)
    negated = ", ".join(f"-{m}" for m in MEASURES)
    for name in IDS:
        # The events with this id, less what is pending (the next fold adds it).
        events = (
            f"SELECT '{name}' AS dimension, {_truncated('ts', 'hour', dialect)} AS bucket, "
            f"{name} AS value, {dims}, "
            f"{_event_sums()} FROM events WHERE {name} IS NOT NULL AND {name} <> '' "
            f"GROUP BY {GROUPS}"
        )
        pending = (
            f"SELECT '{name}', bucket, {name}, {', '.join(DIMENSIONS)}, {negated} "
            f"FROM spend_pending WHERE {name} <> ''"
        )
        op.execute(
            f"INSERT INTO spend_ids_hourly ({KEYS}, {columns}) "
            f"SELECT {KEYS}, {totals} FROM ({events} UNION ALL {pending}) AS summed "
            f"GROUP BY {GROUPS} HAVING SUM(requests) <> 0"
        )
    until = connection.execute(
        sa.text("SELECT until FROM spend_sealed WHERE name = 'spend_ids_daily'")
    ).scalar()
    if until is not None:  # the days spend_ids_daily was sealed to
        day = ", ".join(("dimension", _truncated("bucket", "day", dialect), "value"))
        connection.execute(
            sa.text(
                f"INSERT INTO spend_ids_daily ({KEYS}, {columns}) "
                f"SELECT {day}, {', '.join(DIMENSIONS)}, {totals} FROM spend_ids_hourly "
                f"WHERE bucket < :until GROUP BY {GROUPS}"
            ),
            {"until": until},
        )
    for table in TABLES:
        op.execute(f"DELETE FROM spend_marks WHERE name = '{table}'")
    _marked(TABLES)


def downgrade() -> None:
    for table in TABLES:
        for name in reversed(ADDED):
            op.drop_column(table, name)
