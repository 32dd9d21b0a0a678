"""Hand-made events with hand-computed answers (see each test for the arithmetic).

    id  time (2026-03-..)  dept/project  model    status   tokens in/out/cache   cost      ms
    e1  10 10:05           eng/alpha     sonnet   ok       1000/200/cr500,cw100  0.012345678901
                                                                                           300 s1
    e2  10 10:40           eng/alpha     sonnet   ok       2000/100              0.02     1200 s1
    e3  10 11:15           eng/beta      nova     error      10/0                0          50
    e4  10 11:20           sales/gamma   nova     partial   400/50               0.005    2500 s2 w1
    e5  11 09:00           eng/alpha     mystery  ok        100/10               unpriced    -
    e6  12 23:59:59        sales/gamma   sonnet   ok       5000/900              3.3       700 s3 w1
    e7-e9 13 12:00         (none)        sonnet   ok          1/0                9000000   100 each

The three $9M events sum to $27M: more picodollars than a signed 64-bit integer holds, so a
plain SUM of picodollars would overflow on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from spendgate.events import Event

SONNET = ("anthropic.claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
NOVA = ("amazon.nova-lite", "amazon.nova-lite-v1:0")
MYSTERY = ("acme.mystery", "acme.mystery-v1:0")
DAY = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday
SINCE, UNTIL = DAY, DAY + timedelta(days=4)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def event(ts: datetime, model: tuple[str, str], cost: str | None, **fields: Any) -> Event:
    base, model_id = model
    return Event(
        ts=ts,
        base_model=base,
        model_id=model_id,
        provider=base.split(".")[0],
        region="us-east-1",
        operation="Converse",
        cost_usd=None if cost is None else Decimal(cost),
        unpriced=cost is None,
        **fields,
    )


def events() -> list[Event]:
    eng_alpha = {"department": "eng", "project": "alpha", "agent": "coder", "user_id": "ann"}
    made = [
        event(
            at(0, 10, 5),
            SONNET,
            "0.012345678901",
            **eng_alpha,
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=500,
            cache_write_5m_tokens=100,
            latency_ms=300,
            session_id="s1",
        ),
        event(
            at(0, 10, 40),
            SONNET,
            "0.02",
            **eng_alpha,
            input_tokens=2000,
            output_tokens=100,
            latency_ms=1200,
            session_id="s1",
        ),
        event(
            at(0, 11, 15),
            NOVA,
            "0",
            department="eng",
            project="beta",
            input_tokens=10,
            latency_ms=50,
            status="error",
            error_type="ThrottlingException",
        ),
        event(
            at(0, 11, 20),
            NOVA,
            "0.005",
            department="sales",
            project="gamma",
            input_tokens=400,
            output_tokens=50,
            latency_ms=2500,
            status="partial",
            partial=True,
            session_id="s2",
            workflow_id="w1",
        ),
        event(at(1, 9), MYSTERY, None, **eng_alpha, input_tokens=100, output_tokens=10),
        event(
            at(2, 23, 59, 59),
            SONNET,
            "3.3",
            department="sales",
            project="gamma",
            input_tokens=5000,
            output_tokens=900,
            latency_ms=700,
            session_id="s3",
            workflow_id="w1",
        ),
        *(event(at(3, 12), SONNET, "9000000", input_tokens=1, latency_ms=100) for _ in range(3)),
    ]
    for number, made_event in enumerate(made, start=1):
        made_event.event_id = f"e{number}"  # the same ids every call: a replay is a duplicate
    return made
