"""Budget definitions at rest: the ``budgets`` table ⇄ ``spendgate.budgets.model.Budget``.

Functions take a ``Store`` (they run on its engine, one transaction each, and are thread-safe
like its methods). Names are unique: creating or renaming a budget to a name already taken is a
``ConfigError`` that names the budget holding it, and so is reusing an id. The database enforces
both, so two replicas racing to create the same name cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from spendgate.budgets.model import Action, Budget, Metric, Window, budget_to_dict
from spendgate.errors import ConfigError
from spendgate.store.db import Store
from spendgate.store.schema import budgets
from spendgate.store.types import as_utc


def budget_to_row(budget: Budget) -> dict[str, Any]:
    """The ``budgets`` row for ``budget`` (its times must be set): its JSON form, with the scope
    and thresholds as JSON values rather than text, and its times."""
    if budget.created_at is None or budget.updated_at is None:
        raise ValueError("a stored budget needs created_at and updated_at")
    row = budget_to_dict(budget)
    del row["rate_limit"]  # derived, not stored
    return row | {"created_at": as_utc(budget.created_at), "updated_at": as_utc(budget.updated_at)}


def row_to_budget(row: Mapping[Any, Any]) -> Budget:
    """The ``Budget`` a ``budgets`` row holds."""
    return Budget(
        id=row["id"],
        name=row["name"],
        scope=dict(row["scope"]),
        metric=Metric(row["metric"]),
        window=Window(row["window"]),
        limit=Decimal(row["limit"]),
        action=Action(row["action"]),
        downgrade_to=row["downgrade_to"],
        thresholds=tuple(row["thresholds"]),
        timezone=row["timezone"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def create_budget(store: Store, budget: Budget, *, now: datetime | None = None) -> Budget:
    """Store a new budget and return it as stored. ``created_at`` is the budget's own, else
    ``now`` (default: the current time); ``updated_at`` likewise. ``ConfigError`` if its name or
    id is taken."""
    created = budget.created_at or now or datetime.now(UTC)
    stored = replace(budget, created_at=created, updated_at=budget.updated_at or created)
    row = budget_to_row(stored)
    try:
        with store.engine.begin() as connection:
            connection.execute(budgets.insert(), row)
    except IntegrityError:
        raise _conflict(store, stored) from None
    return stored


def get_budget(store: Store, budget_id: str) -> Budget | None:
    """The budget with id ``budget_id``, or None."""
    with store.engine.connect() as connection:
        return _find(connection, budgets.c.id == budget_id)


def list_budgets(store: Store) -> list[Budget]:
    """Every budget, oldest first."""
    query = select(budgets).order_by(budgets.c.created_at, budgets.c.id)
    with store.engine.connect() as connection:
        return [row_to_budget(row) for row in connection.execute(query).mappings()]


def update_budget(store: Store, budget: Budget, *, now: datetime | None = None) -> bool:
    """Replace the stored budget with id ``budget.id`` by ``budget`` (``created_at`` is kept;
    ``updated_at`` becomes ``now``, default the current time). False if there is no such
    budget; ``ConfigError`` if the new name is another budget's."""
    stamp = now or datetime.now(UTC)
    row = budget_to_row(replace(budget, created_at=stamp, updated_at=stamp))
    del row["id"], row["created_at"]
    query = update(budgets).where(budgets.c.id == budget.id).values(**row)
    try:
        with store.engine.begin() as connection:
            return bool(connection.execute(query).rowcount == 1)
    except IntegrityError:
        raise _conflict(store, budget) from None


def delete_budget(store: Store, budget_id: str) -> bool:
    """Delete budget ``budget_id``; False if there is no such budget."""
    with store.engine.begin() as connection:
        return bool(connection.execute(delete(budgets).where(budgets.c.id == budget_id)).rowcount)


def _find(connection: Connection, condition: Any) -> Budget | None:
    row = connection.execute(select(budgets).where(condition)).mappings().first()
    return None if row is None else row_to_budget(row)


def _conflict(store: Store, budget: Budget) -> ConfigError:
    """The error for a write that broke a unique constraint: which one, and held by whom."""
    with store.engine.connect() as connection:
        holder = _find(connection, budgets.c.name == budget.name)
        if holder is not None and holder.id != budget.id:
            return ConfigError(
                f"a budget named {budget.name!r} already exists ({holder.id}): "
                "choose another name or update that one"
            )
        if _find(connection, budgets.c.id == budget.id) is not None:
            return ConfigError(f"a budget with id {budget.id!r} already exists")
    return ConfigError(f"budget {budget.id!r} conflicts with a budget stored at the same time")
