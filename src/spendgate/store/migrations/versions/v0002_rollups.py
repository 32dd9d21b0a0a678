"""spend rollups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:30:00.000000

``spend_hourly`` and ``spend_daily`` (every dimension) and the smaller ``spend_*_org``,
``spend_daily_models`` and ``spend_daily_users``: additive spend measures per hour (day) and
combination of dimensions, kept by the event writer (see ``spendgate.store.rollups``). The
column lists are frozen here on purpose. Events stored before this revision are rolled up by
0004, which rebuilds every rollup with the current SQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
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


ORG = (
    *("department", "project", "agent", "application", "environment", "cost_center"),
    *("base_model", "provider", "model_family"),
)
MODELS = (
    *("base_model", "provider", "model_family", "model_id", "region", "operation"),
    *("status", "source"),
)
USERS = ("user_id", "key_id", "department", "project", "base_model")
TABLES = {
    "spend_hourly": DIMENSIONS,
    "spend_daily": DIMENSIONS,
    "spend_hourly_org": ORG,
    "spend_daily_org": ORG,
    "spend_daily_models": MODELS,
    "spend_daily_users": USERS,
}


def _create(name: str, dimensions: tuple[str, ...]) -> None:
    op.create_table(
        name,
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(d, sa.Text(), nullable=False) for d in dimensions),
        *(sa.Column(m, sa.BigInteger(), nullable=False) for m in MEASURES),
        sa.PrimaryKeyConstraint("bucket", *dimensions, name=op.f(f"pk_{name}")),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    for name, dimensions in TABLES.items():
        _create(name, dimensions)


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
