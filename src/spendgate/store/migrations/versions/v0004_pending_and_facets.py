"""pending rollup rows, facet and pair rollups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:20:00.000000

``spend_pending``: the hourly sums of the newest events, appended in each insert transaction
and folded into the rollups every few seconds by the writer. ``spend_facets_hourly`` and
``spend_facets_daily``: one row per hour (day), dimension and value, so a question that names
one field reads a few rows per slot; ``spend_pairs_daily`` the same for two fields (every pair
no smaller rollup keeps together). ``spend_sealed``: how far each daily rollup (each pair)
has been filled from the finer ones. Events stored before this revision are rolled up once the
database reaches the head (``store.migrate.upgrade`` rebuilds every rollup with the head's
SQL; until 0006 this migration ran that rebuild itself, which broke once later revisions
added to the rollups).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DIMENSIONS = (
    *("department", "project", "agent", "user_id", "application", "environment", "cost_center"),
    *("key_id", "model_id", "base_model", "provider", "model_family", "operation", "region"),
    *("status", "source"),
)
MEASURES = (
    *("requests", "errors", "unpriced", "input_tokens", "output_tokens", "cache_read_tokens"),
    *("cache_write_5m_tokens", "cache_write_1h_tokens", "cost_micro", "cost_pico"),
    *("error_cost_micro", "error_cost_pico", "latency_count", "latency_sum_ms"),
    *(f"latency_h{i:02d}" for i in range(16)),
)


FACETS = {
    "spend_facets_hourly": ("value",),
    "spend_facets_daily": ("value",),
    "spend_pairs_daily": ("value", "value_2"),
}


def _measures() -> list[sa.Column[int]]:
    return [sa.Column(m, sa.BigInteger(), nullable=False) for m in MEASURES]


def upgrade() -> None:
    op.create_table(
        "spend_pending",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(d, sa.Text(), nullable=False) for d in DIMENSIONS),
        *_measures(),
    )
    op.create_index(op.f("ix_spend_pending_bucket"), "spend_pending", ["bucket"])
    op.create_table(
        "spend_sealed",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_spend_sealed")),
    )
    for name, values in FACETS.items():
        op.create_table(
            name,
            sa.Column("dimension", sa.Text(), nullable=False),
            sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
            *(sa.Column(v, sa.Text(), nullable=False) for v in values),
            *_measures(),
            sa.PrimaryKeyConstraint("dimension", "bucket", *values, name=op.f(f"pk_{name}")),
            sqlite_with_rowid=False,
        )


def downgrade() -> None:
    for name in (*reversed(FACETS), "spend_sealed", "spend_pending"):
        op.drop_table(name)
