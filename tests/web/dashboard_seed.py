"""A store with hand-made events around a fixed "now", and the totals they must show.

now = 2025-11-15 12:30 UTC. Costs (each event's cost_usd):

    today 10:00    eng/alpha/coder   sonnet     10 × 0.0125 = 0.125
    today 10:30    sales/beta/writer nova-lite   5 × 0.006  = 0.030
    today 11:00    eng/alpha/coder   sonnet      1 × 0.05   = 0.050  (partial: error waste)
    today 11:30    research/gamma    mystery     1 × unpriced (no cost)
    yesterday 9:00 eng/alpha/coder   sonnet      4 × 0.025  = 0.100
    2025-11-03     sales/beta/writer nova-lite  20 × 0.002  = 0.040
    2025-10-10     eng/alpha/coder   sonnet      2 × 0.0575 = 0.115

So: spend today 0.205 vs yesterday-so-far 0.100 (+105.0 %); month to date 0.345 vs the same
span of October 0.115 (+200.0 %); error waste 0.05 (1 call); sales in the last 30 days 0.070,
engineering 0.275; 1 unpriced call today. ``served_dashboard`` serves the dashboard over such
a store, with the three ``BUDGETS``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from starlette.applications import Starlette

from spendgate.budgets.model import budget_from_dict
from spendgate.events import Event
from spendgate.settings import GatewaySettings
from spendgate.store.budgets import create_budget
from spendgate.store.db import Store, open_store
from spendgate.store.schema import metadata
from spendgate.web.dashboard import dashboard_routes

from helpers import serve

NOW = datetime(2025, 11, 15, 12, 30, tzinfo=UTC)
TOKEN = "test-admin-token-<&>"  # characters that must survive forms and never be echoed
SONNET = ("anthropic.claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
NOVA = ("amazon.nova-lite", "amazon.nova-lite-v1:0")
MYSTERY = ("acme.mystery", "acme.mystery-v1:0")
ENG = {"department": "engineering", "project": "alpha", "agent": "coder", "user_id": "ann"}
SALES = {"department": "sales", "project": "beta", "agent": "writer", "user_id": "bob"}
# budgets: engineering spent 0.275 this month, sales 0.03 today; 17 calls today
BUDGETS = [
    {
        "name": "eng monthly",
        "scope": {"department": "engineering"},
        "metric": "cost_usd",
        "window": "calendar_month",
        "limit": "0.50",
    },
    {
        "name": "sales <b>daily</b>",
        "scope": {"department": "sales"},
        "metric": "cost_usd",
        "window": "calendar_day",
        "limit": "0.02",
        "action": "alert",
    },
    {"name": "all calls today", "metric": "requests", "window": "calendar_day", "limit": "1000"},
]


RESEARCH = {"department": "research", "project": "gamma", "agent": "<script>x</script>"}


def _events(
    at: datetime,
    count: int,
    cost: str | None,
    model: tuple[str, str],
    who: dict[str, str],
    **extra: object,
) -> list[Event]:
    base, model_id = model
    return [
        Event(
            ts=at + timedelta(seconds=n),
            operation="Converse",
            model_id=model_id,
            base_model=base,
            provider=base.split(".")[0],
            region="us-east-1",
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=500 if base == SONNET[0] else 0,
            latency_ms=300,
            cost_usd=None if cost is None else Decimal(cost),
            unpriced=cost is None,
            **who,
            **extra,
        )
        for n in range(count)
    ]


def seed(store: Store) -> None:
    today = NOW.replace(hour=0, minute=0)
    events = [
        *_events(today.replace(hour=10), 10, "0.0125", SONNET, ENG),
        *_events(today.replace(hour=10, minute=30), 5, "0.006", NOVA, SALES),
        *_events(today.replace(hour=11), 1, "0.05", SONNET, ENG, status="partial", partial=True),
        *_events(today.replace(hour=11, minute=30), 1, None, MYSTERY, RESEARCH),
        *_events(today - timedelta(days=1) + timedelta(hours=9), 4, "0.025", SONNET, ENG),
        *_events(datetime(2025, 11, 3, 8, tzinfo=UTC), 20, "0.002", NOVA, SALES),
        *_events(datetime(2025, 10, 10, 8, tzinfo=UTC), 2, "0.0575", SONNET, ENG),
    ]
    store.insert_events(events)


def seeded_store(where: Path | str) -> Store:
    """A store (a SQLite file in folder ``where``, or the database URL ``where``) holding
    exactly the events and budgets above."""
    url = where if isinstance(where, str) else f"sqlite:///{where / 'spendgate.db'}"
    store = open_store(url)
    with store.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    seed(store)
    for doc in BUDGETS:
        create_budget(store, budget_from_dict(doc), now=NOW)
    return store


@contextmanager
def served_dashboard(where: Path | str, token: str | None = TOKEN) -> Iterator[str]:
    """The dashboard over ``seeded_store(where)`` on a real socket; yields its base URL."""
    store = seeded_store(where)
    settings = GatewaySettings(admin_token=token)
    app = Starlette(routes=dashboard_routes(store, settings, clock=lambda: NOW))
    try:
        with serve(app) as url:
            yield url
    finally:
        store.close()
