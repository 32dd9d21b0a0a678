"""CLI fixtures: a SQLite store holding a few hand-made events, which ``spendgate report`` and
``spendgate export`` read (test files that need another store define their own ``db``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from spendgate.events import Event
from spendgate.store import open_store

DAY = datetime(2026, 3, 10, tzinfo=UTC)


def make_events() -> list[Event]:
    """alpha: 2 × $0.125 (sonnet) on day 1; beta: $0.5 (nova) on day 2, one unpriced call."""
    sonnet = {
        "base_model": "anthropic.claude-sonnet-4-5",
        "model_id": "anthropic.claude-sonnet-4-5",
    }
    nova = {"base_model": "amazon.nova-lite", "model_id": "amazon.nova-lite-v1:0"}
    return [
        Event(ts=DAY + timedelta(hours=9), project="alpha", cost_usd=Decimal("0.125"),
              input_tokens=1000, output_tokens=250, latency_ms=400, **sonnet),
        Event(ts=DAY + timedelta(hours=10), project="alpha", cost_usd=Decimal("0.125"),
              input_tokens=1000, output_tokens=250, latency_ms=400, **sonnet),
        Event(ts=DAY + timedelta(days=1, hours=3), project="beta", cost_usd=Decimal("0.5"),
              input_tokens=4000, status="error", **nova),
        Event(ts=DAY + timedelta(days=1, hours=4), project="beta", unpriced=True, **nova),
        Event(ts=DAY + timedelta(days=5), project="beta", cost_usd=Decimal("9"), **nova),
    ]  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A SQLite store with ``make_events()`` in it."""
    url = f"sqlite:///{tmp_path}/spend.db"
    store = open_store(url)
    store.insert_events(make_events())
    store.close()
    return url
