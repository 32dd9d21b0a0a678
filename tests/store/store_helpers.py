"""Helpers for the store tests: sample events, async waiting, and real outages."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from spendgate.events import Event

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_event(i: int = 0, **fields: Any) -> Event:
    """A plausible gateway event, ``i`` seconds after T0."""
    values: dict[str, Any] = {
        "ts": T0 + timedelta(seconds=i),
        "operation": "Converse",
        "model_id": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "base_model": "anthropic.claude-sonnet-4-5",
        "provider": "anthropic",
        "input_tokens": 1000 + i,
        "output_tokens": 200,
        "cost_usd": Decimal("0.006000000000"),
        "department": "research",
        "project": "atlas",
        "key_id": "key_abcdefgh",
    }
    values.update(fields)
    return Event(**values)


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh event loop (the suite has no asyncio plugin)."""
    return asyncio.run(coro)


async def until(check: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Wait (asynchronously) until ``check()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.01)


class Outage:
    """Takes the test's database away (``down``) and brings it back (``up``); ``url`` is how a
    store under test must reach it for the outage to apply."""

    def __init__(self, url: str, down: Callable[[], None], up: Callable[[], None]) -> None:
        self.url = url
        self.down = down
        self.up = up


class SqliteLockHolder:
    """Another connection holding SQLite's write lock: writers get "database is locked"."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    def lock(self) -> None:
        self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._connection.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.execute("ROLLBACK")
            connection.close()


def every_field_set(i: int = 0) -> Event:
    """An event with no field left at its default."""
    return Event(
        ts=T0 + timedelta(seconds=i),
        event_id=f"evt-{i:04d}",
        source="invocation_log",
        ts_end=T0 + timedelta(seconds=i, milliseconds=1500),
        request_id="0b6c1f0e-6f2b-4d7c-9c1e-1234567890ab",
        gateway_request_id="gw-1",
        account_id="123456789012",
        region="us-east-1",
        inference_region="us-west-2",
        operation="ConverseStream",
        requested_model="claude-sonnet",
        model_id="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        base_model="anthropic.claude-sonnet-4-5",
        provider="anthropic",
        model_family="claude",
        model_tier="sonnet",
        inference_profile_arn="arn:aws:bedrock:us-east-1:123456789012:inference-profile/x",
        service_tier="priority",
        input_tokens=12,
        output_tokens=34,
        cache_read_tokens=56,
        cache_write_5m_tokens=78,
        cache_write_1h_tokens=90,
        latency_ms=1234,
        ttfb_ms=321,
        status="partial",
        http_status=200,
        error_type="ModelStreamErrorException",
        error_message="stream cut",
        stop_reason="max_tokens",
        streamed=True,
        partial=True,
        usage_known=False,
        cost_usd=Decimal("0.000000008750"),
        price_ref="anthropic.claude-sonnet-4-5@us-east-1/priority/2025-09-29",
        catalog_version="2026.11.01",
        unpriced=True,
        unpriced_reason="test",
        key_id="key_abcdefgh",
        iam_principal="arn:aws:sts::123456789012:assumed-role/r/s",
        department="research",
        project="atlas",
        agent="planner",
        user_id="ada",
        application="notebook",
        environment="prod",
        cost_center="cc-42",
        session_id="s-1",
        workflow_id="w-1",
        tags={"team": "ml", "ünïcode": "✓"},
        prompt_hash="a" * 64,
        response_hash="b" * 64,
        prefix_hashes=["c" * 64, "d" * 64],
        request_bytes=3_000_000_000,
        response_bytes=4567,
        routed_from="anthropic.claude-opus-4",
        budget_decision="allow",
    )
