"""The cost sentry's metrics: what budgets and rate limits let through and stopped.

    TotalRequests       every runtime call the gateway metered (rejected ones included)
    RateLimitApproved   calls the budgets let through (with or without a matching budget)
    RateLimitDenied     calls a budget or rate limit stopped
    InvocationFailed    calls let through that failed (an error, or a broken stream)
    InputTokens         input-side tokens of the calls (cache reads and writes included)
    OutputTokens        output tokens

each by ``model`` (the base model), ``model_id`` (as sent to AWS), ``cost_center``,
``application`` and ``environment``. ``observe`` is a dict lookup and six additions per call;
Prometheus reads the totals at scrape time (``spendgate_sentry_*_total``), and
``GET /api/v1/sentry`` returns them as JSON. Past ``MAX_SERIES`` dimension sets, new ones are
counted under ``other`` so a client cannot blow up the series count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spendgate.events import Event

NAMES = (
    "TotalRequests",
    "RateLimitApproved",
    "RateLimitDenied",
    "InvocationFailed",
    "InputTokens",
    "OutputTokens",
)
PROMETHEUS = {
    "TotalRequests": "spendgate_sentry_requests",
    "RateLimitApproved": "spendgate_sentry_rate_limit_approved",
    "RateLimitDenied": "spendgate_sentry_rate_limit_denied",
    "InvocationFailed": "spendgate_sentry_invocation_failed",
    "InputTokens": "spendgate_sentry_input_tokens",
    "OutputTokens": "spendgate_sentry_output_tokens",
}
DIMENSIONS = ("model", "model_id", "cost_center", "application", "environment")
MAX_SERIES = 2000
_OTHER = ("other",) * len(DIMENSIONS)


class Sentry:
    """Counters per dimension set, in ``NAMES`` order; also a Prometheus collector."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, ...], list[int]] = {}

    def observe(self, event: Event) -> None:
        dims: tuple[str, ...] = (
            event.base_model or event.model_id or "",
            event.model_id or "",
            event.cost_center or "",
            event.application or "",
            event.environment or "",
        )
        counts = self.series.get(dims)
        if counts is None:
            if len(self.series) >= MAX_SERIES:
                dims = _OTHER
            counts = self.series.setdefault(dims, [0] * len(NAMES))
        denied = (event.budget_decision or "").startswith("denied")
        counts[0] += 1
        if denied:
            counts[2] += 1
        elif event.status != "rejected":
            counts[1] += 1
            if event.status in ("error", "partial"):
                counts[3] += 1
        counts[4] += (
            event.input_tokens
            + event.cache_read_tokens
            + event.cache_write_5m_tokens
            + event.cache_write_1h_tokens
        )
        counts[5] += event.output_tokens

    def collect(self) -> Iterator[Metric]:
        for i, name in enumerate(NAMES):
            family = CounterMetricFamily(
                PROMETHEUS[name], f"Cost sentry: {name}", labels=list(DIMENSIONS)
            )
            for dims, counts in list(self.series.items()):
                family.add_metric(list(dims), counts[i])
            yield family

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {
                "dimensions": dict(zip(DIMENSIONS, dims, strict=True)),
                **dict(zip(NAMES, counts, strict=True)),
            }
            for dims, counts in sorted(self.series.items())
        ]

    def totals(self) -> dict[str, int]:
        return {name: sum(c[i] for c in self.series.values()) for i, name in enumerate(NAMES)}


def sentry_route(sentry: Sentry) -> Route:
    """``GET /api/v1/sentry`` (behind the admin token: mounted with the admin API)."""

    async def endpoint(request: Request) -> Response:
        return JSONResponse({"totals": sentry.totals(), "series": sentry.snapshot()})

    return Route("/sentry", endpoint, methods=["GET"])
