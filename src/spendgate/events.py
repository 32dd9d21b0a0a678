"""The event: one row per model call, whatever saw it (gateway, invocation log, CUR, ...).

Field meanings follow docs/architecture.md ("The event"). Tokens use Bedrock's convention:
``input_tokens`` excludes cache reads and writes. ``cost_usd`` is exact ``Decimal`` (``None``
when ``unpriced``); ``price_ref`` and ``catalog_version`` say which price produced it. Nothing
here may hold prompt or completion text, AWS secrets or spendgate keys: only hashes and sizes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

ATTRIBUTION_FIELDS = (
    "department",
    "project",
    "agent",
    "user_id",
    "application",
    "environment",
    "cost_center",
    "session_id",
    "workflow_id",
)


def new_event_id() -> str:
    """128 random bits, hex. Unique, not secret: Python's generator (seeded from the OS once)
    costs ~0.3 µs where os.urandom costs a system call per id."""
    return f"{random.getrandbits(128):032x}"


@dataclass(slots=True)
class Event:
    ts: datetime  # UTC-aware: when the call started
    event_id: str = field(default_factory=new_event_id)  # unique; makes journal replay idempotent
    source: str = "gateway"  # gateway | invocation_log | cur | cloudwatch | otel
    ts_end: datetime | None = None
    request_id: str | None = None  # Bedrock's x-amzn-RequestId
    gateway_request_id: str | None = None
    account_id: str | None = None
    region: str | None = None  # source region: the one the call was made in (and priced at)
    inference_region: str | None = None
    operation: str | None = None  # Converse | ConverseStream | InvokeModel | ...
    requested_model: str | None = None  # as the client named it
    model_id: str | None = None  # as sent to AWS
    base_model: str | None = None  # catalog key
    provider: str | None = None
    model_family: str | None = None
    model_tier: str | None = None
    inference_profile_arn: str | None = None
    service_tier: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    latency_ms: int | None = None
    ttfb_ms: int | None = None
    status: str = "ok"  # ok | error | rejected | partial
    http_status: int | None = None
    error_type: str | None = None
    error_message: str | None = None  # short, never content
    stop_reason: str | None = None
    streamed: bool = False
    partial: bool = False
    usage_known: bool = True
    cost_usd: Decimal | None = None
    price_ref: str | None = None
    catalog_version: str | None = None
    unpriced: bool = False
    unpriced_reason: str | None = None
    key_id: str | None = None
    iam_principal: str | None = None
    department: str | None = None
    project: str | None = None
    agent: str | None = None
    user_id: str | None = None
    application: str | None = None
    environment: str | None = None
    cost_center: str | None = None
    session_id: str | None = None
    workflow_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    prompt_hash: str | None = None
    response_hash: str | None = None
    prefix_hashes: list[str] = field(default_factory=list)
    request_bytes: int | None = None
    response_bytes: int | None = None
    routed_from: str | None = None
    budget_decision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}
