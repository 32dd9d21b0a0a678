"""Budget definitions at rest, on SQLite and PostgreSQL: every field round-trips, names are
unique, updates and deletes say whether they found the budget."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from spendgate.budgets.model import Action, Budget, Metric, Window
from spendgate.errors import ConfigError
from spendgate.store import Store
from spendgate.store.budgets import (
    create_budget,
    delete_budget,
    get_budget,
    list_budgets,
    update_budget,
)
from spendgate.store.schema import budgets

T0 = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def sales_budget(**changes: object) -> Budget:
    budget = Budget(
        id="bgt_sales",
        name="sales on anthropic",
        metric=Metric.COST_USD,
        window=Window.CALENDAR_MONTH,
        limit=Decimal("1234.567890123456789"),
        scope={"department": "sales", "model": "anthropic.*"},
        action=Action.DOWNGRADE,
        downgrade_to="amazon.nova-lite-v1:0",
        thresholds=(25, 90, 150),
        timezone="Europe/Paris",
        enabled=False,
    )
    return replace(budget, **changes)


def test_every_field_round_trips(store: Store) -> None:
    budget = sales_budget()
    stored = create_budget(store, budget, now=T0)
    assert stored == replace(budget, created_at=T0, updated_at=T0)
    found = get_budget(store, "bgt_sales")
    assert found == stored
    assert found is not None
    assert found.limit == Decimal("1234.567890123456789")  # exact, not a float
    assert str(found.limit) == "1234.567890123456789"
    assert found.created_at is not None and found.created_at.tzinfo is not None
    assert found.created_at.utcoffset() == timedelta(0)
    assert list_budgets(store) == [stored]


def test_limit_and_scope_are_stored_as_text_and_json(store: Store) -> None:
    create_budget(store, sales_budget(), now=T0)
    with store.engine.connect() as connection:
        row = connection.execute(select(budgets)).mappings().one()
    assert row["limit"] == "1234.567890123456789"
    assert row["scope"] == {"department": "sales", "model": "anthropic.*"}
    assert row["thresholds"] == [25, 90, 150]


def test_defaults_round_trip_too(store: Store) -> None:
    plain = Budget(
        id="bgt_plain",
        name="everything",
        metric=Metric.REQUESTS,
        window=Window.MINUTE,
        limit=Decimal(600),
    )
    create_budget(store, plain, now=T0)
    assert get_budget(store, "bgt_plain") == replace(plain, created_at=T0, updated_at=T0)


def test_times_are_converted_to_utc_and_naive_ones_refused(store: Store) -> None:
    paris = T0.astimezone(timezone(timedelta(hours=2)))
    create_budget(store, sales_budget(), now=paris)
    found = get_budget(store, "bgt_sales")
    assert found is not None and found.created_at == T0 and found.created_at.tzinfo == UTC
    with pytest.raises(ValueError, match="timezone"):
        create_budget(store, sales_budget(id="bgt_naive", name="n"), now=T0.replace(tzinfo=None))


def test_a_duplicate_name_is_a_config_error_naming_the_holder(store: Store) -> None:
    create_budget(store, sales_budget(), now=T0)
    with pytest.raises(ConfigError, match=r"named 'sales on anthropic' already exists \(bgt_sales"):
        create_budget(store, sales_budget(id="bgt_other"), now=T0)
    assert [b.id for b in list_budgets(store)] == ["bgt_sales"]


def test_a_duplicate_id_is_a_config_error(store: Store) -> None:
    create_budget(store, sales_budget(), now=T0)
    with pytest.raises(ConfigError, match="id 'bgt_sales' already exists"):
        create_budget(store, sales_budget(name="another name"), now=T0)


def test_racing_creates_of_one_name_store_exactly_one(store: Store) -> None:
    def attempt(i: int) -> str:
        try:
            create_budget(store, sales_budget(id=f"bgt_race{i}"), now=T0)
        except ConfigError:
            return "refused"
        return "created"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert sorted(outcomes) == ["created"] + ["refused"] * 7
    assert len(list_budgets(store)) == 1


def test_list_is_oldest_first(store: Store) -> None:
    for i, name in enumerate(["c", "a", "b"]):
        create_budget(store, sales_budget(id=f"bgt_{name}", name=name), now=T0 + timedelta(i))
    assert [b.name for b in list_budgets(store)] == ["c", "a", "b"]


def test_update_replaces_every_field_but_keeps_created_at(store: Store) -> None:
    create_budget(store, sales_budget(), now=T0)
    changed = sales_budget(
        name="sales total",
        metric=Metric.TOTAL_TOKENS,
        window=Window.HOUR,
        limit=Decimal(50000),
        scope={"department": "sales"},
        action=Action.BLOCK,
        downgrade_to=None,
        thresholds=(80,),
        timezone="UTC",
        enabled=True,
    )
    later = T0 + timedelta(hours=3)
    assert update_budget(store, changed, now=later)
    assert get_budget(store, "bgt_sales") == replace(changed, created_at=T0, updated_at=later)


def test_update_of_an_unknown_budget_is_false(store: Store) -> None:
    assert not update_budget(store, sales_budget(id="bgt_nope"), now=T0)
    assert list_budgets(store) == []


def test_renaming_to_a_taken_name_is_a_config_error_and_changes_nothing(store: Store) -> None:
    create_budget(store, sales_budget(), now=T0)
    other = create_budget(store, sales_budget(id="bgt_two", name="two"), now=T0)
    with pytest.raises(ConfigError, match="named 'sales on anthropic' already exists"):
        update_budget(store, replace(other, name="sales on anthropic", enabled=True), now=T0)
    assert get_budget(store, "bgt_two") == other


def test_delete_says_whether_it_found_the_budget(store: Store) -> None:
    create_budget(store, sales_budget(), now=T0)
    assert delete_budget(store, "bgt_sales")
    assert not delete_budget(store, "bgt_sales")
    assert get_budget(store, "bgt_sales") is None
    # the name is free again
    create_budget(store, sales_budget(id="bgt_again"), now=T0)
    assert [b.id for b in list_budgets(store)] == ["bgt_again"]


def test_without_now_the_current_time_is_used(store: Store) -> None:
    before = datetime.now(UTC)
    stored = create_budget(store, sales_budget())
    assert stored.created_at is not None and before <= stored.created_at <= datetime.now(UTC)
    assert stored.updated_at == stored.created_at
