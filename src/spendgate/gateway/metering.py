"""From a finished call to its event: usage, cost at the source region's price, attribution.

Cost rules: usage the response states is priced with ``spendgate.pricing``; a model the catalog
does not know is ``unpriced`` with the reason (never $0); a call whose usage the response did
not state is ``unpriced`` too ("usage unknown"); a call that failed before the model ran (no
usage, an error status) cost nothing and is recorded at $0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from spendgate.bedrock.modelids import ModelKind
from spendgate.bedrock.operations import OPERATION_NAMES
from spendgate.bedrock.usage import Extracted, Usage
from spendgate.errors import AwsError
from spendgate.events import ATTRIBUTION_FIELDS, Event
from spendgate.gateway.attribution import Attribution
from spendgate.gateway.resolution import Resolved
from spendgate.pricing import PriceResult, cost_of, price_for

SERVICE_TIERS = {
    "priority": "priority",
    "flex": "flex",
    "default": "standard",
    "reserved": "standard",
}


@dataclass(slots=True)
class Call:
    """What the gateway knows about a call before it forwards it."""

    started: datetime
    t0: float  # perf_counter at arrival
    gateway_request_id: str
    operation: str  # the path segment: converse, invoke-with-response-stream, ...
    region: str
    resolved: Resolved | None = None
    key_id: str | None = None
    principal: str | None = None
    attribution: Attribution = field(default_factory=Attribution)
    service_tier: str = "standard"
    prompt_hash: str | None = None
    prefix_hashes: list[str] = field(default_factory=list)
    request_bytes: int = 0
    routed_from: str | None = None
    family: str | None = None  # body family of the resolved model (set with ``resolved``)
    prompt_tokens: int = 0  # input estimated from the body (budgets reserve it)
    cache_points: bool = False  # the prompt asks for prompt caching
    reservation: object | None = None  # budgets' hold on this call (spendgate.gateway.guard)
    budget_decision: str | None = None  # approved | downgraded:<id> | denied:<id>
    price: PriceResult | None = None  # of ``resolved`` (``call_price``: looked up once)


@dataclass(slots=True)
class Outcome:
    """What came back."""

    status: str  # ok | error | rejected | partial
    http_status: int
    extracted: Extracted | None = None
    error: AwsError | None = None
    request_id: str | None = None
    response_hash: str | None = None
    response_bytes: int = 0
    ttfb_ms: int | None = None
    latency_ms: int = 0
    streamed: bool = False


def event_for(call: Call, outcome: Outcome, resolver: Callable[[str], str | None]) -> Event:
    usage = outcome.extracted.usage if outcome.extracted else None
    resolved = call.resolved
    ref = resolved.ref if resolved else None
    attr = call.attribution.values
    event = Event(
        ts=call.started,
        ts_end=call.started + timedelta(milliseconds=outcome.latency_ms),
        gateway_request_id=call.gateway_request_id,
        request_id=outcome.request_id,
        region=call.region,
        operation=OPERATION_NAMES.get(call.operation, call.operation),
        requested_model=resolved.requested if resolved else None,
        model_id=resolved.model_id if resolved else None,
        base_model=ref.base_model if ref else None,
        provider=ref.provider if ref else None,
        model_family=call.family,
        inference_profile_arn=_profile_arn(resolved),
        service_tier=call.service_tier,
        latency_ms=outcome.latency_ms,
        ttfb_ms=outcome.ttfb_ms,
        status=outcome.status,
        http_status=outcome.http_status,
        error_type=outcome.error.code if outcome.error else None,
        error_message=outcome.error.message[:200] if outcome.error else None,
        stop_reason=outcome.extracted.stop_reason if outcome.extracted else None,
        streamed=outcome.streamed,
        partial=outcome.status == "partial",
        usage_known=usage is not None,
        key_id=call.key_id,
        iam_principal=call.principal,
        tags=dict(call.attribution.tags),
        prompt_hash=call.prompt_hash,
        response_hash=outcome.response_hash,
        prefix_hashes=list(call.prefix_hashes),
        request_bytes=call.request_bytes,
        response_bytes=outcome.response_bytes,
        routed_from=call.routed_from,
        budget_decision=call.budget_decision,
    )
    for name in ATTRIBUTION_FIELDS:
        setattr(event, name, attr.get(name))
    if usage is not None:
        event.input_tokens = usage.input_tokens
        event.output_tokens = usage.output_tokens
        event.cache_read_tokens = usage.cache_read_tokens
        event.cache_write_5m_tokens = usage.cache_write_5m_tokens
        event.cache_write_1h_tokens = usage.cache_write_1h_tokens
    _price(event, call, usage, outcome, resolver)
    return event


def call_price(call: Call, resolver: Callable[[str], str | None]) -> PriceResult:
    """The price of the model the call runs on, looked up once per call: budgets need it before
    forwarding, metering after the answer."""
    if call.price is None:
        assert call.resolved is not None
        call.price = price_for(
            call.resolved.model_id, call.region, call.started, call.service_tier, resolver=resolver
        )
    return call.price


_PROFILE_KINDS = (ModelKind.INFERENCE_PROFILE, ModelKind.APPLICATION_INFERENCE_PROFILE)


def _profile_arn(resolved: Resolved | None) -> str | None:
    """The model id when it is an (application) inference-profile ARN."""
    ref = resolved.ref if resolved else None
    return ref.model_id if ref and ref.kind in _PROFILE_KINDS and ref.region else None


def _price(
    event: Event,
    call: Call,
    usage: Usage | None,
    outcome: Outcome,
    resolver: Callable[[str], str | None],
) -> None:
    if usage is None:
        if outcome.status in ("error", "rejected") or call.operation == "count-tokens":
            event.cost_usd = Decimal(0)  # failed before the model ran: nothing billed
        else:
            event.unpriced, event.unpriced_reason = True, "usage unknown: the response stated none"
        return
    if event.model_id is None:
        event.unpriced, event.unpriced_reason = True, "no model"
        return
    result = call_price(call, resolver)
    event.catalog_version = result.catalog_version
    if result.price is None:
        event.unpriced, event.unpriced_reason = True, result.unpriced_reason
        return
    cost = cost_of(usage, result.price)
    event.cost_usd = cost.total
    event.price_ref = cost.price_ref
