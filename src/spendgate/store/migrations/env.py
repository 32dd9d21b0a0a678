"""Alembic environment: runs on the connection ``spendgate.store.migrate`` hands over."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.types import TypeDecorator

from spendgate.store.schema import metadata


def render_item(kind: str, obj: Any, _context: Any) -> str | Literal[False]:
    """Write spendgate's column types as the plain SQLAlchemy type they store, so a migration
    script never imports application code that may change after it was written."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs via table copies
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode() or not isinstance(connection, Connection):
        raise RuntimeError(
            "spendgate migrations run online through spendgate.store.migrate (upgrade, "
            "downgrade, new_revision), which pass the connection; there is no alembic.ini"
        )
    run_migrations(connection)


main()
