"""slot tokens for the in-memory rollup cache

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 16:40:00.000000

``spend_marks``: one token per rollup and slot (an hour of an hourly rollup, a day of a daily
one), renewed by the writer whenever it changes that slot's rows, so ``store.rollup_cache`` can
tell a slot it holds from a changed one. Every slot already stored gets a token here.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ROLLUPS = (
    *("spend_facets_hourly", "spend_facets_daily", "spend_hourly_org", "spend_hourly"),
    *("spend_daily_models", "spend_daily_org", "spend_daily_users", "spend_pairs_daily"),
    "spend_daily",
)


def upgrade() -> None:
    op.create_table(
        "spend_marks",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", "bucket", name=op.f("pk_spend_marks")),
    )
    token = uuid.uuid4().hex
    for name in ROLLUPS:
        op.execute(
            sa.text(
                "INSERT INTO spend_marks (name, bucket, token) "
                f"SELECT CAST('{name}' AS TEXT), bucket, CAST(:token AS TEXT) FROM {name} "
                "GROUP BY bucket"
            ).bindparams(token=token)
        )


def downgrade() -> None:
    op.drop_table("spend_marks")
