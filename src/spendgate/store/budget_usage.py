"""What stored events used under one budget scope since a moment (to rebuild counters at start-up).

A scope is the canonical mapping of ``spendgate.budgets.model`` (field -> value, or a prefix
ending in ``*``); ``model`` matches the requested id, the id sent to AWS or the base model.
Rejected calls (denied, bad key, ...) never ran and are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, case, func, or_, select

from spendgate.store.db import Store
from spendgate.store.schema import events

MODEL_COLUMNS = ("requested_model", "model_id", "base_model")


class Usage(NamedTuple):
    requests: int
    input_tokens: int  # every input-side token (cache reads and writes included)
    output_tokens: int
    cost: Decimal  # of priced events
    unpriced_input_tokens: int  # of unpriced events (the caller prices them conservatively)
    unpriced_output_tokens: int


def usage_since(store: Store, scope: Mapping[str, str], since: datetime) -> Usage:
    inputs = (
        events.c.input_tokens
        + events.c.cache_read_tokens
        + events.c.cache_write_5m_tokens
        + events.c.cache_write_1h_tokens
    )
    unpriced = events.c.cost_pusd.is_(None)
    query = select(
        func.count(),
        func.coalesce(func.sum(inputs), 0),
        func.coalesce(func.sum(events.c.output_tokens), 0),
        func.coalesce(func.sum(events.c.cost_pusd), 0),
        func.coalesce(func.sum(_when(unpriced, inputs)), 0),
        func.coalesce(func.sum(_when(unpriced, events.c.output_tokens)), 0),
    ).where(
        events.c.ts >= since,
        events.c.status != "rejected",
        *(_condition(name, value) for name, value in scope.items()),
    )
    with store.engine.connect() as connection:
        row = connection.execute(query).one()
    return Usage(
        int(row[0]),
        int(row[1]),
        int(row[2]),
        Decimal(row[3]),  # the column type turns summed picodollars back into dollars
        int(row[4]),
        int(row[5]),
    )


def _when(condition: ColumnElement[bool], value: ColumnElement[int]) -> ColumnElement[int]:
    return case((condition, value), else_=0)


def _condition(name: str, value: str) -> ColumnElement[bool]:
    columns = MODEL_COLUMNS if name == "model" else (name,)
    tests = [_test(events.c[column], value) for column in columns]
    return or_(*tests) if len(tests) > 1 else and_(*tests)


def _test(column: ColumnElement[str], value: str) -> ColumnElement[bool]:
    if value.endswith("*"):
        return column.startswith(value[:-1], autoescape=True)
    return column == value
