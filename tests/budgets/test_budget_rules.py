"""Budget definitions, windows, matching and worst-case estimates (the pure core)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from spendgate.budgets.estimate import Rates, Tokens, actual_use, requested_max_output, worst_case
from spendgate.budgets.matching import BudgetIndex, Subject
from spendgate.budgets.model import (
    Action,
    Budget,
    Metric,
    Window,
    budget_from_dict,
    budget_to_dict,
    parse_scope,
)
from spendgate.budgets.status import BudgetStatus, amount_text
from spendgate.budgets.windows import SLOTS, calendar_period, span
from spendgate.errors import ConfigError
from spendgate.pricing import price_for

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # a DST change day in Europe
RATES = Rates(Decimal(15), Decimal(75))


def budget(**fields: object) -> Budget:
    base: dict[str, object] = {"name": "b", "metric": "cost_usd", "window": "calendar_month"}
    return budget_from_dict({"limit": "100", **base, **fields})


def test_a_budget_round_trips_through_its_json_form() -> None:
    b = budget(scope="department=sales,model=anthropic.*", thresholds="80,50", action="alert")
    doc = budget_to_dict(b)
    assert doc["scope"] == {"department": "sales", "model": "anthropic.*"}
    assert doc["thresholds"] == [50, 80]
    assert doc["limit"] == "100"
    assert budget_from_dict({k: v for k, v in doc.items() if k != "rate_limit"}) == b


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metric": "dollars"}, "metric 'dollars' is not one of"),
        ({"window": "fortnight"}, "window 'fortnight' is not one of"),
        ({"limit": "-3"}, "positive"),
        ({"limit": "ten"}, "not a number"),
        ({"metric": "requests", "limit": "2.5"}, "whole number"),
        ({"scope": "planet=mars"}, "unknown scope field 'planet'"),
        ({"scope": "project"}, "field=value"),
        ({"scope": "project=a,project=b"}, "given twice"),
        ({"action": "downgrade"}, "downgrade_to goes with action downgrade"),
        ({"downgrade_to": "amazon.nova-micro-v1:0"}, "downgrade_to goes with"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"thresholds": "fifty"}, "whole percentages"),
        ({"colour": "red"}, "unknown budget field"),
        ({"scope": ["department=sales"]}, "a scope is"),
        ({"thresholds": 5}, "alert thresholds are"),
        ({"action": "downgrade", "downgrade_to": 3}, "downgrade_to must be a model id"),
        ({"name": "   "}, "non-blank"),
    ],
)
def test_bad_definitions_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        budget(**fields)


def test_scope_aliases_map_to_event_fields() -> None:
    assert parse_scope({"key_id": "k2"}) == {"key_id": "k2"}  # the JSON form reads back
    assert parse_scope("user=alice, key=k1, session=s") == {
        "user_id": "alice",
        "key_id": "k1",
        "session_id": "s",
    }


def test_rate_limits_are_token_or_request_budgets_over_an_hour_or_less() -> None:
    assert budget(metric="requests", window="minute", limit=10).is_rate_limit
    assert budget(metric="total_tokens", window="hour", limit=10).is_rate_limit
    assert not budget(metric="requests", window="day", limit=10).is_rate_limit
    assert not budget(metric="cost_usd", window="minute").is_rate_limit


def test_calendar_periods_follow_the_named_time_zone() -> None:
    # 00:30 UTC on 29 March 2026 is 01:30 in Paris (CET, +1); the day starts at 23:00 UTC
    start, end = calendar_period(Window.CALENDAR_DAY, "Europe/Paris", NOW)
    assert start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # a 23-hour day (CEST from 02:00)
    start, end = calendar_period(Window.CALENDAR_WEEK, "UTC", NOW)  # a Sunday
    assert (start, end) == (datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC))
    start, end = calendar_period(Window.CALENDAR_MONTH, "UTC", datetime(2026, 12, 31, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_rolling_windows_are_sixty_slots() -> None:
    b = budget(metric="requests", window="hour", limit=5)
    where = span(b, NOW)
    assert where.slots == SLOTS
    assert where.bucket == int(NOW.timestamp()) // 60
    assert NOW - where.start < timedelta(hours=1)
    assert where.slot_end(where.bucket, b) == NOW.replace(minute=31) + timedelta(minutes=59)


def test_the_index_matches_exact_prefix_and_model_scopes() -> None:
    budgets = [budget(id=f"p{i}", name=f"p{i}", scope=f"project=p{i}") for i in range(1000)]
    budgets += [
        budget(id="global", name="global"),
        budget(id="sales-claude", name="sc", scope="department=sales,model=anthropic.*"),
        budget(id="nova", name="nova", scope="model=amazon.nova-lite-v1:0"),
        budget(id="off", name="off", scope="project=p7", enabled=False),
    ]
    index = BudgetIndex(budgets)
    subject = Subject(
        {"project": "p7", "department": "sales"},
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
        ),
    )
    assert sorted(b.id for b in index.match(subject)) == ["global", "p7", "sales-claude"]
    nova = Subject({"project": "p8"}, ("us.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0"))
    assert sorted(b.id for b in index.match(nova)) == ["global", "nova", "p8"]
    assert [b.id for b in index.match(Subject({}, ()))] == ["global"]


def test_the_requested_maximum_output_is_found_in_every_body_family() -> None:
    assert requested_max_output({"inferenceConfig": {"maxTokens": 300}}) == 300
    assert requested_max_output({"max_tokens": 1024, "messages": []}) == 1024
    assert requested_max_output({"max_gen_len": 512}) == 512
    assert requested_max_output({"textGenerationConfig": {"maxTokenCount": 77}}) == 77
    assert requested_max_output({"inferenceConfig": {"max_new_tokens": 9}}) == 9
    assert requested_max_output({"max_tokens": True}) is None
    assert requested_max_output({"messages": []}) is None


def test_the_worst_case_is_priced_and_an_unpriced_model_is_never_free() -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    price = price_for("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", at).price
    assert price is not None
    use = worst_case(1000, 2000, price, RATES)
    assert use.cost == Decimal(1000) * price.input / 10**6 + Decimal(2000) * price.output / 10**6
    cached = worst_case(1000, 2000, price, RATES, cache_points=True)
    assert cached.cost > use.cost
    unpriced = worst_case(1000, 2000, None, RATES)
    assert not unpriced.priced
    assert unpriced.cost == Decimal("0.165")  # 1000 x $15/M + 2000 x $75/M
    settled = actual_use(Tokens(10, 20, cache_read_tokens=5), None, RATES)
    assert settled.input_tokens == 15
    assert settled.cost == Decimal(15 * 15 + 20 * 75) / 10**6
    assert settled.of(Metric.REQUESTS) == 1
    assert settled.of(Metric.TOTAL_TOKENS) == 35


def test_status_reports_remaining_percent_and_crossed_thresholds() -> None:
    b = budget(limit="10", thresholds="50,80,100")
    start, end = calendar_period(Window.CALENDAR_MONTH, "UTC", NOW)
    status = BudgetStatus(b, Decimal("8.5"), Decimal("1"), start, end, Decimal(9), NOW)
    assert status.remaining == Decimal("0.5")
    assert status.percent == Decimal("85.0")
    assert status.thresholds_crossed == (50, 80)
    assert amount_text(b, Decimal("8.5")) == "$8.50"
    assert amount_text(b, Decimal("0.0004")) == "$0.0004"
    assert amount_text(budget(metric="requests", limit=5), Decimal(1200)) == "1,200 requests"
    assert b.action is Action.BLOCK
